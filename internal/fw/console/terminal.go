package console

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"golang.org/x/term"
)

// The line editor is golang.org/x/term's Terminal: history (Up/Down,
// Ctrl-P/N), Left/Right, Home/End and Ctrl-A/E, Ctrl-B/F, Backspace, Delete,
// Ctrl-U, Ctrl-W, Ctrl-K, Ctrl-T, Alt-Left/Right, Ctrl-L (clear and redraw).
// The console adds what a serial line and a PID 1 need, in front of it
// (port) and around it (Console.Run):
//
//   - reads that time out are "nothing typed", a cancelled context ends the
//     read, and n = -1 from goburrow/serial is 0;
//   - CR, LF and CRLF each end one line, also when CR and LF arrive in two
//     reads (x/term sees each as one CR);
//   - Ctrl-C drops the line being typed and gives a fresh prompt (x/term
//     would report the end of input, and report it again on every later
//     call); Ctrl-D is ignored for the same reason;
//   - every byte above 0x7f becomes U+25A1 (□), so the terminal never waits
//     on an invalid UTF-8 sequence and such a line is refused as
//     unprintable (not U+FFFD: x/term takes that rune for "incomplete
//     input" and would wait for more);
//   - an escape sequence is closed after maxEscape bytes, or before a
//     control byte, so a stray ESC never swallows Enter or fills x/term's
//     input buffer; a bracketed-paste start (never turned on) is ignored;
//   - a line stops taking characters at MaxLine and is then refused;
//   - Tab completes command names (Console.complete).

// maxEscape bounds an escape sequence: the longest x/term knows is
// ESC [ 2 0 0 ~ (6 bytes); terminals send at most a few more.
const maxEscape = 16

// errInterrupt is what a read returns where Ctrl-C was typed.
var errInterrupt = errors.New("interrupted (Ctrl-C)")

// Bytes of the filtered stream.
const (
	ctrlC = 0x03
	ctrlD = 0x04
	esc   = 0x1b
)

// replacement is what a byte above 0x7f becomes: U+25A1 WHITE SQUARE.
var replacement = []byte("\u25a1")

// port is the serial port as x/term's Terminal sees it: Read hands out
// filtered input and blocks until there is some (see the list above);
// Write writes everything or fails.
type port struct {
	rw  io.ReadWriter
	ctx context.Context
	// wait pauses between reads that return nothing at once.
	wait func(ctx context.Context, d time.Duration)

	buf     []byte // raw read buffer
	out     []byte // filtered bytes not yet read; ctrlC marks an interrupt
	seq     []byte // the escape sequence in progress
	err     error  // the port's error, reported once out is empty
	afterCR bool   // the last byte was CR: a following LF belongs to it
	escLen  int    // bytes of the escape sequence in progress; 0: none
	empty   int    // reads in a row that returned nothing
}

func newPort(rw io.ReadWriter, wait func(context.Context, time.Duration)) *port {
	return &port{rw: rw, wait: wait, buf: make([]byte, 256), ctx: context.Background()}
}

// Read returns filtered input up to an interrupt; at the interrupt it
// returns errInterrupt. It returns io.EOF at the end of the port's input,
// ctx.Err() once the context ends, and the port's other read errors.
func (p *port) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, io.ErrShortBuffer // never: x/term keeps at most a key's bytes
	}
	for {
		if len(p.out) > 0 {
			if p.out[0] == ctrlC {
				p.out = p.out[1:]
				return 0, errInterrupt
			}
			end := len(p.out)
			if i := slices.Index(p.out, ctrlC); i >= 0 {
				end = i
			}
			n := copy(b, p.out[:end])
			p.out = p.out[n:]
			return n, nil
		}
		if p.err != nil {
			return 0, p.err
		}
		if err := p.ctx.Err(); err != nil {
			return 0, err
		}
		n, err := p.rw.Read(p.buf)
		// goburrow/serial passes syscall.Read's -1 through on errors.
		n = max(0, min(n, len(p.buf)))
		p.filter(p.buf[:n])
		switch {
		case err == nil && n > 0:
			p.empty = 0
		case err == nil || isTimeout(err):
			// A port that returns at once with nothing must not spin.
			if p.empty++; p.empty > 2 {
				p.wait(p.ctx, 20*time.Millisecond)
			}
		case errors.Is(err, io.EOF):
			p.err = io.EOF
		default:
			p.err = fmt.Errorf("console: read: %w", err)
		}
	}
}

