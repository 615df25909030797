package cli

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"strings"
	"testing"
)

func TestParseInterspersed(t *testing.T) {
	for _, tc := range []struct {
		args []string
		dir  string
		json bool
		pos  string
	}{
		{[]string{"ZM-001", "--dir", "/srv"}, "/srv", false, "ZM-001"},
		{[]string{"--dir", "/srv", "ZM-001", "--json"}, "/srv", true, "ZM-001"},
		{[]string{"ZM-001", "--json", "LABEL", "--dir=/x"}, "/x", true, "ZM-001,LABEL"},
		{[]string{"--", "--dir", "x"}, ".", false, "--dir,x"},
		{[]string{"a", "--", "--json"}, ".", false, "a,--json"},
		{nil, ".", false, ""},
	} {
		c := New("tool cmd", "tool cmd [flags] ARG...")
		dir := c.String("dir", ".", "directory")
		js := c.Bool("json", false, "JSON")
		if err := c.Parse(tc.args, 0, -1); err != nil {
			t.Errorf("%q: %v", tc.args, err)
			continue
		}
		if *dir != tc.dir || *js != tc.json || strings.Join(c.Args(), ",") != tc.pos {
			t.Errorf("%q: dir %q json %v args %q", tc.args, *dir, *js, c.Args())
		}
	}
}

func TestParseErrors(t *testing.T) {
	c := New("tool cmd", "tool cmd")
	c.String("dir", ".", "directory")
	var he *HelpError
	if err := c.Parse([]string{"-h"}, 0, 0); !errors.Is(err, flag.ErrHelp) || !errors.As(err, &he) || he.C != c {
		t.Errorf("-h: %v", err)
	}
	for _, args := range [][]string{{"--nope"}, {"a", "--nope"}, {"a", "b"}, {"--dir"}} {
		c := New("tool cmd", "tool cmd")
		c.String("dir", ".", "directory")
		if err := c.Parse(args, 0, 1); !errors.Is(err, ErrUsage) {
			t.Errorf("%q: %v, want a usage error", args, err)
		}
	}
}

func TestHelpAndExit(t *testing.T) {
	c := New("tool cmd", "tool cmd [flags] FILE\n  does things")
	c.String("dir", ".", "the `directory`")
	c.Bool("json", false, "print JSON")
	var b bytes.Buffer
	c.Help(&b)
	for _, want := range []string{"usage: tool cmd [flags] FILE\n  does things\n", "-dir directory", "print JSON"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("help lacks %q:\n%s", want, b.String())
		}
	}
	var o, e bytes.Buffer
	usage := func(w io.Writer) { w.Write([]byte("usage: tool COMMAND\n")) }
	if Exit(&o, &e, "tool", usage, nil) != 0 || Exit(&o, &e, "tool", usage, flag.ErrHelp) != 0 || e.Len() != 0 || o.String() != "usage: tool COMMAND\n" {
		t.Errorf("nil/help: %q %q", o.String(), e.String())
	}
	o.Reset()
	if Exit(&o, &e, "tool", usage, &HelpError{c}) != 0 || !strings.HasPrefix(o.String(), "usage: tool cmd [flags] FILE") || e.Len() != 0 {
		t.Errorf("command help: %q %q", o.String(), e.String())
	}
	o.Reset()
	if Exit(&o, &e, "tool", usage, Usagef("cmd: no")) != 2 || e.String() != "tool: cmd: no\nRun 'tool help' for usage.\n" || o.Len() != 0 {
		t.Errorf("usage: %q", e.String())
	}
	e.Reset()
	if Exit(&o, &e, "tool", usage, errors.New("boom")) != 1 || e.String() != "tool: boom\n" {
		t.Errorf("failure: %q", e.String())
	}
}
