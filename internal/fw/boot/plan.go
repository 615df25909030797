package boot

import (
	"errors"
	"fmt"

	"github.com/zmonitor/firmware/internal/fw/fault"
)

// stage is the state a boot plan's steps work on.
type stage interface {
	// tracer is the boot trace, nil while there is none.
	tracer() *bootTrace
	// showFault puts device fault f on the panel, if there is one.
	showFault(f fault.Fault)
}

// step is one stage of a boot plan: what it does, and what the panel says
// when it fails.
type step[S stage] struct {
	// name says what the step does ("open the settings"). The boot trace
	// logs it when the step ends, and its error is prefixed with it.
	name string
	// fault, if set, is the device fault the panel shows when the step
	// fails: the part's short, non-secret text ("TPM keys unavailable") and
	// its code to look up (F-TPM-01, docs/screens.md). The device cannot
	// provision then, and must not show a prompt to press a button it
	// cannot act on. fault.None: the step fails before there is a screen,
	// or its failure is not the device's to show.
	fault fault.Fault
	// run does the step on the boot's state.
	run func(S) error
}

// plan is the ordered steps of a boot, as data: what runs, in which order,
// and what each failure shows, is read from the list (firmwarePlan,
// devicePlan) rather than from the control flow. A step that starts work
// in the background says so in its name ("start ..."); a later step waits
// for the result.
type plan[S stage] []step[S]

// faultError overrides a step's fault: the part that really failed is
// another one (settings that could not record the stage they discarded,
// because the audit log would not open).
type faultError struct {
	fault fault.Fault
	err   error
}

func (e *faultError) Error() string { return e.err.Error() }
func (e *faultError) Unwrap() error { return e.err }

// run runs the steps in order until one fails. Each step's end is traced;
// a failed step's fault, if any, is shown. The error names the step and,
// when the panel shows a fault, starts with its code and text
// ("F-TPM-01 TPM keys unavailable: load the keys: ..."), as the console
// log prints it.
func (p plan[S]) run(s S) error {
	for _, st := range p {
		if err := st.run(s); err != nil {
			f := st.fault
			var fe *faultError
			if errors.As(err, &fe) {
				f = fe.fault
			}
			err = fmt.Errorf("%s: %w", st.name, err)
			if f != fault.None {
				s.showFault(f)
				return fault.Wrap(f, err)
			}
			return err
		}
		s.tracer().mark(st.name)
	}
	return nil
}

// names lists the steps' names in order.
func (p plan[S]) names() []string {
	out := make([]string, len(p))
	for i, st := range p {
		out[i] = st.name
	}
	return out
}

// cleanup is what a boot opened and must let go of when it ends, last
// opened first.
type cleanup struct{ fns []func() }

// later registers f to run when the boot ends.
func (c *cleanup) later(f func()) { c.fns = append(c.fns, f) }

// run runs the registered functions, last registered first.
func (c *cleanup) run() {
	for i := len(c.fns) - 1; i >= 0; i-- {
		c.fns[i]()
	}
	c.fns = nil
}
