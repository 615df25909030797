package engine_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/zmonitor/firmware/internal/fw/audit"
	"github.com/zmonitor/firmware/internal/fw/conncheck"
	"github.com/zmonitor/firmware/internal/fw/engine"
	"github.com/zmonitor/firmware/internal/proto/failure"
	"github.com/zmonitor/firmware/internal/proto/state"
)

// eventually waits, up to a minute (a loaded CI machine, -race), for ok to
// hold.
func (r *rig) eventually(what string, ok func() bool) {
	r.t.Helper()
	for deadline := time.Now().Add(time.Minute); !ok(); {
		if time.Now().After(deadline) {
			r.t.Fatalf("no %s within a minute; status %+v", what, r.eng.Status())
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// stateChanges are the audited transitions, "FROM->TO EVENT" each.
func (r *rig) stateChanges() []string {
	var out []string
	for _, ev := range r.aud.Named("STATE_CHANGED") {
		event, _, _ := strings.Cut(ev.Reason, ":")
		out = append(out, ev.From+"->"+ev.To+" "+event)
	}
	return out
}

// A pairing session that cannot start (the port is taken) is the event
// SESSION_START_FAILED of the state machine: the device goes back to
// UNPROVISIONED through state.Next, audited like every transition, and
// status says why.
func TestSessionThatCannotStartIsAnEvent(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	r := newRig(t, func(o *engine.Options) { o.ListenAddr = taken.Addr().String() })
	r.waitState(state.Unprovisioned)
	if err := r.eng.Press(); err != nil {
		t.Fatalf("press: %v (the press itself was accepted)", err)
	}
	r.waitState(state.Unprovisioned)
	want := "UNPROVISIONED->READY_TO_PAIR BUTTON_PRESSED|READY_TO_PAIR->UNPROVISIONED SESSION_START_FAILED"
	if got := strings.Join(r.stateChanges(), "|"); got != want {
		t.Errorf("audited transitions %q, want %q", got, want)
	}
	if len(r.aud.Named("PAIRING_START_FAILED")) != 1 {
		t.Error("the failed start is not audited")
	}
	st := r.eng.Status()
	if st.State != state.Unprovisioned || st.Listening || st.LastError != failure.Internal || !strings.Contains(st.LastCause, "open provisioning port") {
		t.Errorf("status %+v", st)
	}
	r.disp.mu.Lock()
	defer r.disp.mu.Unlock()
	for _, v := range r.disp.views {
		if v.State == state.ReadyToPair {
			t.Error("a pairing screen was drawn for a session that never started")
		}
	}
}

// factoryReset runs a console factory reset confirmed by the button.
func (r *rig) factoryReset() error {
	r.t.Helper()
	before := len(r.aud.Named("FACTORY_RESET_REQUESTED"))
	done := make(chan error, 1)
	go func() { done <- r.eng.FactoryReset(context.Background()) }()
	r.eventually("FACTORY_RESET_REQUESTED", func() bool { return len(r.aud.Named("FACTORY_RESET_REQUESTED")) > before })
	r.press()
	return <-done
}

func indexOf(evs []audit.Event, name, to string) int {
	for i, ev := range evs {
		if ev.Event == name && (to == "" || ev.To == to) {
			return i
		}
	}
	return -1
}

// The factory reset erases the provisioning as the side effect of entering
// UNPROVISIONED: the transition is audited first, then the settings go.
func TestFactoryResetErasesOnEnteringUnprovisioned(t *testing.T) {
	r := newRig(t, nil)
	r.mustSucceed(r.pair())
	if err := r.factoryReset(); err != nil {
		t.Fatalf("factory reset: %v", err)
	}
	if st := r.eng.Status(); st.State != state.Unprovisioned || st.LastError != failure.None || st.ConnCheck.Verdict != conncheck.NotChecked {
		t.Errorf("status after reset %+v", st)
	}
	if _, ok, _ := r.set.Current(); ok {
		t.Error("settings still committed")
	}
	if _, err := r.keys.CommittedClientKey(); err == nil {
		t.Error("client key still committed")
	}
	if _, ok := r.eng.Current(); ok {
		t.Error("engine still has a provisioning")
	}
	evs := r.aud.Events()
	changed := indexOf(evs, "STATE_CHANGED", "UNPROVISIONED")
	r.resetMu.Lock()
	erasedAt := r.resetAt
	r.resetMu.Unlock()
	if changed < 0 || erasedAt <= changed {
		t.Errorf("settings erased after %d audit records, transition to UNPROVISIONED is record %d: the erase must be a side effect of entering", erasedAt, changed)
	}
	if got := r.stateChanges(); got[len(got)-1] != "PROVISIONED->UNPROVISIONED FACTORY_RESET" {
		t.Errorf("transitions %q", got)
	}
	// And the device pairs again.
	r.mustSucceed(r.pair())
}

// A factory reset whose erase fails changes nothing: the device is back in
// PROVISIONED with its settings, key and screen, the failure is audited and
// the console is told.
func TestFactoryResetThatCannotEraseKeepsTheProvisioning(t *testing.T) {
	r := newRig(t, nil)
	r.mustSucceed(r.pair())
	r.resetMu.Lock()
	r.resetErr = errors.New("disk: input/output error")
	r.resetMu.Unlock()
	shown := len(r.disp.views)
	err := r.factoryReset()
	if err == nil || !strings.Contains(err.Error(), "input/output error") {
		t.Fatalf("factory reset: %v, want the erase's error", err)
	}
	st := r.eng.Status()
	if st.State != state.Provisioned || st.LastError != failure.Internal || !strings.Contains(st.LastCause, "erase settings") {
		t.Errorf("status %+v", st)
	}
	if cur, ok, _ := r.set.Current(); !ok || cur.DeviceLabel != "ICU-MON-04" {
		t.Error("settings lost")
	}
	if _, err := r.keys.CommittedClientKey(); err != nil {
		t.Errorf("client key lost: %v", err)
	}
	if _, ok := r.eng.Current(); !ok {
		t.Error("engine forgot its provisioning")
	}
	got := r.stateChanges()
	want := []string{"PROVISIONED->UNPROVISIONED FACTORY_RESET", "UNPROVISIONED->PROVISIONED FACTORY_RESET_FAILED"}
	if len(got) < 2 || got[len(got)-2] != want[0] || got[len(got)-1] != want[1] {
		t.Errorf("transitions %q, want to end with %q", got, want)
	}
	if f := r.aud.Named("FACTORY_RESET_FAILED"); len(f) != 1 || !strings.Contains(f[0].Reason, "input/output error") {
		t.Errorf("FACTORY_RESET_FAILED records %+v", f)
	}
	r.disp.mu.Lock()
	for _, v := range r.disp.views[shown:] {
		if v.State != state.Provisioned {
			t.Errorf("the screen showed %s during a reset that erased nothing", v.State)
		}
	}
	r.disp.mu.Unlock()
	// The erase works again: the reset goes through.
	r.resetMu.Lock()
	r.resetErr = nil
	r.resetMu.Unlock()
	if err := r.factoryReset(); err != nil {
		t.Fatal(err)
	}
	if st := r.eng.Status(); st.State != state.Unprovisioned || st.LastError != failure.None {
		t.Errorf("status after the second reset %+v", st)
	}
}

// The connection test's outcome has its own place in Status (verdict,
// time, server), and Step stays the progress of a push.
func TestStatusKeepsTheLastConnectionCheck(t *testing.T) {
	r := newRig(t, nil)
	if c := r.eng.Status().ConnCheck; c.Verdict != conncheck.NotChecked {
		t.Fatalf("unprovisioned device has a connection check %+v", c)
	}
	r.mustSucceed(r.pair())
	host := strings.TrimPrefix(r.monitor.URL, "https://")
	if c := r.eng.Status().ConnCheck; c.Verdict != conncheck.Passed || c.Server != host || c.At.IsZero() {
		t.Errorf("after provisioning: %+v", c)
	}
	// After a reboot the device checks again.
	r.stop()
	r.start()
	r.eventually("connection check after boot", func() bool { return r.eng.Status().ConnCheck.Verdict == conncheck.Passed })
	if st := r.eng.Status(); st.Step != "" || st.ConnCheck.Server != host {
		t.Errorf("status after the check: %+v", st)
	}
	// A server that is down: failed, with why.
	r.monitorDown()
	r.stop()
	r.start()
	r.eventually("failed connection check after boot", func() bool { return r.eng.Status().ConnCheck.Verdict == conncheck.Failed })
	if st := r.eng.Status(); st.Step != "" || st.State != state.Provisioned || !strings.Contains(st.ConnCheck.Detail, "refused") {
		t.Errorf("status after the failed check: %+v", st)
	}
	if len(r.aud.Named("CONNECTION_CHECK_FAILED")) != 1 || len(r.aud.Named("CONNECTION_CHECK_PASSED")) != 1 {
		t.Error("connection checks not audited")
	}
}
