package tpm

import (
	"encoding/binary"
	"time"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
)

// retrying is a transport.TPM that sends a command again, after a short
// back-off, while the TPM answers RETRY, YIELDED or TESTING. After the last
// attempt the TPM's answer is returned as it is, so the caller sees the
// response code (classified as ErrBusy).
type retrying struct {
	next     transport.TPM
	attempts int
	backoff  time.Duration
	sleep    func(time.Duration)
}

// Send implements transport.TPM.
func (r *retrying) Send(cmd []byte) ([]byte, error) {
	wait := r.backoff
	for i := 1; ; i++ {
		rsp, err := r.next.Send(cmd)
		if err != nil || i >= r.attempts || !busyResponse(rsp) {
			return rsp, err
		}
		r.sleep(wait)
		wait *= 2
	}
}

// busyResponse reports whether rsp is a response header carrying one of the
// retryable response codes.
func busyResponse(rsp []byte) bool {
	if len(rsp) < 10 {
		return false
	}
	rc := tpm2.TPMRC(binary.BigEndian.Uint32(rsp[6:10]))
	for _, b := range busyRCs {
		if rc == b {
			return true
		}
	}
	return false
}

var _ transport.TPM = (*retrying)(nil)
