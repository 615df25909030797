package boot

import (
	"bytes"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/zmonitor/firmware/internal/fw/fault"
)

// fakeStage records the faults a plan shows.
type fakeStage struct {
	trace  *bootTrace
	ran    []string
	faults []fault.Fault
}

func (s *fakeStage) tracer() *bootTrace      { return s.trace }
func (s *fakeStage) showFault(f fault.Fault) { s.faults = append(s.faults, f) }

// do is a step that records it ran, shows fault f when it fails, and
// returns err.
func (s *fakeStage) do(name string, f fault.Fault, err error) step[*fakeStage] {
	return step[*fakeStage]{name: name, fault: f, run: func(s *fakeStage) error {
		s.ran = append(s.ran, name)
		return err
	}}
}

func TestPlanRunsInOrderTracesAndStopsAtTheFirstFailure(t *testing.T) {
	var log bytes.Buffer
	s := &fakeStage{trace: &bootTrace{log: slog.New(slog.NewTextHandler(&log, nil))}}
	p := plan[*fakeStage]{s.do("one", fault.Settings, nil), s.do("two", fault.TPMKeys, errors.New("broken")), s.do("three", fault.Anchors, nil)}
	err := p.run(s)
	if err == nil || err.Error() != "F-TPM-01 TPM keys unavailable: two: broken" {
		t.Errorf("run = %v, want the fault's code and text, the failed step's name and its error", err)
	}
	var fe *fault.Error
	if !errors.As(err, &fe) || fe.Fault != fault.TPMKeys {
		t.Errorf("run = %v, want a fault.Error for F-TPM-01", err)
	}
	if !slices.Equal(s.ran, []string{"one", "two"}) {
		t.Errorf("ran %v", s.ran)
	}
	if !slices.Equal(s.faults, []fault.Fault{fault.TPMKeys}) {
		t.Errorf("faults shown %v", s.faults)
	}
	if !strings.Contains(log.String(), `step=one`) || strings.Contains(log.String(), `step=two`) {
		t.Errorf("trace should have the step that ended, not the one that failed:\n%s", log.String())
	}
}

func TestPlanStepWithoutFaultShowsNothing(t *testing.T) {
	s := &fakeStage{}
	err := plan[*fakeStage]{s.do("mount", fault.None, errors.New("no disk"))}.run(s)
	var fe *fault.Error
	if err == nil || err.Error() != "mount: no disk" || errors.As(err, &fe) {
		t.Errorf("run = %v, want the step's name and its error, no fault", err)
	}
	if len(s.faults) != 0 {
		t.Errorf("faults shown %v", s.faults)
	}
}

func TestPlanFaultErrorNamesThePartThatFailed(t *testing.T) {
	s := &fakeStage{}
	inner := errors.New("disk full")
	p := plan[*fakeStage]{s.do("open the settings", fault.Settings, &faultError{fault: fault.AuditLog, err: inner})}
	err := p.run(s)
	if !errors.Is(err, inner) {
		t.Errorf("run = %v, want it to wrap %v", err, inner)
	}
	var fe *fault.Error
	if !errors.As(err, &fe) || fe.Fault != fault.AuditLog {
		t.Errorf("run = %v, want F-AUD-01", err)
	}
	if !slices.Equal(s.faults, []fault.Fault{fault.AuditLog}) {
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
	want := map[string]fault.Fault{
		"read the identity":      fault.Identity,
		"open the settings":      fault.Settings,
		"open the audit log":     fault.AuditLog,
		"load the keys":          fault.TPMKeys,
		"read the trust anchors": fault.Anchors,
		"make the engine":        fault.Engine,
		"make the console":       fault.Console,
	}
	for _, st := range devicePlan {
		if st.fault != want[st.name] {
			t.Errorf("step %q shows fault %s %q, want %s %q", st.name, st.fault.Code(), st.fault, want[st.name].Code(), want[st.name])
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
