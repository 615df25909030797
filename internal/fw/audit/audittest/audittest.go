// Package audittest is an in-memory audit.Recorder for tests of packages
// that audit: it keeps the events, applies the same validation as the real
// log, and can be made to fail.
package audittest

import (
	"sync"

	"github.com/zmonitor/firmware/internal/fw/audit"
)

// Recorder keeps recorded events in memory. The zero value is ready.
type Recorder struct {
	mu     sync.Mutex
	events []audit.Event
	// Err, when set (before use), is returned by Record, which then keeps
	// nothing.
	Err error
}

// Record implements audit.Recorder. Like the real log it refuses events
// that fail audit.Event.Validate, so tests catch secret-shaped reasons.
func (r *Recorder) Record(ev audit.Event) error {
	if err := ev.Validate(); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.Err != nil {
		return r.Err
	}
	r.events = append(r.events, ev)
	return nil
}

// Events returns a copy of the recorded events, oldest first.
func (r *Recorder) Events() []audit.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]audit.Event(nil), r.events...)
}

// Named returns the recorded events whose name is name.
func (r *Recorder) Named(name string) []audit.Event {
	var out []audit.Event
	for _, ev := range r.Events() {
		if ev.Event == name {
			out = append(out, ev)
		}
	}
	return out
}

var _ audit.Recorder = (*Recorder)(nil)
