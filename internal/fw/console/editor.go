package console

// EditorEvent is what a byte fed to the LineEditor produced.
type EditorEvent int

// Editor events.
const (
	// None: the byte was consumed (typed, erased, ignored).
	None EditorEvent = iota
	// Line: a line was completed; Line holds it.
	Line
	// TooLong: a line longer than the limit was completed and discarded.
	TooLong
	// Unprintable: a line holding control characters or non-ASCII bytes was
	// completed and discarded.
	Unprintable
	// Interrupt: Ctrl-C discarded the line being typed.
	Interrupt
)

func (e EditorEvent) String() string {
	switch e {
	case None:
		return "none"
	case Line:
		return "line"
	case TooLong:
		return "too long"
	case Unprintable:
		return "unprintable"
	case Interrupt:
		return "interrupt"
	}
	return "event(?)"
}

// LineEditor assembles lines from bytes typed on a terminal: printable
// ASCII is kept (up to Max bytes), backspace and DEL erase, CR, LF and CRLF
// each end one line, Ctrl-C drops the line, ANSI escape sequences (arrow
// keys) and NUL are ignored, any other byte spoils the line. It keeps no
// history. The zero value is not usable: use NewLineEditor.
type LineEditor struct {
	max     int
	buf     []byte
	afterCR bool // the previous byte was CR: a following LF is part of it
	long    bool // bytes were dropped because the line was full
	bad     bool // an unprintable byte was typed
	esc     int  // escape sequence state: 0 none, 1 after ESC, 2 inside CSI
}

// NewLineEditor returns an editor for lines of at most n bytes (n >= 1).
func NewLineEditor(n int) *LineEditor {
	n = max(n, 1)
	return &LineEditor{max: n, buf: make([]byte, 0, n)}
}

// Max is the longest line the editor keeps.
func (e *LineEditor) Max() int { return e.max }

// Feed consumes one byte. echo is what to send back to the terminal so the
// user sees the edit (the caller decides whether echo is on); line is the
// completed line when ev is Line.
func (e *LineEditor) Feed(b byte) (echo []byte, ev EditorEvent, line string) {
	afterCR := e.afterCR
	e.afterCR = false
	switch e.esc {
	case 1:
		e.esc = 0
		if b == '[' || b == 'O' {
			e.esc = 2
		}
		return nil, None, ""
	case 2:
		if b >= 0x40 && b <= 0x7e { // final byte of a CSI sequence
			e.esc = 0
		} else if b < 0x20 || b > 0x7e {
			e.esc = 0
			e.bad = true
		}
		return nil, None, ""
	}
	switch {
	case b == '\n' && afterCR:
		return nil, None, ""
	case b == '\r' || b == '\n':
		e.afterCR = b == '\r'
		ev = Line
		switch {
		case e.bad:
			ev = Unprintable
		case e.long:
			ev = TooLong
		default:
			line = string(e.buf)
		}
		e.reset()
		return []byte("\r\n"), ev, line
	case b == 0x08 || b == 0x7f:
		if len(e.buf) > 0 && !e.long {
			e.buf = e.buf[:len(e.buf)-1]
			return []byte("\b \b"), None, ""
		}
		return nil, None, ""
	case b == 0x03:
		e.reset()
		return []byte("^C\r\n"), Interrupt, ""
	case b == 0x1b:
		e.esc = 1
		return nil, None, ""
	case b == 0x00:
		return nil, None, ""
	case b >= 0x20 && b <= 0x7e:
		if len(e.buf) >= e.max {
			e.long = true
			return nil, None, ""
		}
		e.buf = append(e.buf, b)
		return []byte{b}, None, ""
	}
	e.bad = true
	return nil, None, ""
}

func (e *LineEditor) reset() {
	e.buf = e.buf[:0]
	e.long, e.bad, e.esc = false, false, 0
}
