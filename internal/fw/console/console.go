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
	"golang.org/x/term"

	"github.com/zmonitor/firmware/internal/base/clock"
)

// Options configures a Console. The zero value of each field means its
// default.
type Options struct {
	// Prompt is printed before each line; default "zm> ".
	Prompt string
	// MaxLine is the longest command line in bytes, 16..4000 (x/term keeps
	// at most 4096 characters of a line; a longer one must still be
	// reported, not cut); default 256.
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
	port *port
	dev  Device
	o    Options
	term *term.Terminal
	hist *history
	echo bool
	tabs int // Tabs in a row that completed nothing (the second lists)
	// overflow: characters were not taken because the line was full.
	overflow bool
	cmds     []command
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
	case opts.MaxLine < 16 || opts.MaxLine > 4000:
		return nil, fmt.Errorf("console: MaxLine %d outside 16..4000", opts.MaxLine)
	case opts.ConfirmTimeout < 0:
		return nil, fmt.Errorf("console: negative ConfirmTimeout %v", opts.ConfirmTimeout)
	case len(opts.Prompt) > 32:
		return nil, fmt.Errorf("console: prompt longer than 32 bytes")
	case !printable(opts.Prompt):
		return nil, fmt.Errorf("console: prompt %q is not printable ASCII", opts.Prompt)
	}
	c := &Console{dev: dev, o: opts, hist: &history{maxLine: opts.MaxLine}, echo: !opts.NoEcho}
	c.port = newPort(rw, c.wait)
	c.cmds = c.commands()
	c.newTerminal()
	return c, nil
}

// newTerminal starts a line editor on the port with a fresh line (the
// history stays).
func (c *Console) newTerminal() {
	c.term = term.NewTerminal(c.port, c.o.Prompt)
	c.term.History = c.hist
	c.term.AutoCompleteCallback = c.complete
	c.tabs = 0
}

// Run serves the console until the port reports io.EOF (then it returns
// nil), ctx is done (ctx.Err()) or reading or writing fails. Read timeouts
// (serial.ErrTimeout, os.ErrDeadlineExceeded, or a read of 0 bytes and no
// error) count as "nothing typed".
func (c *Console) Run(ctx context.Context) error {
	c.port.ctx = ctx
	defer func() { c.port.ctx = context.Background() }()
	if err := c.write("Z Monitor diagnostics console. Type help.\n"); err != nil {
		return err
	}
	for {
		line, err := c.readLine()
		switch {
		case errors.Is(err, errInterrupt):
			ack := "^C\r\n"
			if !c.echo {
				ack = "\r\n"
			}
			if _, err := c.port.Write([]byte(ack)); err != nil {
				return err
			}
			c.newTerminal() // x/term keeps the dropped line otherwise
			c.overflow = false
			continue
		case errors.Is(err, term.ErrPasteIndicator):
			// A pasted line runs like a typed one.
		case errors.Is(err, io.EOF):
			return nil
		case err != nil:
			return err
		}
		var out string
		overflow := c.overflow
		c.overflow = false
		switch {
		case overflow || len(line) > c.o.MaxLine:
			out = fmt.Sprintf("error: line too long (max %d)\n", c.o.MaxLine)
		case !printable(line):
			out = "error: unprintable input\n"
		default:
			out = c.exec(ctx, line)
		}
		if err := c.write(out); err != nil {
			return err
		}
	}
}

// readLine reads one line with the editor; with echo off nothing typed is
// shown (x/term's password mode, whose lines the history then records).
func (c *Console) readLine() (string, error) {
	if c.echo {
		return c.term.ReadLine()
	}
	line, err := c.term.ReadPassword(c.o.Prompt)
	if err == nil {
		c.hist.Add(line)
	}
	return line, err
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

// write prints s after scrubbing it, with CRLF line ends.
func (c *Console) write(s string) error {
	s = scrub(s)
	s = strings.ReplaceAll(s, "\r\n", "\n")
	_, err := c.port.Write([]byte(strings.ReplaceAll(s, "\n", "\r\n")))
	return err
}
