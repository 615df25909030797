package webapp

import (
	"fmt"
	"time"

	"github.com/zmonitor/firmware/internal/central/store"
	"github.com/zmonitor/firmware/internal/proto/state"
)

// timelineStep is one row of a pairing's timeline on the operator's
// page: when, how long after the pairing was created, the step's name
// and what it means.
type timelineStep struct {
	At      time.Time
	Elapsed string // "+0.412 s" after created
	Name    string // created, connecting, pushed, PAIRING_RECEIVED, …, PROVISIONED, FAILED NETWORK_TEST_FAILED
	Text    string
	Class   string // "done", "failed"
}

// centralSteps are the Central Station's own steps (the pusher's), in
// plain words; the device's states are named as the device names them.
var centralSteps = map[string]struct{ name, text string }{
	"connecting":        {"connecting", "The Central Station starts the push"},
	"hello":             {"hello", "The monitor answered and proved its identity"},
	"issue certificate": {"certificate issued", "The monitor's client certificate was issued"},
	"sign and seal":     {"sealed", "The configuration was signed and sealed for this monitor"},
	"push":              {"pushed", "The configuration was pushed to the monitor"},
}

// timelineSteps turns a pairing's recorded changes into the timeline:
// created (the scanned QR code or typed code accepted), the Central
// Station's steps up to pushed, each state the device reported, and the
// end: PROVISIONED, or FAILED / REFUSED with the code.
func timelineSteps(p store.Pairing, steps []store.PairingStep) []timelineStep {
	out := make([]timelineStep, 0, len(steps))
	var start time.Time
	for i, st := range steps {
		if i == 0 {
			start = st.At
		}
		row := timelineStep{At: st.At, Elapsed: fmt.Sprintf("+%.3f s", st.At.Sub(start).Seconds()), Class: "done"}
		switch {
		case st.State == store.PairingSucceeded:
			row.Name, row.Text = state.Provisioned.String(), "The monitor is provisioned"
		case st.State == store.PairingFailed || st.State == store.PairingRefused:
			row.Name, row.Class = "FAILED "+st.ResultCode, "failed"
			row.Text = "The pairing failed"
			if st.State == store.PairingRefused {
				row.Name, row.Text = "REFUSED "+st.ResultCode, "The Central Station refused the request"
			}
		case i == 0:
			row.Name, row.Text = "created", "The technician's scanned QR code was accepted"
			if p.Method == store.MethodManual {
				row.Text = "The technician's typed code was accepted"
			}
		case st.DeviceState != "":
			row.Name, row.Text = st.DeviceState, "The monitor reported "+st.DeviceState
			for _, d := range deviceSteps {
				if d.State == st.DeviceState {
					row.Text = d.Text
				}
			}
		default:
			row.Name, row.Text = st.Step, "The Central Station's step "+st.Step
			if c, ok := centralSteps[st.Step]; ok {
				row.Name, row.Text = c.name, c.text
			}
		}
		out = append(out, row)
	}
	return out
}
