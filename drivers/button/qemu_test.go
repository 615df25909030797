package button

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"
)

// qemuLine models the QEMU virt board's button path, from QMP to the
// gpio character device, to check which presses can reach the driver:
//
//   - hw/gpio/gpio_key.c: system_powerdown raises the line and (re)arms a
//     100 ms timer that lowers it. A press while the line is up only moves
//     the timer: no edge.
//   - hw/gpio/pl061.c with both-edge detection: every change sets one
//     interrupt status bit; edges the guest has not yet handled share it.
//   - Linux gpio-pl061 + gpiolib-cdev: one line event per handled
//     interrupt, queued for the reader.
//
// stall holds the guest off interrupts (a descheduled vCPU on a loaded
// host); resume delivers the latched interrupt as one event.
type qemuLine struct {
	gpiotest.Pin
	mu          sync.Mutex
	level       gpio.Level
	timer       *time.Timer
	latched     bool
	stalled     bool
	transitions int
	events      chan struct{}
}

const gpioKeyLatency = 100 * time.Millisecond

func newQEMULine() *qemuLine {
	return &qemuLine{Pin: gpiotest.Pin{N: "PL061_3", Num: 3}, events: make(chan struct{}, 16)}
}

func (q *qemuLine) In(gpio.Pull, gpio.Edge) error { return nil }

func (q *qemuLine) Read() gpio.Level {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.level
}

func (q *qemuLine) WaitForEdge(timeout time.Duration) bool {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-q.events:
		return true
	case <-t.C:
		return false
	}
}

// press is QMP system_powerdown.
func (q *qemuLine) press() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.set(gpio.High)
	if q.timer != nil {
		q.timer.Stop()
	}
	q.timer = time.AfterFunc(gpioKeyLatency, func() {
		q.mu.Lock()
		defer q.mu.Unlock()
		q.set(gpio.Low)
	})
}

func (q *qemuLine) set(l gpio.Level) {
	if l == q.level {
		return
	}
	q.level = l
	q.transitions++
	q.latched = true
	q.deliver()
}

func (q *qemuLine) deliver() {
	if q.latched && !q.stalled {
		q.latched = false
		q.events <- struct{}{}
	}
}

func (q *qemuLine) stall(on bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.stalled = on
	q.deliver()
}

// runQEMU starts the driver on a qemuLine with the board's options and
// returns a function that stops it and returns the presses seen.
func runQEMU(t *testing.T, q *qemuLine) func() []Event {
	t.Helper()
	d, err := New(q, &Opts{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	out := make(chan Event, 64)
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx, out) }()
	return func() []Event {
		time.Sleep(time.Second)
		synctest.Wait()
		cancel()
		<-done
		close(out)
		var got []Event
		for ev := range out {
			if ev.Kind == Press {
				got = append(got, ev)
			}
		}
		return got
	}
}

// Presses whose QMP commands come less than 100 ms apart are one pulse on
// the line: the driver can see only one press. This is the press the e2e
// harness used to lose (it pressed again as soon as the console showed the
// previous press's state); the loss is QEMU's, before any edge exists.
func TestQEMUPressesWithinPulseAreOne(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newQEMULine()
		stop := runQEMU(t, q)
		for i := 0; i < 30; i++ {
			q.press()
			time.Sleep(50 * time.Millisecond)
		}
		got := stop()
		if len(got) != 1 || q.transitions != 2 {
			t.Fatalf("30 presses 50 ms apart: %d Press events, %d line transitions; want 1 and 2 (one merged pulse)", len(got), q.transitions)
		}
	})
}

// Presses further apart than the pulse (plus the debounce after the
// release) are each seen.
func TestQEMUBackToBackPressesAllSeen(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newQEMULine()
		stop := runQEMU(t, q)
		for i := 0; i < 30; i++ {
			q.press()
			time.Sleep(150 * time.Millisecond)
		}
		if got := stop(); len(got) != 30 {
			t.Fatalf("30 presses 150 ms apart: %d Press events; want 30", len(got))
		}
	})
}

// A guest that does not run for the whole pulse handles its two edges as
// one interrupt (one line event). The press is still seen, and so are the
// following ones (the tracked level is out of step with the line until
// the quiet-period resynchronisation; a press in between is reported at
// its release edge instead of its press edge).
func TestQEMUStalledGuestStillSeesPresses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newQEMULine()
		stop := runQEMU(t, q)
		q.stall(true)
		q.press()
		time.Sleep(120 * time.Millisecond)
		q.stall(false)
		for i := 0; i < 5; i++ {
			time.Sleep(300 * time.Millisecond)
			q.press()
		}
		got := stop()
		if len(got) != 6 {
			t.Fatalf("stalled press then 5 presses: %d Press events %v; want 6", len(got), got)
		}
	})
}
