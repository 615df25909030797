package button

import (
	"testing"
	"time"

	"periph.io/x/conn/v3/gpio"
)

var t0 = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

func ms(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }

// step is one input to the tracker: an edge, or a quiet period with the
// level read from the line.
type step struct {
	at    time.Time
	quiet bool
	level gpio.Level // for quiet steps
}

func edgeAt(n int) step                { return step{at: ms(n)} }
func quietAt(n int, l gpio.Level) step { return step{at: ms(n), quiet: true, level: l} }

func run(t *testing.T, tr *tracker, steps []step) []Event {
	t.Helper()
	var got []Event
	for _, s := range steps {
		var ev Event
		var ok bool
		if s.quiet {
			ev, ok = tr.quiet(s.at, s.level)
		} else {
			ev, ok = tr.edge(s.at)
		}
		if ok {
			got = append(got, ev)
		}
	}
	return got
}

func wantEvents(t *testing.T, got, want []Event) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("events = %v; want %v", got, want)
	}
	for i := range got {
		if got[i].Kind != want[i].Kind || !got[i].At.Equal(want[i].At) {
			t.Fatalf("events = %v; want %v", got, want)
		}
	}
}

func newT(active, initial gpio.Level) *tracker {
	tr := newTracker(active, 30*time.Millisecond, 3*time.Second, initial)
	return &tr
}

// The qemu-virt board's system_powerdown pulse: up, then down 10 ms later,
// far shorter than the 30 ms debounce. It must be exactly one Press.
func TestTrackerQEMUPulse(t *testing.T) {
	tr := newT(gpio.High, gpio.Low)
	got := run(t, tr, []step{
		edgeAt(0), edgeAt(10),
		quietAt(30, gpio.Low), quietAt(130, gpio.Low), quietAt(230, gpio.Low),
		quietAt(5000, gpio.Low), quietAt(5100, gpio.Low),
	})
	wantEvents(t, got, []Event{{Press, ms(0)}})
	if tr.down {
		t.Fatal("still down after the pulse")
	}
}

func TestTrackerPulseThenPressWithoutQuiet(t *testing.T) {
	tr := newT(gpio.High, gpio.Low)
	got := run(t, tr, []step{edgeAt(0), edgeAt(10), edgeAt(100)})
	wantEvents(t, got, []Event{{Press, ms(0)}, {Press, ms(100)}})
}

func TestTrackerBounceStorm(t *testing.T) {
	tr := newT(gpio.Low, gpio.High) // active low
	steps := []step{}
	// 9 edges within 8 ms: ends low (pressed).
	for i := 0; i < 9; i++ {
		steps = append(steps, edgeAt(i))
	}
	steps = append(steps, quietAt(40, gpio.Low), quietAt(140, gpio.Low))
	// Release with a storm of 7 edges: ends high.
	for i := 0; i < 7; i++ {
		steps = append(steps, edgeAt(1000+i))
	}
	steps = append(steps, quietAt(1040, gpio.High), quietAt(1140, gpio.High))
	// A clean second press.
	steps = append(steps, edgeAt(2000), quietAt(2100, gpio.Low))
	got := run(t, tr, steps)
	wantEvents(t, got, []Event{{Press, ms(0)}, {Press, ms(2000)}})
}

func TestTrackerReleaseBounceIsNoPress(t *testing.T) {
	tr := newT(gpio.High, gpio.Low)
	got := run(t, tr, []step{
		edgeAt(0), quietAt(100, gpio.High),
		edgeAt(500), edgeAt(505), edgeAt(508), // release, bounce up, down
		quietAt(530, gpio.Low), quietAt(630, gpio.Low), quietAt(4000, gpio.Low),
	})
	wantEvents(t, got, []Event{{Press, ms(0)}})
}

func TestTrackerLongPress(t *testing.T) {
	tr := newT(gpio.High, gpio.Low)
	got := run(t, tr, []step{
		edgeAt(0),
		quietAt(2999, gpio.High),
		quietAt(3000, gpio.High),
		quietAt(4000, gpio.High),
		edgeAt(5000), quietAt(5100, gpio.Low),
	})
	wantEvents(t, got, []Event{{Press, ms(0)}, {LongPress, ms(3000)}})
}

func TestTrackerShortPressHasNoLongPress(t *testing.T) {
	tr := newT(gpio.High, gpio.Low)
	got := run(t, tr, []step{edgeAt(0), edgeAt(2000), quietAt(3000, gpio.Low), quietAt(9000, gpio.Low)})
	wantEvents(t, got, []Event{{Press, ms(0)}})
}

func TestTrackerHeldAtStart(t *testing.T) {
	tr := newT(gpio.High, gpio.High)
	got := run(t, tr, []step{
		quietAt(100, gpio.High), quietAt(5000, gpio.High), // no Press, no LongPress
		edgeAt(6000), quietAt(6100, gpio.Low), // release
		edgeAt(7000), // press
	})
	wantEvents(t, got, []Event{{Press, ms(7000)}})
}

func TestTrackerResyncAfterLostEdges(t *testing.T) {
	tr := newT(gpio.High, gpio.Low)
	// One disagreeing read is not trusted (an edge may be in flight).
	if got := run(t, tr, []step{quietAt(100, gpio.High), edgeAt(101)}); len(got) != 1 {
		t.Fatalf("in-flight edge: events = %v; want one Press", got)
	}
	tr = newT(gpio.High, gpio.Low)
	got := run(t, tr, []step{quietAt(100, gpio.High), quietAt(200, gpio.High), quietAt(300, gpio.High)})
	wantEvents(t, got, []Event{{Press, ms(200)}})
}

func TestTrackerWait(t *testing.T) {
	poll := 100 * time.Millisecond
	tr := newT(gpio.High, gpio.Low)
	if got := tr.wait(ms(0), poll); got != poll {
		t.Errorf("idle wait = %s; want %s", got, poll)
	}
	tr.edge(ms(0))
	tr.edge(ms(10)) // release pending until the window ends at 30 ms
	if got := tr.wait(ms(10), poll); got != 20*time.Millisecond {
		t.Errorf("pending wait = %s; want 20ms", got)
	}
	tr = newT(gpio.High, gpio.Low)
	tr.edge(ms(0))
	if got := tr.wait(ms(2950), poll); got != 50*time.Millisecond {
		t.Errorf("long-press wait = %s; want 50ms", got)
	}
	if got := tr.wait(ms(3500), poll); got != time.Millisecond {
		t.Errorf("overdue wait = %s; want 1ms (never 0: gpioioctl waits forever on 0)", got)
	}
}

func TestKindString(t *testing.T) {
	for k, want := range map[Kind]string{Press: "Press", LongPress: "LongPress", 0: "Kind(0)", 7: "Kind(7)"} {
		if got := k.String(); got != want {
			t.Errorf("Kind(%d).String() = %q; want %q", int(k), got, want)
		}
	}
}
