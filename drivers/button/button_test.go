package button

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/zmonitor/firmware/internal/base/clock"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"
)

// The Run tests execute inside a synctest bubble: time.Sleep, the pin's
// WaitForEdge timeouts and clock.System all use the bubble's virtual clock,
// which only moves when every goroutine is blocked. Nothing waits in real
// time, and synctest fails the test if Run leaves a goroutine behind.

func newPin(l gpio.Level) *gpiotest.Pin {
	return &gpiotest.Pin{N: "PROV_BUTTON", Num: 3, L: l, EdgesChan: make(chan gpio.Level), Clock: clockwork.NewRealClock()}
}

type runner struct {
	cancel context.CancelFunc
	out    chan Event
	done   chan error
	start  time.Time
}

func startRun(t *testing.T, pin *gpiotest.Pin, opts *Opts) (*Dev, *runner) {
	t.Helper()
	d, err := New(pin, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	r := &runner{cancel: cancel, out: make(chan Event, 16), done: make(chan error, 1), start: time.Now()}
	exited := make(chan struct{})
	go func() { r.done <- d.Run(ctx, r.out); close(exited) }()
	t.Cleanup(func() { cancel(); <-exited })
	return d, r
}

// next returns the next event, failing if none is pending once every
// goroutine has settled.
func (r *runner) next(t *testing.T) Event {
	t.Helper()
	synctest.Wait()
	select {
	case ev := <-r.out:
		return ev
	default:
		t.Fatal("no event")
		return Event{}
	}
}

func (r *runner) none(t *testing.T) {
	t.Helper()
	synctest.Wait()
	select {
	case ev := <-r.out:
		t.Fatalf("unexpected event %v", ev)
	default:
	}
}

func (r *runner) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	if err := <-r.done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run() = %v; want context.Canceled", err)
	}
}

func expect(t *testing.T, ev Event, k Kind, at time.Duration, start time.Time) {
	t.Helper()
	if ev.Kind != k || ev.At.Sub(start) != at {
		t.Fatalf("event = %s at +%s; want %s at +%s", ev.Kind, ev.At.Sub(start), k, at)
	}
}

// A pulse shorter than the debounce (10 ms here; QEMU's system_powerdown
// pulse is 100 ms, see qemu_test.go) is one Press, and nothing else
// follows.
func TestRunQEMUPowerdownPulse(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pin := newPin(gpio.Low)
		_, r := startRun(t, pin, &Opts{Clock: clock.System{}})
		pin.EdgesChan <- gpio.High
		time.Sleep(10 * time.Millisecond)
		pin.EdgesChan <- gpio.Low
		expect(t, r.next(t), Press, 0, r.start)
		time.Sleep(10 * time.Second)
		r.none(t)
		// A second pulse later is a second Press.
		pin.EdgesChan <- gpio.High
		time.Sleep(10 * time.Millisecond)
		pin.EdgesChan <- gpio.Low
		expect(t, r.next(t), Press, 10*time.Second+10*time.Millisecond, r.start)
		r.stop(t)
	})
}

func TestRunBounceStormIsOnePress(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pin := newPin(gpio.High)
		_, r := startRun(t, pin, &Opts{ActiveLow: true, Clock: clock.System{}})
		for i := 0; i < 11; i++ { // ends low: pressed
			pin.EdgesChan <- gpio.Level(i%2 == 1)
			time.Sleep(time.Millisecond)
		}
		expect(t, r.next(t), Press, 0, r.start)
		time.Sleep(time.Second)
		for i := 0; i < 9; i++ { // ends high: released
			pin.EdgesChan <- gpio.Level(i%2 == 0)
			time.Sleep(time.Millisecond)
		}
		time.Sleep(time.Second)
		r.none(t)
		r.stop(t)
	})
}

