package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// Exit codes.
const (
	ExitOK      = 0
	ExitFailure = 1
	ExitUsage   = 2
)

// ErrUsage is wrapped by every bad-usage error.
var ErrUsage = errors.New("bad usage")

// Usagef is a bad-usage error.
func Usagef(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrUsage, fmt.Sprintf(format, args...))
}

// Command is a flag set with the synopsis its help starts with.
type Command struct {
	*flag.FlagSet
	// Synopsis is the usage line(s), e.g. "zm-central devices revoke
	// [flags] DEVICE-ID", and what the command does.
	Synopsis string
}

// New returns a command named name ("zm-central devices revoke"); its flag
// set prints nothing itself (Parse and Help do).
func New(name, synopsis string) *Command {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return &Command{FlagSet: fs, Synopsis: synopsis}
}

// HelpError is the request for a command's help (-h): Exit writes it.
type HelpError struct{ C *Command }

func (e *HelpError) Error() string { return e.C.Name() + ": help requested" }

func (e *HelpError) Unwrap() error { return flag.ErrHelp }

// Parse parses args, flags and positional arguments in any order ("--"
// ends the flags), and checks the number of positional arguments (max < 0:
// no limit). -h/--help gives a *HelpError (it wraps flag.ErrHelp);
// anything wrong, a usage error.
func (c *Command) Parse(args []string, minArgs, maxArgs int) error {
	var pos []string
	for {
		if err := c.FlagSet.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return &HelpError{c}
			}
			return Usagef("%s: %v", c.Name(), err)
		}
		rest := c.Args()
		// flag stops at the first positional argument, or after "--".
		if len(rest) == 0 {
			break
		}
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			pos = append(pos, rest...)
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	// Leave the positional arguments where Args finds them.
	c.FlagSet.Parse(append([]string{"--"}, pos...)) //nolint:errcheck // "--" then arguments: cannot fail
	if n := len(pos); n < minArgs || (maxArgs >= 0 && n > maxArgs) {
		want := fmt.Sprintf("%d", minArgs)
		switch {
		case maxArgs < 0:
			want = fmt.Sprintf("at least %d", minArgs)
		case maxArgs != minArgs:
			want = fmt.Sprintf("%d to %d", minArgs, maxArgs)
		}
		return Usagef("%s: %d argument(s) given, %s wanted (%s -h)", c.Name(), n, want, c.Name())
	}
	return nil
}

// Help writes the command's synopsis and every flag with its default.
func (c *Command) Help(w io.Writer) {
	fmt.Fprintf(w, "usage: %s\n", strings.TrimRight(c.Synopsis, "\n"))
	n := 0
	c.VisitAll(func(*flag.Flag) { n++ })
	if n == 0 {
		return
	}
	fmt.Fprintln(w, "\nflags:")
	c.SetOutput(w)
	c.PrintDefaults()
	c.SetOutput(io.Discard)
}

// IsHelp reports whether args ask for help: -h, -help or --help alone, or
// the word help.
func IsHelp(arg string) bool {
	switch arg {
	case "-h", "-help", "--help", "help":
		return true
	}
	return false
}

// Version writes "TOOL VERSION (built TIME)": the caller passes
// internal/base/version's Version and BuildTime (internal/base packages
// import only the standard library).
func Version(w io.Writer, tool, version, buildTime string) {
	fmt.Fprintf(w, "%s %s (built %s)\n", tool, version, buildTime)
}

// Exit reports err as every tool does and returns the exit code: nil is 0;
// a *HelpError writes the command's help to stdout, flag.ErrHelp the
// tool's (usage), 0; a usage error is written to stderr with a pointer to
// the help, 2; anything else, 1.
func Exit(stdout, stderr io.Writer, tool string, usage func(io.Writer), err error) int {
	var he *HelpError
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &he):
		he.C.Help(stdout)
		return ExitOK
	case errors.Is(err, flag.ErrHelp):
		usage(stdout)
		return ExitOK
	case errors.Is(err, ErrUsage):
		msg := strings.TrimPrefix(err.Error(), ErrUsage.Error()+": ")
		fmt.Fprintf(stderr, "%s: %s\nRun '%s help' for usage.\n", tool, msg, tool)
		return ExitUsage
	default:
		fmt.Fprintf(stderr, "%s: %v\n", tool, err)
		return ExitFailure
	}
}
