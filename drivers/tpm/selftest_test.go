package tpm

import (
	"encoding/binary"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
)

// watchedTPM records the command code of every command sent to the TPM
// behind it and, if failSelfTest, answers TPM2_SelfTest itself with
// TPM_RC_FAILURE, as a TPM whose self test failed does.
type watchedTPM struct {
	transport.TPMCloser
	failSelfTest bool
	codes        []tpm2.TPMCC
}

func (w *watchedTPM) Send(cmd []byte) ([]byte, error) {
	if len(cmd) >= 10 {
		cc := tpm2.TPMCC(binary.BigEndian.Uint32(cmd[6:10]))
		w.codes = append(w.codes, cc)
		if cc == tpm2.TPMCCSelfTest && w.failSelfTest {
			rsp := make([]byte, 10)
			binary.BigEndian.PutUint16(rsp, 0x8001)
			binary.BigEndian.PutUint32(rsp[2:], 10)
			binary.BigEndian.PutUint32(rsp[6:], uint32(tpm2.TPMRCFailure))
			return rsp, nil
		}
	}
	return w.TPMCloser.Send(cmd)
}

func TestNewRunsTheSelfTestBeforeUsingAKey(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		for _, boot := range []string{"first boot", "next boot"} {
			w := &watchedTPM{TPMCloser: b.open(t)}
			s, err := New(w, provision)
			if err != nil {
				t.Fatalf("%s: %v", boot, err)
			}
			s.Close()
			test := slices.Index(w.codes, tpm2.TPMCCSelfTest)
			if test < 0 {
				t.Fatalf("%s: no TPM2_SelfTest among %v", boot, w.codes)
			}
			for i, cc := range w.codes[:test] {
				if cc != tpm2.TPMCCGetCapability && cc != tpm2.TPMCCStartup {
					t.Errorf("%s: command %d (%v) went before the self test", boot, i, cc)
				}
			}
		}
	})
}

func TestFailedSelfTestStopsNew(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		w := &watchedTPM{TPMCloser: b.open(t), failSelfTest: true}
		_, err := New(w, provision)
		if !errors.Is(err, ErrSelfTest) || !errors.Is(err, tpm2.TPMRCFailure) {
			t.Fatalf("err = %v, want ErrSelfTest and TPM_RC_FAILURE", err)
		}
		if !strings.HasPrefix(err.Error(), "tpm: self test: ") {
			t.Errorf("error %q lacks the step", err)
		}
		if n := len(w.codes); n == 0 || w.codes[n-1] != tpm2.TPMCCSelfTest {
			t.Errorf("commands after the failed self test: %v", w.codes)
		}
	})
}
