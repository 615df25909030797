package engine_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/zmonitor/firmware/internal/base/clock"
	"github.com/zmonitor/firmware/internal/fw/engine"
	"github.com/zmonitor/firmware/internal/fw/screen"
	"github.com/zmonitor/firmware/internal/fw/settings"
	"github.com/zmonitor/firmware/internal/proto/state"
)

// The engine starts where the boot plan says, and refuses a start that
// cannot be: it never looks at the settings to decide again.
func TestNewChecksTheStart(t *testing.T) {
	r := newRig(t, nil)
	committed := &settings.Provisioning{ServerURL: "https://monitoring.test:8443/zm", DeviceLabel: "ICU-MON-04"}
	for _, c := range []struct {
		start engine.Start
		want  string
	}{
		{engine.Start{State: state.Provisioned}, "PROVISIONED start needs its committed settings"},
		{engine.Start{State: state.Unprovisioned, Committed: committed}, "committed settings given for an UNPROVISIONED start"},
		{engine.Start{State: state.ReadyToPair}, "cannot start in READY_TO_PAIR"},
	} {
		o := r.opts
		o.Start = c.start
		if _, err := engine.New(o, r.deps()); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("New with %+v = %v, want %q", c.start, err, c.want)
		}
	}
}

// The engine's first view is StartView's: what the boot plan drew (or
// rendered ahead) is what the engine shows, so its first Show draws
// nothing new.
func TestFirstViewIsStartView(t *testing.T) {
	r := newRig(t, nil) // unprovisioned: its engine runs
	first := r.firstView()
	if want := engine.StartView(r.opts, "127.0.0.1"); !reflect.DeepEqual(first, want) {
		t.Errorf("first view %+v, StartView %+v", first, want)
	}
	if first.State != state.Unprovisioned || first.DeviceID != "ZM-001" || first.IPAddress != "127.0.0.1" {
		t.Errorf("unprovisioned start view %+v", first)
	}

	// A provisioned start: the committed label and the server's host.
	r.mustSucceed(r.pair())
	r.stop()
	r.disp.reset()
	r.start()
	first = r.firstView()
	if want := engine.StartView(r.opts, "127.0.0.1"); !reflect.DeepEqual(first, want) {
		t.Errorf("first view %+v, StartView %+v", first, want)
	}
	if first.State != state.Provisioned || first.DeviceLabel != "ICU-MON-04" || !strings.HasPrefix(first.ServerHost, "127.0.0.1:") {
		t.Errorf("provisioned start view %+v", first)
	}
}

// deps are the rig's collaborators, for engines the test makes itself.
func (r *rig) deps() engine.Deps {
	return engine.Deps{Clock: r.clk, Wall: clock.NewWall(r.clk, buildTime, nil), Keys: r.keys, Settings: r.set,
		Audit: r.aud, Display: r.disp, Anchors: r.root.Pool()}
}

// firstView is the first view shown since the display was reset.
func (r *rig) firstView() screen.View {
	r.t.Helper()
	r.disp.mu.Lock()
	defer r.disp.mu.Unlock()
	if len(r.disp.views) == 0 {
		r.t.Fatal("the engine showed nothing")
	}
	return r.disp.views[0]
}

// reset forgets the views shown so far.
func (d *display) reset() {
	d.mu.Lock()
	d.views = nil
	d.mu.Unlock()
}
