package tpm

import (
	"crypto"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-tpm/tpm2"
)

type sha256Opts struct{}

func (sha256Opts) HashFunc() crypto.Hash { return crypto.SHA256 }

// rcTPM answers every command with the next response code in rcs (the last
// one repeats) and records the commands.
type rcTPM struct {
	rcs    []tpm2.TPMRC
	sent   int
	closed bool
}

func (f *rcTPM) Send(cmd []byte) ([]byte, error) {
	rc := f.rcs[min(f.sent, len(f.rcs)-1)]
	f.sent++
	rsp := make([]byte, 10)
	binary.BigEndian.PutUint16(rsp, 0x8001)
	binary.BigEndian.PutUint32(rsp[2:], 10)
	binary.BigEndian.PutUint32(rsp[6:], uint32(rc))
	return rsp, nil
}

func (f *rcTPM) Close() error { f.closed = true; return nil }

func TestRetryIsBoundedWithBackoff(t *testing.T) {
	for _, rc := range []tpm2.TPMRC{tpm2.TPMRCRetry, tpm2.TPMRCYielded, tpm2.TPMRCTesting} {
		f := &rcTPM{rcs: []tpm2.TPMRC{rc}}
		var slept []time.Duration
		_, err := New(f, &Opts{Attempts: 4, Backoff: time.Millisecond, Sleep: func(d time.Duration) { slept = append(slept, d) }})
		if !errors.Is(err, ErrBusy) || !errors.Is(err, rc) {
			t.Fatalf("%v: err = %v, want ErrBusy and the RC", rc, err)
		}
		if !strings.HasPrefix(err.Error(), "tpm: probe: ") {
			t.Errorf("error %q lacks the step", err)
		}
		if f.sent != 4 {
			t.Errorf("%v: sent %d times, want 4", rc, f.sent)
		}
		want := []time.Duration{time.Millisecond, 2 * time.Millisecond, 4 * time.Millisecond}
		if len(slept) != len(want) {
			t.Fatalf("slept %v, want %v", slept, want)
		}
		for i := range want {
			if slept[i] != want[i] {
				t.Errorf("sleep %d = %v, want %v", i, slept[i], want[i])
			}
		}
		if !f.closed {
			t.Error("failed New did not close the transport")
		}
	}
}

func TestRetrySucceedsAfterBusy(t *testing.T) {
	f := &rcTPM{rcs: []tpm2.TPMRC{tpm2.TPMRCRetry, tpm2.TPMRCYielded, tpm2.TPMRCSuccess}}
	r := &retrying{next: f, attempts: 5, backoff: time.Millisecond, sleep: func(time.Duration) {}}
	rsp, err := r.Send([]byte("cmd"))
	if err != nil || busyResponse(rsp) || f.sent != 3 {
		t.Fatalf("rsp %x err %v sent %d", rsp, err, f.sent)
	}
}

func TestErrorMapping(t *testing.T) {
	for _, c := range []struct {
		rc   tpm2.TPMRC
		want error
	}{
		{tpm2.TPMRCLockout, ErrLockout},
		{tpm2.TPMRCObjectMemory, ErrOutOfMemory},
		{tpm2.TPMRCSessionMemory, ErrOutOfMemory},
		{tpm2.TPMRCObjectHandles, ErrOutOfMemory},
		{tpm2.TPMRCAuthFail, ErrAuth},
		{tpm2.TPMRCBadAuth, ErrAuth},
		{tpm2.TPMRCBadAuth + 0x100 + 0x40, ErrAuth}, // format-1 with a session index
	} {
		f := &rcTPM{rcs: []tpm2.TPMRC{c.rc}}
		_, err := New(f, nil)
		if !errors.Is(err, c.want) {
			t.Errorf("rc 0x%x: err = %v, want %v", uint32(c.rc), err, c.want)
		}
		if f.sent != 1 {
			t.Errorf("rc 0x%x: sent %d times, want 1 (not retryable)", uint32(c.rc), f.sent)
		}
	}
	if wrap("x", nil) != nil {
		t.Error("wrap(nil) is not nil")
	}
}

func TestStartupWhenTPMNeedsIt(t *testing.T) {
	// INITIALIZE to the probe, then success to Startup, then a failure to
	// stop New early: Startup must have been sent.
	f := &rcTPM{rcs: []tpm2.TPMRC{tpm2.TPMRCInitialize, tpm2.TPMRCSuccess, tpm2.TPMRCLockout}}
	_, err := New(f, nil)
	if !errors.Is(err, ErrLockout) || f.sent != 3 {
		t.Fatalf("err = %v after %d commands, want ErrLockout after 3", err, f.sent)
	}
}

func TestOptionsValidated(t *testing.T) {
	for _, o := range []*Opts{
		{IdentityHandle: 0x01000001},
		{IdentityHandle: DefaultPayloadHandle},
	} {
		f := &rcTPM{rcs: []tpm2.TPMRC{tpm2.TPMRCSuccess}}
		if _, err := New(f, o); err == nil || f.sent != 0 {
			t.Errorf("opts %+v accepted (sent %d)", o, f.sent)
		}
	}
	o := &Opts{Provision: true}
	_ = o.withDefaults()
	if o.IdentityHandle != 0 {
		t.Error("withDefaults wrote to the caller's Opts")
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	for _, p := range []string{
		filepath.Join(dir, "tpmrm0"),
		"unix:" + filepath.Join(dir, "swtpm.sock"),
	} {
		if _, err := Open(p); !errors.Is(err, ErrNoDevice) || !errors.Is(err, os.ErrNotExist) {
			t.Errorf("Open(%q) = %v, want ErrNoDevice", p, err)
		}
	}
	regular := filepath.Join(dir, "file")
	if err := os.WriteFile(regular, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(regular); err == nil {
		t.Error("Open of a regular file succeeded")
	}
	if _, err := Open(""); err == nil {
		t.Error("Open of an empty path succeeded")
	}
	port := freePort(t) // nothing listens there now
	if _, err := Open("tcp:127.0.0.1:" + strconv.Itoa(port)); !errors.Is(err, ErrNoDevice) {
		t.Errorf("Open(tcp closed port) = %v, want ErrNoDevice", err)
	}
}

func TestRoleStrings(t *testing.T) {
	for _, r := range []Role{RoleSRK, RolePayload, RoleIdentity, RoleClient, Role(99)} {
		if r.String() == "" {
			t.Errorf("Role(%d) has no name", int(r))
		}
	}
	for _, c := range []clientState{clientPending, clientCommitted, clientDiscarded, clientState(9)} {
		if c.String() == "" {
			t.Errorf("clientState(%d) has no name", int(c))
		}
	}
}
