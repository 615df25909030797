package engine_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/zmonitor/firmware/internal/central/attestation"
	"github.com/zmonitor/firmware/internal/central/job"
	"github.com/zmonitor/firmware/internal/central/pusher"
	"github.com/zmonitor/firmware/internal/proto/devicewire"
	"github.com/zmonitor/firmware/internal/proto/failure"
	"github.com/zmonitor/firmware/internal/proto/state"
)

// attest is the Central Station's attestation check as the server wires
// it: a device without evidence passes only with allowUnmeasured. seen
// receives the verified hello.
func attest(allowUnmeasured bool, seen **devicewire.VerifiedHello) func(*pusher.Config) {
	return func(c *pusher.Config) {
		c.Attest = func(_ context.Context, _ job.Job, nonce []byte, h *devicewire.VerifiedHello) error {
			*seen = h
			if len(nonce) != devicewire.AttestationNonceSize {
				return errors.New("no nonce")
			}
			_, err := attestation.Verify(attestation.Input{
				Nonce: nonce, Evidence: h.Evidence, Unmeasured: h.Unmeasured, AllowUnmeasured: allowUnmeasured,
				Lookup: func(string) (attestation.Firmware, bool, error) { return attestation.Firmware{}, false, nil },
			})
			return err
		}
	}
}

// The rig's device has software keys and no measured boot, like the
// direct-kernel development board: it says so in the hello, and the
// Central Station refuses it unless started with the development flag.
func TestUnmeasuredDeviceRefusedWithoutTheDevelopmentFlag(t *testing.T) {
	r := newRig(t, nil)
	q := r.pair()
	var seen *devicewire.VerifiedHello
	out, err := r.provision(q, attest(false, &seen))
	if failure.CodeOf(err) != failure.FirmwareNotTrusted || out.Code != failure.FirmwareNotTrusted {
		t.Fatalf("provision = %+v, %v; want FIRMWARE_NOT_TRUSTED", out, err)
	}
	if seen == nil || seen.Evidence != nil || !strings.Contains(seen.Unmeasured, "no attestation key") {
		t.Fatalf("hello attestation %+v; want the device's reason for having no quote", seen)
	}
	if !strings.Contains(err.Error(), "no measured boot") {
		t.Errorf("refusal %q does not say why", err)
	}
	// Nothing was pushed: the device still waits for a pairing.
	if st := r.eng.Status(); st.State != state.ReadyToPair {
		t.Errorf("device is %s after the refusal, want READY_TO_PAIR", st.State)
	}
	if _, ok, _ := r.set.Current(); ok {
		t.Error("settings committed after FIRMWARE_NOT_TRUSTED")
	}
	// With the flag the same device pairs.
	out, err = r.provision(q, attest(true, &seen))
	if err != nil || out.State != state.Provisioned.String() {
		t.Fatalf("with --allow-unmeasured-dev-firmware: %+v, %v", out, err)
	}
}
