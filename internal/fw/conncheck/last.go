package conncheck

import (
	"fmt"
	"time"
)

// Verdict is the outcome of the device's last connection test, as status
// displays show it.
type Verdict int

// Verdicts.
const (
	NotChecked Verdict = iota // no connection test since boot (not provisioned)
	Checking                  // a test is running
	Passed                    // the server answered the health check
	Failed                    // the test failed; Last.Reason says why
	verdictCount
)

var verdictNames = [verdictCount]string{
	NotChecked: "NOT_CHECKED",
	Checking:   "CHECKING",
	Passed:     "PASSED",
	Failed:     "FAILED",
}

// String returns the stable identifier, e.g. "PASSED".
func (v Verdict) String() string {
	if v < 0 || v >= verdictCount {
		return fmt.Sprintf("VERDICT(%d)", int(v))
	}
	return verdictNames[v]
}

// Last is the last connection test of the committed configuration: the
// post-boot check of a provisioned device, or the test that committed it.
type Last struct {
	Verdict Verdict
	// At is the device's wall time when the test ended (zero while
	// Checking); ClockTrusted says whether that clock was trusted.
	At           time.Time
	ClockTrusted bool
	// Server is the host[:port] tested.
	Server string
	// Detail says why the test failed (empty unless Failed): the error as
	// the audit log records it, never a secret.
	Detail string
}
