package audit_test

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/zmonitor/firmware/internal/base/clock"
	"github.com/zmonitor/firmware/internal/fw/audit"
)

// How the firmware opens the log at boot: a damaged log never stops the
// monitor, it is moved aside and the new segment says so.
func Example() {
	dir, _ := os.MkdirTemp("", "audit")
	defer os.RemoveAll(dir)
	mono := clock.System{}
	wall := clock.NewWall(mono, time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), nil)

	log, err := audit.Open(dir, audit.Opts{Wall: wall, Mono: mono})
	if errors.Is(err, audit.ErrTampered) {
		// Show "audit log damaged, contact IT" on the screen, then:
		log, err = audit.Recover(dir, audit.Opts{Wall: wall, Mono: mono})
	}
	if err != nil {
		fmt.Println("no audit log:", err) // keep running; the engine logs every failed Record
		return
	}
	defer log.Close()

	var rec audit.Recorder = log // what the engine and the settings store get
	err = rec.Record(audit.Event{Event: "BOOT", To: "UNPROVISIONED", Reason: audit.Sanitize("firmware 1.2.3")})
	fmt.Println(err)
	// Output: <nil>
}
