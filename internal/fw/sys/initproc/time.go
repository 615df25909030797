package initproc

import (
	"fmt"
	"time"
)

// SetSystemTime sets the system clock and writes the RTC, so the time
// survives a reboot. It is the hook for clock.Wall's Adopt:
//
//	clock.NewWall(clock.System{}, buildTime, p.SetSystemTime)
func (p *Init) SetSystemTime(t time.Time) error {
	if err := p.sys.Settimeofday(t); err != nil {
		return fmt.Errorf("set system time: %w", err)
	}
	if err := p.sys.SetRTC(p.rtc, t.UTC()); err != nil {
		return fmt.Errorf("set system time: write %s: %w", p.rtc, err)
	}
	return nil
}
