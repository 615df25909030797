package engine_test

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/zmonitor/firmware/internal/central/attestation"
	"github.com/zmonitor/firmware/internal/central/deviceclient"
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
	// Nothing was pushed; the Central Station told the device, which
	// shows the failure at once (not a QR that can no longer pair) and
	// audits who refused it and why.
	if v := r.waitState(state.ProvisioningFailed); v.Failure != failure.FirmwareNotTrusted {
		t.Errorf("screen shows %s after the refusal, want FIRMWARE_NOT_TRUSTED", v.Failure)
	}
	if st := r.eng.Status(); st.LastError != failure.FirmwareNotTrusted || st.Listening {
		t.Errorf("status after the refusal: %+v", st)
	}
	if got := r.aud.Named("CENTRAL_REFUSED"); len(got) != 1 || got[0].Code != "FIRMWARE_NOT_TRUSTED" ||
		!strings.HasPrefix(got[0].Actor, "central-station:") || !strings.Contains(got[0].Reason, "no measured boot") {
		t.Errorf("audit of the refusal: %+v", got)
	}
	if _, ok, _ := r.set.Current(); ok {
		t.Error("settings committed after FIRMWARE_NOT_TRUSTED")
	}
	// With the flag the same device pairs, after one press for a new code.
	out, err = r.provision(r.retry(), attest(true, &seen))
	if err != nil || out.State != state.Provisioned.String() {
		t.Fatalf("with --allow-unmeasured-dev-firmware: %+v, %v", out, err)
	}
}

// Only the hello's signer, in the hello's exchange, may refuse the device:
// a refusal naming another exchange, or sent with another certificate of
// the same root, is refused (409) and audited, and the device keeps its QR.
func TestRefusalOnlyFromTheHellosExchange(t *testing.T) {
	r := newRig(t, nil)
	q := r.pair()
	id := r.keys.Identity().Public().(*ecdsa.PublicKey)
	c := deviceclient.New(r.eng.EndpointAddr(), id, "ZM-001", deviceclient.Opts{Certificate: r.signer.TLSCertificate()})
	defer c.Close()
	h, err := c.Hello(context.Background(), q.PairingToken)
	if err != nil {
		t.Fatal(err)
	}
	other := append([]byte(nil), h.SessionNonce...)
	other[0] ^= 1
	var re *deviceclient.RefusedError
	if _, err := c.Refuse(context.Background(), other, failure.FirmwareNotTrusted, "x"); !errors.As(err, &re) || re.HTTPStatus != 409 {
		t.Fatalf("refusal of another exchange: %v", err)
	}
	leaf, err := r.root.NewLeaf(signerTemplate(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	second := deviceclient.New(r.eng.EndpointAddr(), id, "ZM-001", deviceclient.Opts{Certificate: leaf.TLS()})
	defer second.Close()
	if _, err := second.Refuse(context.Background(), h.SessionNonce, failure.FirmwareNotTrusted, "x"); !errors.As(err, &re) || re.HTTPStatus != 409 {
		t.Fatalf("refusal with another signer certificate: %v", err)
	}
	if st := r.eng.Status(); st.State != state.ReadyToPair {
		t.Fatalf("device is %s after refusals it must ignore", st.State)
	}
	if got := r.aud.Named("REFUSAL_IGNORED"); len(got) != 2 {
		t.Errorf("REFUSAL_IGNORED records: %+v", got)
	}
	// The hello's own refusal is taken.
	if st, err := c.Refuse(context.Background(), h.SessionNonce, failure.FirmwareNotTrusted, "image denied"); err != nil || st.State != state.ProvisioningFailed.String() {
		t.Fatalf("the hello's refusal: %+v, %v", st, err)
	}
}
