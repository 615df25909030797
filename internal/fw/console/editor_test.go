package console

import (
	"bytes"
	"strings"
	"testing"
)

type fed struct {
	echo   string
	events []EditorEvent
	lines  []string
}

func feedAll(e *LineEditor, in string) fed {
	var f fed
	for i := 0; i < len(in); i++ {
		echo, ev, line := e.Feed(in[i])
		f.echo += string(echo)
		if ev != None {
			f.events = append(f.events, ev)
			if ev == Line {
				f.lines = append(f.lines, line)
			}
		}
	}
	return f
}

func TestLineEditor(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		events   []EditorEvent
		lines    []string
		echo     string
	}{
		{"CR", "help\r", []EditorEvent{Line}, []string{"help"}, "help\r\n"},
		{"LF", "help\n", []EditorEvent{Line}, []string{"help"}, "help\r\n"},
		{"CRLF is one line", "help\r\nstatus\r\n", []EditorEvent{Line, Line}, []string{"help", "status"}, "help\r\nstatus\r\n"},
		{"LFCR is two", "a\n\rb\r", []EditorEvent{Line, Line, Line}, []string{"a", "", "b"}, "a\r\n\r\nb\r\n"},
		{"CR CR", "\r\r", []EditorEvent{Line, Line}, []string{"", ""}, "\r\n\r\n"},
		{"backspace", "hex\blp\r", []EditorEvent{Line}, []string{"help"}, "hex\b \blp\r\n"},
		{"DEL", "helpx\x7f\r", []EditorEvent{Line}, []string{"help"}, "helpx\b \b\r\n"},
		{"backspace at start", "\b\x7fok\r", []EditorEvent{Line}, []string{"ok"}, "ok\r\n"},
		{"arrow keys ignored", "st\x1b[A\x1b[Datus\x1bOB\r", []EditorEvent{Line}, []string{"status"}, "status\r\n"},
		{"NUL ignored", "a\x00b\r\x00", []EditorEvent{Line}, []string{"ab"}, "ab\r\n"},
		{"ctrl-c", "reb\x03help\r", []EditorEvent{Interrupt, Line}, []string{"help"}, "reb^C\r\nhelp\r\n"},
		{"control char", "he\x01lp\rok\r", []EditorEvent{Unprintable, Line}, []string{"ok"}, "help\r\nok\r\n"},
		{"high byte", "h\xffi\r", []EditorEvent{Unprintable}, nil, "hi\r\n"},
		{"tab", "a\tb\r", []EditorEvent{Unprintable}, nil, "ab\r\n"},
		{"bad escape", "a\x1b[\x01\r", []EditorEvent{Unprintable}, nil, "a\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := feedAll(NewLineEditor(16), tc.in)
			if !equal(f.events, tc.events) || strings.Join(f.lines, "|") != strings.Join(tc.lines, "|") || f.echo != tc.echo {
				t.Errorf("events %v lines %q echo %q; want %v %q %q", f.events, f.lines, f.echo, tc.events, tc.lines, tc.echo)
			}
		})
	}
}

func equal(a, b []EditorEvent) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestLineEditorLimit(t *testing.T) {
	e := NewLineEditor(16)
	f := feedAll(e, strings.Repeat("x", 16)+"\r")
	if len(f.lines) != 1 || len(f.lines[0]) != 16 {
		t.Fatalf("16 bytes: %v %q", f.events, f.lines)
	}
	f = feedAll(e, strings.Repeat("x", 17)+"\b\r")
	if !equal(f.events, []EditorEvent{TooLong}) {
		t.Fatalf("17 bytes: %v", f.events)
	}
	if f.echo != strings.Repeat("x", 16)+"\r\n" {
		t.Errorf("echo of an over-long line: %q", f.echo)
	}
	// The editor recovers for the next line.
	if f = feedAll(e, "ok\r"); len(f.lines) != 1 || f.lines[0] != "ok" {
		t.Errorf("after an over-long line: %v %q", f.events, f.lines)
	}
	if NewLineEditor(0).Max() != 1 {
		t.Error("a limit below 1 must become 1")
	}
}

func FuzzLineEditor(f *testing.F) {
	for _, s := range []string{"help\r\n", "a\bb\x7f\r", "\x1b[A\x1b", "\xff\xfe\x00\r", strings.Repeat("y", 300) + "\n", "\r\n\r\n\n\r"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		const max = 32
		e := NewLineEditor(max)
		var echo bytes.Buffer
		for _, b := range in {
			out, ev, line := e.Feed(b)
			echo.Write(out)
			if len(out) > 4 {
				t.Fatalf("echo of one byte is %d bytes", len(out))
			}
			if ev == Line {
				if len(line) > max {
					t.Fatalf("line of %d bytes, max %d", len(line), max)
				}
				for i := 0; i < len(line); i++ {
					if line[i] < 0x20 || line[i] > 0x7e {
						t.Fatalf("line holds byte %#x", line[i])
					}
				}
			}
		}
		// What the terminal shows: "\b \b" erases one character; a line
		// is at most max characters plus "^C".
		for _, l := range strings.Split(echo.String(), "\r\n") {
			var screen []byte
			for len(l) > 0 {
				if strings.HasPrefix(l, "\b \b") {
					if len(screen) == 0 {
						t.Fatal("backspace echoed at the start of a line")
					}
					screen, l = screen[:len(screen)-1], l[3:]
					continue
				}
				screen, l = append(screen, l[0]), l[1:]
			}
			if len(screen) > max+2 {
				t.Fatalf("terminal line of %d bytes: %q", len(screen), screen)
			}
		}
	})
}