// filter appends the bytes typed to p.out as x/term should see them.
func (p *port) filter(in []byte) {
	for _, c := range in {
		if p.afterCR {
			p.afterCR = false
			if c == '\n' {
				continue
			}
		}
		if p.escLen > 0 {
			switch {
			case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '~':
				// x/term ends a sequence at its first letter or '~'.
				if c == '~' && string(p.seq) == "\x1b[200" {
					// Bracketed paste is never turned on: a paste start
					// would make x/term type control keys into the line.
					c = 'z'
				}
				p.out = append(p.out, c)
				p.escLen = 0
				continue
			case c >= 0x20 && c < 0x7f && p.escLen < maxEscape:
				p.out = append(p.out, c)
				p.seq = append(p.seq, c)
				p.escLen++
				continue
			default:
				// Close it (x/term ignores the sequence) and take c as typed.
				p.out = append(p.out, '~')
				p.escLen = 0
			}
		}
		switch {
		case c == esc:
			p.out = append(p.out, c)
			p.seq = append(p.seq[:0], c)
			p.escLen = 1
		case c == ctrlD:
		case c == '\r':
			p.out = append(p.out, c)
			p.afterCR = true
		case c == '\n': // Enter, as CR: x/term would take a LF after a CR as part of it
			p.out = append(p.out, '\r')
		case c > 0x7f:
			p.out = append(p.out, replacement...)
		default: // ctrlC too: Read stops there
			p.out = append(p.out, c)
		}
	}
}

// Write writes all of b, looping over short writes (a non-blocking serial
// port takes what its buffer holds) for up to 2 s of stalls.
func (p *port) Write(b []byte) (int, error) {
	total := len(b)
	stalls := 0
	for len(b) > 0 {
		n, err := p.rw.Write(b)
		n = max(0, min(n, len(b))) // -1 from a failed write(2) is 0
		b = b[n:]
		switch {
		case err != nil && !isTimeout(err):
			return total - len(b), fmt.Errorf("console: write: %w", err)
		case n == 0:
			if stalls++; stalls > 200 {
				return total - len(b), errors.New("console: write: port stalled for 2 s")
			}
			p.wait(context.Background(), 10*time.Millisecond)
		default:
			stalls = 0
		}
	}
	return total, nil
}

// history is the console's command history for x/term (Up/Down): the last
// maxHistory lines that are worth typing again — not empty, not the same as
// the one before, within the line limit and printable (a refused line is
// not kept).
type history struct {
	lines   []string // oldest first
	maxLine int
}

const maxHistory = 50

func (h *history) Add(line string) {
	if strings.TrimSpace(line) == "" || len(line) > h.maxLine || !printable(line) {
		return
	}
	if n := len(h.lines); n > 0 && h.lines[n-1] == line {
		return
	}
	if len(h.lines) == maxHistory {
		h.lines = slices.Delete(h.lines, 0, 1)
	}
	h.lines = append(h.lines, line)
}

func (h *history) Len() int { return len(h.lines) }

// At returns the idx-th most recent line (0: the last one).
func (h *history) At(idx int) string { return h.lines[len(h.lines)-1-idx] }

var _ term.History = (*history)(nil)

// printable reports whether s is printable ASCII only.
func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// complete is x/term's AutoCompleteCallback, which sees every key typed
// into the line (not the editing keys). Tab at the end of the first word
// completes it to the command it starts, or as far as the commands it
// starts agree; a second Tab then lists them. Tab is never typed into the
// line. A character that would make the line longer than MaxLine is not
// typed either, and the line is then refused at Enter (a line cut short
// could be another command): typing stays cheap to echo (x/term redraws
// the rest of the line after each character inserted).
func (c *Console) complete(line string, pos int, key rune) (string, int, bool) {
	if key != '\t' {
		c.tabs = 0
		if len(line) >= c.o.MaxLine {
			c.overflow = true
			return line, pos, true
		}
		return "", 0, false
	}
	word := line[:pos]
	if pos != len(line) || strings.ContainsRune(word, ' ') {
		return line, pos, true
	}
	var names []string
	takesArgs := false
	for _, cmd := range c.cmds {
		if strings.HasPrefix(cmd.name, word) {
			names = append(names, cmd.name)
			takesArgs = cmd.args != ""
		}
	}
	switch len(names) {
	case 0:
		return line, pos, true
	case 1:
		done := names[0]
		if takesArgs {
			done += " "
		}
		return done, len(done), true
	}
	common := names[0]
	for _, n := range names[1:] {
		for !strings.HasPrefix(n, common) {
			common = common[:len(common)-1]
		}
	}
	if len(common) > len(word) {
		c.tabs = 0
		return common, len(common), true
	}
	if c.tabs++; c.tabs > 1 {
		// The terminal moves the prompt and the line below the list.
		slices.Sort(names)
		_, _ = c.term.Write([]byte(strings.Join(names, "  ") + "\n"))
	}
	return line, pos, true
}
