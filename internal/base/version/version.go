// Package version holds the firmware version and build time, stamped at
// link time with -ldflags -X.
package version

import "time"

// Set by the linker (see the Makefile).
var (
	Version   = "dev"
	BuildTime = "2026-11-01T00:00:00Z"
)

// Build returns the build time; it is the floor below which the device
// never trusts its wall clock.
func Build() time.Time {
	t, err := time.Parse(time.RFC3339, BuildTime)
	if err != nil {
		return time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	}
	return t.UTC()
}
