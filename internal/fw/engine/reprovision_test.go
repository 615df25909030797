package engine_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/zmonitor/firmware/internal/central/pusher"
	"github.com/zmonitor/firmware/internal/fw/keys"
	"github.com/zmonitor/firmware/internal/fw/screen"
	"github.com/zmonitor/firmware/internal/fw/settings"
	"github.com/zmonitor/firmware/internal/proto/failure"
	"github.com/zmonitor/firmware/internal/proto/pairing"
	"github.com/zmonitor/firmware/internal/proto/state"
)

// reprovision runs a console re-provisioning confirmed by the button and
// returns the QR of the pairing it opened.
func (r *rig) reprovision() pairing.QRContent {
	r.t.Helper()
	before := len(r.aud.Named("REPROVISION_REQUESTED"))
	done := make(chan error, 1)
	go func() { done <- r.eng.Reprovision(context.Background()) }()
	r.eventually("REPROVISION_REQUESTED", func() bool { return len(r.aud.Named("REPROVISION_REQUESTED")) > before })
	r.press()
	if err := <-done; err != nil {
		r.t.Fatalf("reprovision: %v", err)
	}
	v := r.waitState(state.ReadyToPair)
	q, err := pairing.ParseQR(v.QRText)
	if err != nil {
		r.t.Fatalf("QR on screen does not parse: %v", err)
	}
	return q
}

func (r *rig) committed() settings.Provisioning {
	r.t.Helper()
	cur, ok, err := r.set.Current()
	if err != nil || !ok {
		r.t.Fatalf("committed settings: %v, %v", ok, err)
	}
	return cur
}

// A provisioned device re-paired to another server URL without a factory
// reset: the old provisioning stays committed while pairing, the new one
// replaces it after its connection test, its key in the other slot, the
// old slot's key evicted.
func TestReprovisionToAnotherServer(t *testing.T) {
	r := newRig(t, nil)
	r.mustSucceed(r.pair())
	old := r.committed()
	if old.ClientKeyRef != keys.SlotA.Ref() {
		t.Fatalf("first pairing in %q", old.ClientKeyRef)
	}
	q := r.reprovision()
	if cur := r.committed(); cur.ServerURL != old.ServerURL {
		t.Fatalf("the old provisioning is gone while re-pairing: %s", cur.ServerURL)
	}
	other := strings.Replace(r.monitor.URL, "127.0.0.1", "localhost", 1)
	out, err := r.provision(q, func(c *pusher.Config) { c.ServerURL = other })
	if err != nil || out.State != "PROVISIONED" {
		t.Fatalf("re-provision: %+v, %v", out, err)
	}
	r.waitState(state.Provisioned)
	cur := r.committed()
	if cur.ServerURL != other || cur.ClientKeyRef != keys.SlotB.Ref() {
		t.Errorf("after re-provisioning: server %s, key %s; want %s in slot B", cur.ServerURL, cur.ClientKeyRef, other)
	}
	if _, err := r.keys.ClientKeyAt(keys.SlotA); err == nil {
		t.Error("the old client key is still in slot A")
	}
	if _, err := r.keys.ClientKeyAt(keys.SlotB); err != nil {
		t.Errorf("slot B: %v", err)
	}
	if len(r.aud.Named("REPROVISION_STARTED")) != 1 || len(r.aud.Named("REPROVISION_FELL_BACK")) != 0 {
		t.Errorf("audit: started %d, fell back %d", len(r.aud.Named("REPROVISION_STARTED")), len(r.aud.Named("REPROVISION_FELL_BACK")))
	}
	// And again, back to slot A.
	q = r.reprovision()
	if out, err := r.provision(q, nil); err != nil || out.State != "PROVISIONED" {
		t.Fatalf("second re-provision: %+v, %v", out, err)
	}
	r.waitState(state.Provisioned)
	if cur := r.committed(); cur.ClientKeyRef != keys.SlotA.Ref() || cur.ServerURL != old.ServerURL {
		t.Errorf("after the second re-provisioning: %s in %s", cur.ServerURL, cur.ClientKeyRef)
	}
}

