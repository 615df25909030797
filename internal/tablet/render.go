package tablet

import (
	"fmt"
	"strings"

	"github.com/zmonitor/firmware/internal/proto/failure"
	"github.com/zmonitor/firmware/internal/proto/ident"
	"github.com/zmonitor/firmware/internal/proto/tabletwire"
)

// FormatEvent is one line of the timeline, e.g. "  0.41s  PAIRING_RECEIVED
// (push)".
func FormatEvent(e Event) string {
	s := fmt.Sprintf("%7.2fs  %s", e.Elapsed.Seconds(), e.Name)
	if e.Step != "" && e.Step != e.Name && e.DeviceState == e.Name {
		s += " (" + e.Step + ")"
	}
	return s
}

// Outcome is what the technician reads at the end, one or two lines:
//
//	PROVISIONED: ZM-001 is ready (label ICU-MON-04)
//	PROVISIONING FAILED: Pairing code mismatch. What to do: Re-scan QR code.
//	  Details: ...
//
// The label is the one the Central Station reports it pushed (r.Label);
// label, what the caller asked for, is shown when the Central Station did
// not say (an older one).
func Outcome(r Result, label string) string {

	var b strings.Builder
	if r.Label != "" {
		label = r.Label
	}
	switch {
	case r.Provisioned():
		fmt.Fprintf(&b, "PROVISIONED: %s is ready", r.DeviceID)
		if label != "" {
			fmt.Fprintf(&b, " (label %s)", clean(label, ident.MaxLabel))
		}
		fmt.Fprintf(&b, " after %.1fs\n", r.Elapsed.Seconds())
		return b.String()
	case r.State == tabletwire.StateRefused:
		b.WriteString("REFUSED BY THE CENTRAL STATION: ")
	default:
		b.WriteString("PROVISIONING FAILED: ")
	}
	p := r.Problem
	if p == nil {
		p = deviceProblem(nil)
	}
	b.WriteString(p.Headline() + "\n")
	if p.Message != "" {
		fmt.Fprintf(&b, "  Details (%s): %s\n", p.Code, p.Message)
	} else {
		fmt.Fprintf(&b, "  Code: %s\n", p.Code)
	}
	if hint := reuseHint(r, p); hint != "" {
		b.WriteString("  " + hint + "\n")
	}
	if r.PairingID != "" {
		fmt.Fprintf(&b, "  Pairing: %s\n", r.PairingID)
	}
	return b.String()
}

// reuseHint tells the technician that the QR on the screen is still good
// when nothing reached the device, unless the device no longer shows one.
func reuseHint(r Result, p *Problem) string {
	if !r.Reusable {
		return ""
	}
	switch p.Failure {
	case failure.DeviceNotListening, failure.SessionExpired:
		return "Nothing reached the monitor."
	}
	return "Nothing reached the monitor and its pairing code was not used up: once that is fixed, scan the QR code on its screen again."
}
