package console

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/goburrow/serial"

	"github.com/zmonitor/firmware/internal/base/clock"
)

// Options configures a Console. The zero value of each field means its
// default.
type Options struct {
	// Prompt is printed before each line; default "zm> ".
	Prompt string
	// MaxLine is the longest command line in bytes, 16..4096; default 256.
	MaxLine int
	// NoEcho turns echo off (for terminals that echo locally).
	NoEcho bool
	// AllowProvision lets `provision` start provisioning; it comes from the
	// board profile and is off by default.
	AllowProvision bool
	// ConfirmTimeout is how long factory-reset waits for the button;
	// default 10 s.
	ConfirmTimeout time.Duration
	// Clock times the factory-reset confirmation and write retries; default
	// the system clock.
	Clock clock.Clock
}

// DefaultOpts are the options used for a nil *Options.
var DefaultOpts = Options{Prompt: "zm> ", MaxLine: 256, ConfirmTimeout: 10 * time.Second}

// Limits of the audit command.
const (
	DefaultAudit = 10
	MaxAudit     = 200
)

// Console runs the diagnostics console on one serial port. It is used by
// one goroutine, the one calling Run.
type Console struct {
	rw   io.ReadWriter
	dev  Device
	o    Options
	ed   *LineEditor
	echo bool
	cmds []command
}

// New returns a console on rw for dev. o may be nil; it is copied.
func New(rw io.ReadWriter, dev Device, o *Options) (*Console, error) {
	opts := DefaultOpts
	if o != nil {
		opts = *o
		if opts.Prompt == "" {
			opts.Prompt = DefaultOpts.Prompt
		}
		if opts.MaxLine == 0 {
			opts.MaxLine = DefaultOpts.MaxLine
		}
		if opts.ConfirmTimeout == 0 {
			opts.ConfirmTimeout = DefaultOpts.ConfirmTimeout
		}
	}
	if opts.Clock == nil {
		opts.Clock = clock.System{}
	}
	switch {
	case rw == nil || dev == nil:
		return nil, errors.New("console: nil port or device")
	case opts.MaxLine < 16 || opts.MaxLine > 4096:
		return nil, fmt.Errorf("console: MaxLine %d outside 16..4096", opts.MaxLine)
	case opts.ConfirmTimeout < 0:
		return nil, fmt.Errorf("console: negative ConfirmTimeout %v", opts.ConfirmTimeout)
	case len(opts.Prompt) > 32:
		return nil, fmt.Errorf("console: prompt longer than 32 bytes")
	}
	c := &Console{rw: rw, dev: dev, o: opts, ed: NewLineEditor(opts.MaxLine), echo: !opts.NoEcho}
	c.cmds = c.commands()
	return c, nil
}

// Run serves the console until the port reports io.EOF (then it returns
// nil), ctx is done (ctx.Err()) or reading or writing fails. Read timeouts
// (serial.ErrTimeout, os.ErrDeadlineExceeded, or a read of 0 bytes and no
// error) count as "nothing typed".
func (c *Console) Run(ctx context.Context) error {
	if err := c.write("Z Monitor diagnostics console. Type help.\n" + c.o.Prompt); err != nil {
		return err
	}
	buf := make([]byte, 256)
	empty := 0
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, err := c.rw.Read(buf)
		// goburrow/serial passes syscall.Read's -1 through on errors.
		n = max(0, min(n, len(buf)))
		for _, b := range buf[:n] {
			if werr := c.feed(ctx, b); werr != nil {
				return werr
			}
		}
		switch {
		case err == nil && n > 0:
			empty = 0
		case err == nil || isTimeout(err):
			// A port that returns at once with nothing must not spin.
			if empty++; empty > 2 {
				c.wait(ctx, 20*time.Millisecond)
			}
		case errors.Is(err, io.EOF):
			return nil
		default:
			return fmt.Errorf("console: read: %w", err)
		}
	}
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.Is(err, serial.ErrTimeout) || errors.Is(err, os.ErrDeadlineExceeded) ||
		errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EINTR) ||
		(errors.As(err, &t) && t.Timeout())
}

// wait blocks for d on the console's clock, or until ctx is done.
func (c *Console) wait(ctx context.Context, d time.Duration) {
	t := c.o.Clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C():
	case <-ctx.Done():
	}
}

// feed handles one input byte.
func (c *Console) feed(ctx context.Context, b byte) error {
	echo, ev, line := c.ed.Feed(b)
	if c.echo && len(echo) > 0 {
		if err := c.writeRaw(echo); err != nil {
			return err
		}
	} else if !c.echo && ev != None {
		// Without echo the terminal's own newline may be missing.
		if err := c.writeRaw([]byte("\r\n")); err != nil {
			return err
		}
	}
	var out string
	switch ev {
	case None:
		return nil
	case Line:
		out = c.exec(ctx, line)
	case TooLong:
		out = fmt.Sprintf("error: line too long (max %d)\n", c.ed.Max())
	case Unprintable:
		out = "error: unprintable input\n"
	case Interrupt:
	}
	return c.write(out + c.o.Prompt)
}

// write prints s after scrubbing it, with CRLF line ends.
func (c *Console) write(s string) error {
	s = scrub(s)
	s = strings.ReplaceAll(s, "\r\n", "\n")
	return c.writeRaw([]byte(strings.ReplaceAll(s, "\n", "\r\n")))
}

// writeRaw writes all of b, looping over short writes (a non-blocking
// serial port takes what its buffer holds) for up to 2 s of stalls.
func (c *Console) writeRaw(b []byte) error {
	stalls := 0
	for len(b) > 0 {
		n, err := c.rw.Write(b)
		n = max(0, min(n, len(b))) // -1 from a failed write(2) is 0
		b = b[n:]
		switch {
		case err != nil && !isTimeout(err):
			return fmt.Errorf("console: write: %w", err)
		case n == 0:
			if stalls++; stalls > 200 {
				return errors.New("console: write: port stalled for 2 s")
			}
			c.wait(context.Background(), 10*time.Millisecond)
		default:
			stalls = 0
		}
	}
	return nil
}