// A re-provisioning whose connection test fails falls back: the old
// provisioning and key stay committed, the new key is gone, the screen
// says so, both are audited, and the fallback's connection check passes.
func TestReprovisionFailureFallsBack(t *testing.T) {
	r := newRig(t, nil)
	r.mustSucceed(r.pair())
	old := r.committed()
	q := r.reprovision()
	// The tablet hears the failure, not the fallback's PROVISIONED.
	if out, _ := r.provision(q, func(c *pusher.Config) { c.ServerURL = "https://127.0.0.1:1" }); out.State != "PROVISIONING_FAILED" || out.Code != failure.ConnectionFailed {
		t.Errorf("the Central Station's outcome of a failed re-provisioning: %+v", out)
	}
	v := r.waitView("back on PROVISIONED with the notice", func(v screen.View) bool {
		return v.State == state.Provisioned && strings.Contains(v.Notice, "Re-provisioning failed")
	})
	if !strings.Contains(v.Notice, failure.ConnectionFailed.String()) || !strings.HasPrefix(v.ServerHost, "127.0.0.1:") {
		t.Errorf("screen after the fallback: %+v", v)
	}
	if cur := r.committed(); cur.ServerURL != old.ServerURL || cur.ClientKeyRef != old.ClientKeyRef || string(cur.ClientCertDER) != string(old.ClientCertDER) {
		t.Errorf("the committed provisioning changed: %s in %s", cur.ServerURL, cur.ClientKeyRef)
	}
	if _, err := r.keys.ClientKeyAt(keys.SlotA); err != nil {
		t.Errorf("the fallback's key: %v", err)
	}
	if _, err := r.keys.ClientKeyAt(keys.SlotB); err == nil {
		t.Error("the failed pairing's key is in slot B")
	}
	fb := r.aud.Named("REPROVISION_FELL_BACK")
	if len(fb) != 1 || fb[0].Code != failure.ConnectionFailed.String() {
		t.Errorf("audit: %+v", fb)
	}
	r.eventually("CONNECTION_CHECK_PASSED", func() bool { return len(r.aud.Named("CONNECTION_CHECK_PASSED")) > 0 })
	if st := r.eng.Status(); st.State != state.Provisioned {
		t.Errorf("status: %s", st.State)
	}
}

// A re-provisioning nobody completes falls back when its session runs out.
func TestReprovisionTimeoutFallsBack(t *testing.T) {
	r := newRig(t, nil)
	r.mustSucceed(r.pair())
	old := r.committed()
	r.reprovision()
	r.clk.Advance(10 * time.Minute)
	r.waitState(state.Provisioned)
	if cur := r.committed(); cur.ServerURL != old.ServerURL || cur.ClientKeyRef != old.ClientKeyRef {
		t.Errorf("the committed provisioning changed: %s in %s", cur.ServerURL, cur.ClientKeyRef)
	}
	if fb := r.aud.Named("REPROVISION_FELL_BACK"); len(fb) != 1 || fb[0].Code != failure.SessionExpired.String() {
		t.Errorf("audit: %+v", fb)
	}
}

// Re-provisioning is refused unless the device is PROVISIONED.
func TestReprovisionRefusedWhenNotProvisioned(t *testing.T) {
	r := newRig(t, nil)
	done := make(chan error, 1)
	go func() { done <- r.eng.Reprovision(context.Background()) }()
	r.eventually("REPROVISION_REQUESTED", func() bool { return len(r.aud.Named("REPROVISION_REQUESTED")) > 0 })
	r.press()
	if err := <-done; err == nil {
		t.Fatal("re-provisioning an UNPROVISIONED device was accepted")
	}
	if len(r.aud.Named("REPROVISION_REFUSED")) != 1 {
		t.Error("the refusal was not audited")
	}
}
