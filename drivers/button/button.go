package button

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/zmonitor/firmware/internal/base/clock"
	"periph.io/x/conn/v3"
	"periph.io/x/conn/v3/gpio"
)

// Kind is what happened to the button.
type Kind int

const (
	// Press is reported when the button goes down (after debouncing).
	Press Kind = 1
	// LongPress is reported once when the button is still down
	// Opts.LongPress after its Press.
	LongPress Kind = 2
)

// String implements fmt.Stringer.
func (k Kind) String() string {
	switch k {
	case Press:
		return "Press"
	case LongPress:
		return "LongPress"
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// Event is one button event.
type Event struct {
	Kind Kind
	// At is when the driver saw the edge (or, for LongPress, noticed the
	// threshold), on Opts.Clock. It carries a monotonic reading with the
	// system clock.
	At time.Time
}

// String implements fmt.Stringer.
func (e Event) String() string {
	return e.Kind.String() + "@" + e.At.Format("15:04:05.000")
}

// Opts configures the button.
type Opts struct {
	// ActiveLow is true when a pressed button pulls the line low (the usual
	// wiring with a pull-up). The qemu-virt board's PL061 line 3 is active
	// high.
	ActiveLow bool
	// Pull is the bias requested on the line. gpio.PullNoChange (the
	// default) leaves it to the board's resistors.
	Pull gpio.Pull
	// Debounce is how long edges are ignored after an accepted change of
	// level. Zero means 30 ms. It must be below LongPress.
	Debounce time.Duration
	// LongPress is how long the button must be held for a LongPress event.
	// Zero means 3 s.
	LongPress time.Duration
	// Clock stamps events and measures the debounce and long-press
	// intervals. Nil means the system clock.
	Clock clock.Clock
}

// DefaultOpts is the recommended configuration: active high, 30 ms debounce,
// 3 s long press.
var DefaultOpts = Opts{
	Debounce:  30 * time.Millisecond,
	LongPress: 3 * time.Second,
}

// pollInterval bounds how long Run waits for an edge before it looks at the
// context, the long-press deadline and the line level again. Halt and
// context cancellation also interrupt a pending wait on a gpioioctl line.
const pollInterval = 100 * time.Millisecond

// Dev is a debounced push button.
type Dev struct {
	pin  gpio.PinIn
	opts Opts
	clk  clock.Clock
	poll time.Duration

	mu      sync.Mutex
	t       tracker
	running bool
	stop    context.CancelFunc
}

// New configures pin as an input with edge detection on both edges and
// returns the button. opts may be nil for DefaultOpts; it is copied.
//
// The level read now is the button's resting state: a button already held
// at start does not produce a Press until it is released and pressed again.
func New(pin gpio.PinIn, opts *Opts) (*Dev, error) {
	if pin == nil {
		return nil, errors.New("button: nil pin")
	}
	o := DefaultOpts
	if opts != nil {
		o = *opts
	}
	if o.Debounce == 0 {
		o.Debounce = DefaultOpts.Debounce
	}
	if o.LongPress == 0 {
		o.LongPress = DefaultOpts.LongPress
	}
	if o.Debounce < 0 || o.LongPress < 0 {
		return nil, fmt.Errorf("button: negative interval (debounce %s, long press %s)", o.Debounce, o.LongPress)
	}
	if o.Debounce >= o.LongPress {
		return nil, fmt.Errorf("button: debounce %s must be shorter than long press %s", o.Debounce, o.LongPress)
	}
	switch o.Pull {
	case gpio.PullNoChange, gpio.Float, gpio.PullUp, gpio.PullDown:
	default:
		return nil, fmt.Errorf("button: invalid pull %s", o.Pull)
	}
	clk := o.Clock
	if clk == nil {
		clk = clock.System{}
	}
	if err := pin.In(o.Pull, gpio.BothEdges); err != nil {
		return nil, fmt.Errorf("button: configure %s as input with edges: %w", pin, err)
	}
	active := gpio.High
	if o.ActiveLow {
		active = gpio.Low
	}
	d := &Dev{pin: pin, opts: o, clk: clk, poll: pollInterval}
	d.t = newTracker(active, o.Debounce, o.LongPress, pin.Read())
	return d, nil
}

// String implements conn.Resource.
func (d *Dev) String() string {
	pol := "active-high"
	if d.opts.ActiveLow {
		pol = "active-low"
	}
	return fmt.Sprintf("button{%s, %s, debounce %s}", d.pin, pol, d.opts.Debounce)
}

// Halt stops a running Run, which then returns nil. It implements
// conn.Resource.
func (d *Dev) Halt() error {
	d.mu.Lock()
	stop := d.stop
	d.mu.Unlock()
	if stop != nil {
		stop()
	}
	return nil
}

// ErrRunning is returned by Run when another Run is already active.
var ErrRunning = errors.New("button: Run is already running")

// Run waits for edges and sends events to out until ctx is done (it then
// returns ctx.Err()) or Halt is called (it then returns nil). It starts no
// goroutine that outlives it. Sending to out blocks; a slow reader delays
// edge handling but edges are queued by the kernel.
func (d *Dev) Run(ctx context.Context, out chan<- Event) error {
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	d.mu.Lock()
	if d.running {
		d.mu.Unlock()
		return ErrRunning
	}
	d.running, d.stop = true, stop
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		d.running, d.stop = false, nil
		d.mu.Unlock()
	}()
	// Interrupt a pending WaitForEdge when the context ends (gpioioctl lines
	// honour Halt; other pins are bounded by the poll interval).
	unhook := context.AfterFunc(runCtx, func() { _ = d.pin.Halt() })
	defer unhook()

	for {
		if runCtx.Err() != nil {
			return ctx.Err()
		}
		wait := d.t.wait(d.clk.Now(), d.poll)
		edge := d.pin.WaitForEdge(wait)
		if runCtx.Err() != nil {
			return ctx.Err()
		}
		now := d.clk.Now()
		var ev Event
		var ok bool
		if edge {
			ev, ok = d.t.edge(now)
		} else {
			ev, ok = d.t.quiet(now, d.pin.Read())
		}
		if !ok {
			continue
		}
		select {
		case out <- ev:
		case <-runCtx.Done():
			return ctx.Err()
		}
	}
}

var _ conn.Resource = &Dev{}
