package tpm

import (
	"errors"
	"fmt"

	"github.com/google/go-tpm/tpm2"
)

// Errors that callers can test with errors.Is. Every error the package
// returns is "tpm: <step>: " followed by one of these (where one applies)
// and the underlying TPM or transport error.
var (
	// ErrNoDevice: the TPM device or socket does not exist.
	ErrNoDevice = errors.New("no TPM device")
	// ErrBusy: the TPM kept answering RETRY, YIELDED or TESTING after the
	// bounded number of attempts.
	ErrBusy = errors.New("TPM busy")
	// ErrLockout: the TPM is in dictionary-attack lockout.
	ErrLockout = errors.New("TPM in dictionary-attack lockout")
	// ErrOutOfMemory: the TPM has no room for another object or session
	// (a transient handle leaked somewhere, possibly in another process).
	ErrOutOfMemory = errors.New("TPM out of object memory")
	// ErrAuth: an authorization value (owner auth or key auth) is wrong.
	ErrAuth = errors.New("TPM authorization failed")
	// ErrKeyMissing: a key the device needs is not at its persistent
	// handle, on a device that is (or must be) already provisioned.
	ErrKeyMissing = errors.New("device key missing")
	// ErrKeyMismatch: a persistent handle holds a key whose public area is
	// not the expected template.
	ErrKeyMismatch = errors.New("device key does not match its template")
	// ErrUnsupported: a request the TPM keys cannot serve (wrong hash,
	// wrong curve, wrong key type).
	ErrUnsupported = errors.New("unsupported request")
	// ErrSelfTest: the TPM's self test failed; the TPM is in failure mode
	// and holds no usable key until it is replaced or reset.
	ErrSelfTest = errors.New("TPM self test failed")
	// ErrClosed: the Store was closed, or the client key was committed or
	// discarded already.
	ErrClosed = errors.New("closed")
)

// busyRCs are the response codes after which a command may simply be sent
// again.
var busyRCs = []tpm2.TPMRC{tpm2.TPMRCRetry, tpm2.TPMRCYielded, tpm2.TPMRCTesting}

// classify returns the sentinel that describes err, or nil.
func classify(err error) error {
	switch {
	case err == nil:
		return nil
	case isAny(err, busyRCs...):
		return ErrBusy
	case isAny(err, tpm2.TPMRCLockout):
		return ErrLockout
	case isAny(err, tpm2.TPMRCObjectMemory, tpm2.TPMRCSessionMemory, tpm2.TPMRCMemory,
		tpm2.TPMRCObjectHandles, tpm2.TPMRCSessionHandles):
		return ErrOutOfMemory
	case isAny(err, tpm2.TPMRCAuthFail, tpm2.TPMRCBadAuth):
		return ErrAuth
	}
	return nil
}

func isAny(err error, rcs ...tpm2.TPMRC) bool {
	for _, rc := range rcs {
		if errors.Is(err, rc) {
			return true
		}
	}
	return false
}

// wrap prefixes err with the step and, where one applies, the sentinel.
func wrap(step string, err error) error {
	if err == nil {
		return nil
	}
	if s := classify(err); s != nil && !errors.Is(err, s) {
		return fmt.Errorf("tpm: %s: %w: %w", step, s, err)
	}
	return fmt.Errorf("tpm: %s: %w", step, err)
}

// isRC reports whether err is the TPM response code rc (format-1 codes
// match whatever handle or parameter they name).
func isRC(err error, rc tpm2.TPMRC) bool { return errors.Is(err, rc) }