func TestRunLongPress(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pin := newPin(gpio.Low)
		_, r := startRun(t, pin, nil) // default: active high, system clock
		pin.EdgesChan <- gpio.High
		expect(t, r.next(t), Press, 0, r.start)
		time.Sleep(2999 * time.Millisecond)
		r.none(t)
		time.Sleep(time.Millisecond)
		expect(t, r.next(t), LongPress, 3*time.Second, r.start)
		time.Sleep(10 * time.Second)
		r.none(t)
		pin.EdgesChan <- gpio.Low
		time.Sleep(time.Second)
		r.none(t)
		r.stop(t)
	})
}

func TestRunCustomIntervals(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pin := newPin(gpio.Low)
		_, r := startRun(t, pin, &Opts{Debounce: 50 * time.Millisecond, LongPress: 500 * time.Millisecond})
		pin.EdgesChan <- gpio.High
		time.Sleep(40 * time.Millisecond)
		pin.EdgesChan <- gpio.Low // inside the 50 ms window
		time.Sleep(40 * time.Millisecond)
		pin.EdgesChan <- gpio.High // after the window closed at 50 ms: a new push
		expect(t, r.next(t), Press, 0, r.start)
		// The release was accepted at 50 ms, its window ended at 100 ms, so
		// the edge at 80 ms takes effect at 100 ms.
		r.none(t)
		time.Sleep(20 * time.Millisecond)
		expect(t, r.next(t), Press, 100*time.Millisecond, r.start)
		time.Sleep(500 * time.Millisecond)
		expect(t, r.next(t), LongPress, 600*time.Millisecond, r.start)
		r.stop(t)
	})
}

func TestRunCancelEndsRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pin := newPin(gpio.Low)
		_, r := startRun(t, pin, nil)
		time.Sleep(time.Minute)
		r.stop(t)
	})
}

func TestRunCancelWhileSending(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pin := newPin(gpio.Low)
		_, r := startRun(t, pin, nil)
		for i := 0; i < 20; i++ { // the out buffer fills and Run blocks sending
			pin.EdgesChan <- gpio.Level(i%2 == 0)
			time.Sleep(time.Second)
		}
		synctest.Wait()
		r.stop(t)
	})
}

func TestHaltEndsRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pin := newPin(gpio.Low)
		d, r := startRun(t, pin, nil)
		synctest.Wait()
		if err := d.Run(t.Context(), r.out); !errors.Is(err, ErrRunning) {
			t.Fatalf("second Run() = %v; want ErrRunning", err)
		}
		if err := d.Halt(); err != nil {
			t.Fatal(err)
		}
		if err := <-r.done; err != nil {
			t.Fatalf("Run() after Halt = %v; want nil", err)
		}
		r.cancel()
	})
}

func TestNewErrors(t *testing.T) {
	if _, err := New(nil, nil); err == nil {
		t.Error("New(nil) succeeded")
	}
	for name, o := range map[string]Opts{
		"debounce>=long": {Debounce: 3 * time.Second, LongPress: time.Second},
		"negative":       {Debounce: -time.Millisecond},
		"bad pull":       {Pull: gpio.Pull(42)},
	} {
		if _, err := New(newPin(gpio.Low), &o); err == nil {
			t.Errorf("%s: New succeeded", name)
		}
	}
	// gpiotest refuses edge detection without an edge channel: the error
	// must surface, wrapped.
	_, err := New(&gpiotest.Pin{N: "X"}, nil)
	if err == nil || !strings.Contains(err.Error(), "EdgesChan") || !strings.HasPrefix(err.Error(), "button: configure") {
		t.Errorf("New(pin without edges) = %v", err)
	}
}

func TestOptsNotModified(t *testing.T) {
	o := Opts{ActiveLow: true}
	d, err := New(newPin(gpio.High), &o)
	if err != nil {
		t.Fatal(err)
	}
	if o.Debounce != 0 || o.LongPress != 0 {
		t.Errorf("caller's Opts written: %+v", o)
	}
	if got := d.String(); !strings.Contains(got, "PROV_BUTTON(3)") || !strings.Contains(got, "active-low") || !strings.Contains(got, "30ms") {
		t.Errorf("String() = %q", got)
	}
}
