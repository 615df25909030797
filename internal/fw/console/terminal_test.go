package console

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"
)

// filtered runs chunks through a port's filter, one read each, and returns
// the stream x/term would see (interrupts as ^C bytes).
func filtered(chunks ...string) string {
	p := newPort(nil, nil)
	for _, c := range chunks {
		p.filter([]byte(c))
	}
	return string(p.out)
}

func TestPortFilter(t *testing.T) {
	for _, tc := range []struct {
		name   string
		chunks []string
		want   string
	}{
		{"plain", []string{"help\r"}, "help\r"},
		{"CRLF is one Enter", []string{"a\r\nb\n"}, "a\rb\r"},
		{"CRLF over two reads", []string{"a\r", "\nb\r"}, "a\rb\r"},
		{"LFCR is two", []string{"a\n\rb"}, "a\r\rb"},
		{"CRLFLF is two", []string{"a\r\n\n"}, "a\r\r"},
		{"CR CR", []string{"\r\r"}, "\r\r"},
		{"arrow keys pass", []string{"\x1b[A\x1b[B\x1b[3~\x1b[1;3C"}, "\x1b[A\x1b[B\x1b[3~\x1b[1;3C"},
		{"sequence over two reads", []string{"\x1b[", "A"}, "\x1b[A"},
		{"control byte closes a sequence", []string{"\x1b[\r"}, "\x1b[~\r"},
		{"ESC ESC", []string{"\x1b\x1b[A"}, "\x1b~\x1b[A"},
		{"long sequence closed", []string{"\x1b[" + strings.Repeat("1", 30) + "A"}, "\x1b[" + strings.Repeat("1", maxEscape-2) + "~" + strings.Repeat("1", 30-(maxEscape-2)) + "A"},
		{"Ctrl-D dropped", []string{"ab\x04c"}, "abc"},
		{"Ctrl-C kept as the mark", []string{"ab\x03cd"}, "ab\x03cd"},
		{"Tab, Ctrl-L, Ctrl-A pass", []string{"\t\x0c\x01\x05\x15\x17"}, "\t\x0c\x01\x05\x15\x17"},
		{"high bytes", []string{"h\xc3\xa9\xff"}, "h□□□"},
		{"no bracketed paste", []string{"\x1b[200~a\x01\x1b[201~"}, "\x1b[200za\x01\x1b[201~"},
	} {
		if got := filtered(tc.chunks...); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

// chunked is a reader that returns its chunks in turn (nil: a read of
// nothing), then err.
type chunked struct {
	chunks [][]byte
	err    error
}

func (c *chunked) Read(p []byte) (int, error) {
	if len(c.chunks) == 0 {
		return 0, c.err
	}
	n := copy(p, c.chunks[0])
	if n < len(c.chunks[0]) {
		c.chunks[0] = c.chunks[0][n:]
	} else {
		c.chunks = c.chunks[1:]
	}
	return n, nil
}

func (c *chunked) Write(p []byte) (int, error) { return len(p), nil }

func TestPortRead(t *testing.T) {
	waits := 0
	p := newPort(&chunked{chunks: [][]byte{nil, []byte("ab\x03c"), nil, nil, nil, []byte("d")}, err: io.EOF},
		func(context.Context, time.Duration) { waits++ })
	var got []string
	buf := make([]byte, 64)
	for {
		n, err := p.Read(buf)
		switch {
		case errors.Is(err, errInterrupt):
			got = append(got, "^C")
		case err != nil:
			got = append(got, err.Error())
		default:
			got = append(got, string(buf[:n]))
		}
		if err != nil && !errors.Is(err, errInterrupt) {
			break
		}
	}
	if want := []string{"ab", "^C", "c", "d", "EOF"}; strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("reads %q, want %q", got, want)
	}
	// Three empty reads in a row: the third and later wait.
	if waits != 1 {
		t.Errorf("%d waits", waits)
	}
	if _, err := p.Read(nil); !errors.Is(err, io.ErrShortBuffer) {
		t.Errorf("read into nothing: %v", err)
	}
	p = newPort(&chunked{err: errors.New("boom")}, nil)
	if _, err := p.Read(buf); err == nil || err.Error() != "console: read: boom" {
		t.Errorf("read error: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	p = newPort(&chunked{chunks: [][]byte{[]byte("x")}}, nil)
	p.ctx = ctx
	if _, err := p.Read(buf); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}

func TestHistory(t *testing.T) {
	h := &history{maxLine: 16}
	for _, l := range []string{"status", "", "  ", "status", "version", "h\x01", "h\u25a1", strings.Repeat("x", 17), "status"} {
		h.Add(l)
	}
	if h.Len() != 3 || h.At(0) != "status" || h.At(1) != "version" || h.At(2) != "status" {
		t.Errorf("history %q", h.lines)
	}
	for i := range 2 * maxHistory {
		h.Add(fmt.Sprint("audit ", i))
	}
	if h.Len() != maxHistory || h.At(0) != fmt.Sprint("audit ", 2*maxHistory-1) || h.At(maxHistory-1) != fmt.Sprint("audit ", maxHistory) {
		t.Errorf("bounded history: %d lines, newest %q, oldest %q", h.Len(), h.At(0), h.At(h.Len()-1))
	}
}

func TestComplete(t *testing.T) {
	c, err := New(&script{}, newFake(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		line string
		pos  int
		want string
	}{
		{"sta", 3, "status"},
		{"au", 2, "audit "}, // takes arguments
		{"f", 1, "factory-reset"},
		{"reb", 3, "reboot"},
		{"ren", 3, "renew"},
		{"re", 2, "re"},   // reboot, renew: nothing in common past "re"
		{"e", 1, "e"},     // echo, enroll: nothing in common past "e"
		{"xyz", 3, "xyz"}, // no command
		{"sta", 1, "sta"}, // not at the end of the word
		{"audit 1", 7, "audit 1"},
	} {
		got, pos, ok := c.complete(tc.line, tc.pos, '\t')
		if !ok || got != tc.want || pos != len(tc.want) && got != tc.line {
			t.Errorf("Tab on %q at %d: %q at %d, %v; want %q", tc.line, tc.pos, got, pos, ok, tc.want)
		}
	}
	if _, _, ok := c.complete("sta", 3, 'x'); ok {
		t.Error("a typed letter was taken by completion")
	}
}

// TestInterruptAndEchoOff: Ctrl-C drops the line and the console goes on;
// with echo off nothing typed comes back, and the history still works.
func TestInterruptAndEchoOff(t *testing.T) {
	dev := newFake(t)
	out := run(t, dev, nil, "rebo\x03", "version\r")
	if !strings.Contains(out, "zm> rebo^C\r\nzm> version\r\nzmonitor 1.2.3") || dev.reboots != 0 {
		t.Errorf("Ctrl-C: reboots %d, output %q", dev.reboots, out)
	}
	out = run(t, dev, &Options{NoEcho: true}, "version\r", "\x1b[A\r", "rebo\x03")
	if strings.Count(out, "zmonitor 1.2.3") != 2 || strings.Contains(out, "version") || strings.Contains(out, "rebo") {
		t.Errorf("echo off: %q", out)
	}
}

// FuzzPort: whatever is typed, and however the reads split it, x/term gets
// the same stream, with only ASCII and whole □ characters, no Ctrl-D, no
// LF (Enter is CR), and no escape sequence longer than maxEscape.
func FuzzPort(f *testing.F) {
	for _, s := range []string{"help\r\n", "\x1b[A\x1b", "\xff\xfe\x00\r", "\x1b[" + strings.Repeat("9", 40), "a\x03b\x04c\r\n\n"} {
		f.Add([]byte(s), uint8(3))
	}
	f.Fuzz(func(t *testing.T, in []byte, cut uint8) {
		whole := filtered(string(in))
		var parts []string
		for rest, n := in, int(cut%7)+1; len(rest) > 0; n = n%7 + 1 {
			n = min(n, len(rest))
			parts = append(parts, string(rest[:n]))
			rest = rest[n:]
		}
		if split := filtered(parts...); split != whole {
			t.Fatalf("split reads give %q, one read %q", split, whole)
		}
		s := strings.ReplaceAll(whole, "□", "")
		escLen := 0
		for i := 0; i < len(s); i++ {
			b := s[i]
			switch {
			case b > 0x7f:
				t.Fatalf("byte %#x in %q", b, whole)
			case b == ctrlD:
				t.Fatalf("Ctrl-D in %q", whole)
			case b == '\n':
				t.Fatalf("LF in %q", whole)
			}
			switch {
			case b == esc:
				escLen = 1
			case escLen > 0 && (b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b == '~'):
				escLen = 0
			case escLen > 0:
				if escLen++; escLen > maxEscape {
					t.Fatalf("escape sequence of %d bytes in %q", escLen, whole)
				}
			}
		}
		if !bytes.Equal([]byte(whole), []byte(filtered(string(in)))) {
			t.Fatal("not deterministic")
		}
	})
}
