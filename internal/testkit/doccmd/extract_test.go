package doccmd

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
)

// command is one command line of a ```sh block.
type command struct {
	file string // relative to the repository
	line int    // where the command starts
	text string // continuations joined, trailing comment dropped, spaces collapsed
}

func (c command) String() string { return fmt.Sprintf("%s:%d: %s", c.file, c.line, c.text) }

var fenceRE = regexp.MustCompile("^\\s*(```+)\\s*(\\S*)")

// shellLangs are the info strings of blocks whose lines are commands.
var shellLangs = map[string]bool{"sh": true, "shell": true, "bash": true, "console": true}

// extract returns the commands of the ```sh blocks of a markdown file, and
// one problem per fenced block that has no language: such a block could
// hold a command the test would never see (mark it ```sh, or ```text for
// output, diagrams and values).
func extract(file string, src string) (cmds []command, problems []string) {
	lines := strings.Split(src, "\n")
	open := "" // the fence that opened the current block
	lang := ""
	pending, start := "", 0
	for i, l := range lines {
		if m := fenceRE.FindStringSubmatch(l); m != nil {
			switch {
			case open == "":
				open, lang = m[1], m[2]
				if lang == "" {
					problems = append(problems, fmt.Sprintf("%s:%d: fenced block without a language: mark commands ```sh and anything else ```text (or its language)", file, i+1))
				}
				continue
			case len(m[1]) >= len(open) && m[2] == "":
				if pending != "" {
					problems = append(problems, fmt.Sprintf("%s:%d: the block ends inside a continued line", file, i+1))
				}
				open, pending = "", ""
				continue
			}
		}
		if open == "" || !shellLangs[lang] {
			continue
		}
		s := strings.TrimSpace(l)
		if pending == "" {
			start = i + 1
			if s == "" || strings.HasPrefix(s, "#") {
				continue
			}
		}
		s = stripComment(s)
		if cont, ok := strings.CutSuffix(s, `\`); ok {
			pending += cont + " "
			continue
		}
		text := strings.Join(strings.Fields(pending+s), " ")
		pending = ""
		if text != "" {
			cmds = append(cmds, command{file: file, line: start, text: text})
		}
	}
	if open != "" {
		problems = append(problems, fmt.Sprintf("%s: a fenced block is never closed", file))
	}
	return cmds, problems
}

// stripComment drops a shell comment: a # at the start of a word, outside
// quotes.
func stripComment(s string) string {
	var quote rune
	prevSpace := true
	for i, r := range s {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			}
		case r == '\'' || r == '"':
			quote = r
		case r == '#' && prevSpace:
			return strings.TrimSpace(s[:i])
		}
		prevSpace = r == ' ' || r == '\t'
	}
	return s
}

var flagRE = regexp.MustCompile(`(?:^|[\s\[{(|])(--?[A-Za-z][A-Za-z0-9-]*)`)

// flags returns the flags a command line names (-o, --dir, -state).
func flags(s string) map[string]bool {
	m := map[string]bool{}
	for _, f := range flagRE.FindAllStringSubmatch(s, -1) {
		m[f[1]] = true
	}
	return m
}

// required returns the flags of a synopsis outside [optional] parts.
func required(synopsis string) map[string]bool {
	var b strings.Builder
	depth := 0
	for _, r := range synopsis {
		switch {
		case r == '[':
			depth++
		case r == ']' && depth > 0:
			depth--
		case depth == 0:
			b.WriteRune(r)
		}
	}
	return flags(b.String())
}

func TestExtract(t *testing.T) {
	src := "intro\n" +
		"```sh\n" +
		"make demo   # the main job\n" +
		"# a comment line\n" +
		"\n" +
		"zm-image build --kernel IMAGE \\\n" +
		"    --out out/image\n" +
		"echo '# not a comment' \"a # b\" x#y\n" +
		"```\n" +
		"```text\n" +
		"zm-central serve\n" +
		"```\n" +
		"````md\n" +
		"```\n" +
		"inner\n" +
		"````\n" +
		"```\n" +
		"zm-central init --dir DIR\n" +
		"```\n"
	cmds, problems := extract("x.md", src)
	want := []command{
		{"x.md", 3, "make demo"},
		{"x.md", 6, "zm-image build --kernel IMAGE --out out/image"},
		{"x.md", 8, `echo '# not a comment' "a # b" x#y`},
	}
	if fmt.Sprint(cmds) != fmt.Sprint(want) {
		t.Errorf("commands\n got %v\nwant %v", cmds, want)
	}
	if len(problems) != 1 || !strings.HasPrefix(problems[0], "x.md:17: fenced block without a language") {
		t.Errorf("problems %q", problems)
	}
	if _, p := extract("y.md", "```sh\nls \\\n```\n```sh\nls\n"); len(p) != 2 {
		t.Errorf("unclosed block and dangling continuation: %q", p)
	}
}

func TestFlags(t *testing.T) {
	s := "zm-central serve [--dir DIR] [--db DSN] {--monitor-listen A | --server-url U} [--device-addr ID=h:p]... [--clock-offset -2h] -o f.png"
	got := fmt.Sprint(flags(s))
	if got != "map[--clock-offset:true --db:true --device-addr:true --dir:true --monitor-listen:true --server-url:true -o:true]" {
		t.Errorf("flags %s", got)
	}
	if got := fmt.Sprint(required(s)); got != "map[--monitor-listen:true --server-url:true -o:true]" {
		t.Errorf("required %s", got)
	}
}
