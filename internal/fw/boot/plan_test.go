package boot

import (
	"bytes"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"
)

// fakeStage records the faults a plan shows.
type fakeStage struct {
	trace  *bootTrace
	ran    []string
	faults []string
}

func (s *fakeStage) tracer() *bootTrace     { return s.trace }
func (s *fakeStage) showFault(fault string) { s.faults = append(s.faults, fault) }

func (s *fakeStage) do(name string, err error) step[*fakeStage] {
	return step[*fakeStage]{name: name, fault: "Part " + name + " failed", run: func(s *fakeStage) error {
		s.ran = append(s.ran, name)
		return err
	}}
}

func TestPlanRunsInOrderTracesAndStopsAtTheFirstFailure(t *testing.T) {
	var log bytes.Buffer
	s := &fakeStage{trace: &bootTrace{log: slog.New(slog.NewTextHandler(&log, nil))}}
	p := plan[*fakeStage]{s.do("one", nil), s.do("two", errors.New("broken")), s.do("three", nil)}
	err := p.run(s)
	if err == nil || err.Error() != "two: broken" {
		t.Errorf("run = %v, want the failed step's name and its error", err)
	}
	if !slices.Equal(s.ran, []string{"one", "two"}) {
		t.Errorf("ran %v", s.ran)
	}
	if !slices.Equal(s.faults, []string{"Part two failed"}) {
		t.Errorf("faults shown %v", s.faults)
	}
	if !strings.Contains(log.String(), `step=one`) || strings.Contains(log.String(), `step=two`) {
		t.Errorf("trace should have the step that ended, not the one that failed:\n%s", log.String())
	}
}

func TestPlanFaultErrorNamesThePartThatFailed(t *testing.T) {
	s := &fakeStage{}
	inner := errors.New("disk full")
	p := plan[*fakeStage]{s.do("open the settings", &faultError{fault: "Audit log unavailable", err: inner})}
	err := p.run(s)
	if !errors.Is(err, inner) {
		t.Errorf("run = %v, want it to wrap %v", err, inner)
	}
	if !slices.Equal(s.faults, []string{"Audit log unavailable"}) {
		t.Errorf("faults shown %v", s.faults)
	}
}

// The boot time's order, as data: what the first frame waits for, and what
// waits for it (docs/qemu.md, "Where the boot time goes"). A step moved
// ahead of the first frame here costs the boot tens of milliseconds under
// QEMU.
func TestPlansKeepTheBootTimeOrder(t *testing.T) {
	dev := devicePlan.names()
	before(t, dev, "start readying the screen", "open the settings")   // the screen gets ready beside the settings
	before(t, dev, "open the settings", "decide the first frame")      // the first frame waits only for the settings
	before(t, dev, "decide the first frame", "open the audit log")     // the log's hash chain is verified after the frame
	before(t, dev, "decide the first frame", "load the keys")          // the TPM after the frame
	before(t, dev, "decide the first frame", "read the trust anchors") // x509 after the frame
	before(t, dev, "load the keys", "decide the start state")          // a provisioned start needs the keys
	before(t, dev, "decide the start state", "make the engine")        // the engine is handed its start
	before(t, dev, "make the engine", "run the engine")

	fw := firmwarePlan.names()
	before(t, fw, "read the board profile", "start opening the button")
	before(t, fw, "start opening the button", "mount the data partition")                  // periph's init beside the mount
	before(t, fw, "start opening the display and the console", "mount the data partition") // the mode set beside the mount
	before(t, fw, "mount the data partition", "wait for the display")
	before(t, fw, "start the network", "run the device")
	if fw[len(fw)-1] != "run the device" {
		t.Errorf("the firmware plan ends with %q, not the device plan", fw[len(fw)-1])
	}
}

// before fails unless a and b are steps and a comes first.
func before(t *testing.T, names []string, a, b string) {
	t.Helper()
	i, j := slices.Index(names, a), slices.Index(names, b)
	if i < 0 || j < 0 || i >= j {
		t.Errorf("want step %q before %q in %q", a, b, names)
	}
}

// Every step from the screen on that can fail with the device unable to
// provision says so on the panel.
func TestDevicePlanFaults(t *testing.T) {
	want := map[string]string{
		"read the identity":      "Device identity unreadable",
		"open the settings":      "Settings unreadable",
		"open the audit log":     "Audit log unavailable",
		"load the keys":          "TPM keys unavailable",
		"read the trust anchors": "Provisioning trust anchor unreadable",
		"make the engine":        "Firmware start-up failed",
		"make the console":       "Diagnostics console failed to start",
	}
	for _, st := range devicePlan {
		if st.fault != want[st.name] {
			t.Errorf("step %q shows fault %q, want %q", st.name, st.fault, want[st.name])
		}
	}
}

func TestParseCmdline(t *testing.T) {
	k := parseCmdline("console=ttyAMA0 quiet zmonitor.device_id=ZM-01 zmonitor.serial=SN-1 zmonitor.label=Bed=4 zmonitor.verbose=1 zmonitor.other=x")
	if k != (kernelArgs{deviceID: "ZM-01", serial: "SN-1", label: "Bed=4", verbose: true}) {
		t.Errorf("parsed %+v", k)
	}
	if k := parseCmdline("zmonitor.verbose=0"); k.verbose {
		t.Error("verbose=0 read as on")
	}
}
