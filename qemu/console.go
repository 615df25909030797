package qemu

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sync"
)

// maxConsole bounds the console output kept in memory; older output is
// dropped (it is still in STATE/console.log).
const maxConsole = 4 << 20

// console collects the console output and lets callers wait for a pattern
// after a read cursor.
type console struct {
	mu     sync.Mutex
	buf    []byte
	cursor int           // Expect searches buf[cursor:]
	more   chan struct{} // closed and replaced on every append or close
	closed error         // set when the stream ended
	copyTo io.Writer
}

func newConsole(copyTo io.Writer) *console {
	return &console{more: make(chan struct{}), copyTo: copyTo}
}

// Write appends console output.
func (c *console) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.buf = append(c.buf, p...)
	if over := len(c.buf) - maxConsole; over > 0 {
		c.buf = append(c.buf[:0], c.buf[over:]...)
		c.cursor = max(0, c.cursor-over)
	}
	if c.copyTo != nil {
		_, _ = c.copyTo.Write(p)
	}
	close(c.more)
	c.more = make(chan struct{})
	return len(p), nil
}

// end records that no more output will come (the connection closed).
func (c *console) end(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err == nil {
		err = io.EOF
	}
	c.closed = err
	close(c.more)
	c.more = make(chan struct{})
}

// restart forgets the end of the previous stream (a new boot), keeping the
// text, and moves the cursor to the end.
func (c *console) restart() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = nil
	c.cursor = len(c.buf)
}

// ErrConsoleClosed means the console ended before the pattern appeared.
var ErrConsoleClosed = errors.New("console closed")

// expect waits until re matches the output after the cursor, moves the
// cursor past the match and returns the match's submatches (0: the whole
// match).
func (c *console) expect(ctx context.Context, re *regexp.Regexp) ([]string, error) {
	return c.await(ctx, re, true)
}

// watch waits until re matches anywhere in the output kept and returns the
// match's submatches; the cursor stays where it is.
func (c *console) watch(ctx context.Context, re *regexp.Regexp) ([]string, error) {
	return c.await(ctx, re, false)
}

// await waits, without polling, for re to match the output after the
// cursor (expect) or all of it (watch).
func (c *console) await(ctx context.Context, re *regexp.Regexp, expect bool) ([]string, error) {
	what := "watch"
	if expect {
		what = "expect"
	}
	for {
		c.mu.Lock()
		from := 0
		if expect {
			from = c.cursor
		}
		text := c.buf[from:]
		if loc := re.FindSubmatchIndex(text); loc != nil {
			subs := make([]string, len(loc)/2)
			for i := range subs {
				if loc[2*i] >= 0 {
					subs[i] = string(text[loc[2*i]:loc[2*i+1]])
				}
			}
			if expect {
				c.cursor += loc[1]
			}
			c.mu.Unlock()
			return subs, nil
		}
		more, closed := c.more, c.closed
		c.mu.Unlock()
		if closed != nil {
			return nil, fmt.Errorf("%s %q: %w (%v)", what, re, ErrConsoleClosed, closed)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%s %q: %w", what, re, ctx.Err())
		case <-more:
		}
	}
}

// text returns all output kept.
func (c *console) text() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return string(c.buf)
}
