// Command zm-board runs the qemu-virt board on a development host and
// drives a running one through its state directory.
//
//	zm-board run [--kernel IMAGE] --initrd INITRAMFS --state DIR [--fwd 8444[:HOSTPORT]]... [--guestfwd GUESTPORT:HOSTPORT]...
//	zm-board press --state DIR
//	zm-board screenshot --state DIR -o shot.png
//
// run connects your terminal to the serial console (raw mode when stdin
// is a terminal; Ctrl-] stops the board). Without --kernel it uses
// $ZM_KERNEL or the cached kernel build (scripts/build-kernel.sh).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"image/png"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/zmonitor/firmware/image/kernel"
	"github.com/zmonitor/firmware/internal/base/cli"
	"github.com/zmonitor/firmware/internal/base/version"
	"github.com/zmonitor/firmware/qemu"
	"golang.org/x/sys/unix"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// Synopses of the commands (their help adds every flag).
const (
	runSynopsis        = "zm-board run --initrd INITRAMFS --state DIR [flags]\n  boot the qemu-virt board with the console on this terminal (Ctrl-] stops it)"
	pressSynopsis      = "zm-board press --state DIR\n  press the board's button (QMP)"
	screenshotSynopsis = "zm-board screenshot --state DIR -o FILE.png\n  save the board's screen"
)

const usageText = `usage: zm-board COMMAND [flags]

  ` + runSynopsis + `
  ` + pressSynopsis + `
  ` + screenshotSynopsis + `
  zm-board version
  the program's version and build time

'zm-board COMMAND -h' lists every flag of COMMAND.
Exit status: 0 success, 1 failure, 2 bad usage.
`

// run is main's testable body; it returns the exit code.
func run(ctx context.Context, args []string, stdin *os.File, stdout, stderr io.Writer) int {
	usage := func(w io.Writer) { fmt.Fprint(w, usageText) }
	if len(args) == 0 {
		return cli.Exit(stdout, stderr, "zm-board", usage, usageError{errors.New("no command")})
	}
	if args[0] == "help" && len(args) > 1 {
		args = append(append([]string{}, args[1:]...), "-h")
	}
	var err error
	switch args[0] {
	case "run":
		err = runCmd(ctx, args[1:], stdin, stdout, stderr)
	case "press":
		err = pressCmd(ctx, args[1:], stderr)
	case "screenshot":
		err = screenshotCmd(ctx, args[1:], stderr)
	case "help", "-h", "-help", "--help":
		err = flag.ErrHelp
	case "version", "-version", "--version":
		cli.Version(stdout, "zm-board", version.Version, version.BuildTime)
	default:
		err = usageError{fmt.Errorf("unknown command %q", args[0])}
	}
	return cli.Exit(stdout, stderr, "zm-board", usage, err)
}

// usageError is bad usage (exit 2).
type usageError struct{ error }

func (e usageError) Unwrap() []error { return []error{e.error, cli.ErrUsage} }

// listFlag collects repeated flags.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// parsePorts parses "A" or "A:B" into (A, B); B is 0 when absent.
func parsePorts(s string) (int, int, error) {
	a, b, two := strings.Cut(s, ":")
	pa, err := strconv.Atoi(a)
	if err != nil || pa <= 0 || pa > 65535 {
		return 0, 0, fmt.Errorf("port %q: want 1..65535", a)
	}
	if !two {
		return pa, 0, nil
	}
	pb, err := strconv.Atoi(b)
	if err != nil || pb <= 0 || pb > 65535 {
		return 0, 0, fmt.Errorf("port %q: want 1..65535", b)
	}
	return pa, pb, nil
}

func parseSize(s string) (int, int, error) {
	w, h, ok := strings.Cut(s, "x")
	wi, err1 := strconv.Atoi(w)
	hi, err2 := strconv.Atoi(h)
	if !ok || err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("size %q: want WxH", s)
	}
	return wi, hi, nil
}

// boardConfig turns run's flags into a qemu.Config.
func boardConfig(args []string, stderr io.Writer) (qemu.Config, error) {
	fs := cli.New("zm-board run", runSynopsis)
	var c qemu.Config
	var fwd, gfwd listFlag
	fs.StringVar(&c.Kernel, "kernel", "", "arm64 kernel Image (default: $ZM_KERNEL or the cached build)")
	fs.StringVar(&c.Initrd, "initrd", "", "gzip cpio initramfs (required; make image writes out/image/initramfs.cpio.gz)")
	fs.StringVar(&c.StateDir, "state", "", "state directory of this board (required; kept across runs)")
	fs.Var(&fwd, "fwd", "forward host 127.0.0.1:HOSTPORT to guest port: GUESTPORT[:HOSTPORT] (repeatable; default 8444)")
	fs.Var(&gfwd, "guestfwd", "let the guest reach host 127.0.0.1:HOSTPORT at 10.0.2.100:GUESTPORT: GUESTPORT:HOSTPORT (repeatable)")
	size := fs.String("size", "240x240", "panel size WxH")
	fs.StringVar(&c.Append, "append", "", "extra kernel command line")
	fs.BoolVar(&c.KernelLog, "kernel-log", false, "print every kernel message on the console (default: quiet, warnings only)")
	fs.IntVar(&c.CPUs, "cpus", qemu.DefaultCPUs, "guest CPUs (Cortex-A53 cores)")
	var fw qemu.Firmware
	fs.StringVar(&fw.Code, "uefi-code", "", "boot through this firmware, U-Boot with its Secure Boot keys built in (qemu-virt-secure); --kernel is then the signed EFI program")
	fs.StringVar(&c.PCRBanks, "pcr-banks", "", "PCR banks of a new TPM, e.g. sha256 (default: swtpm's)")
	if err := fs.Parse(args, 0, -1); err != nil {
		return c, err
	}
	if fs.NArg() != 0 {
		return c, usageError{fmt.Errorf("run: unexpected arguments %q", fs.Args())}
	}
	if fw.Code != "" {
		if c.Kernel == "" || c.StateDir == "" {
			return c, usageError{errors.New("run: --uefi-code needs --kernel (the signed EFI program) and --state")}
		}
		c.Firmware = &fw
	} else if c.Initrd == "" || c.StateDir == "" {
		return c, usageError{errors.New("run: --initrd and --state are required")}
	}
	var err error
	if c.Width, c.Height, err = parseSize(*size); err != nil {
		return c, usageError{err}
	}
	if len(fwd) == 0 {
		fwd = listFlag{"8444"}
	}
	for _, f := range fwd {
		g, h, err := parsePorts(f)
		if err != nil {
			return c, usageError{fmt.Errorf("--fwd: %w", err)}
		}
		c.HostFwd = append(c.HostFwd, qemu.HostFwd{GuestPort: g, HostPort: h})
	}
	for _, f := range gfwd {
		g, h, err := parsePorts(f)
		if err != nil || h == 0 {
			return c, usageError{fmt.Errorf("--guestfwd %q: want GUESTPORT:HOSTPORT", f)}
		}
		c.GuestFwd = append(c.GuestFwd, qemu.GuestFwd{GuestPort: g, HostPort: h})
	}
	return c, nil
}

func runCmd(ctx context.Context, args []string, stdin *os.File, stdout, stderr io.Writer) error {
	c, err := boardConfig(args, stderr)
	if err != nil {
		return err
	}
	if c.Kernel == "" {
		if c.Kernel, err = kernel.Locate(ctx, kernel.Options{}); err != nil {
			return fmt.Errorf("run: %w", err)
		}
	}
	c.Console = stdout
	b, err := qemu.Start(ctx, c)
	if err != nil {
		return fmt.Errorf("run: %w", err)
	}
	defer b.Close()
	fmt.Fprintf(stderr, "zm-board: state %s, QMP %s, console log %s\n", b.StateDir(), b.QMPSocket(), b.ConsoleLog())
	for _, f := range c.HostFwd {
		fmt.Fprintf(stderr, "zm-board: guest port %d at %s\n", f.GuestPort, b.GuestPort(f.GuestPort))
	}
	quit := make(chan struct{}, 1)
	if restore, err := rawTerminal(stdin); err == nil {
		defer restore()
		fmt.Fprint(stderr, "zm-board: Ctrl-] stops the board\r\n")
	}
	go pump(stdin, b, quit)
	done := make(chan error, 1)
	go func() { done <- b.Wait(context.Background()) }()
	select {
	case err := <-done:
		return err
	case <-quit:
	case <-ctx.Done():
	}
	return b.Stop(context.Background())
}

// escape is Ctrl-], as in telnet.
const escape = 0x1d

// pump copies the terminal to the console until Ctrl-] or end of input.
func pump(stdin io.Reader, b *qemu.Board, quit chan<- struct{}) {
	buf := make([]byte, 256)
	for {
		n, err := stdin.Read(buf)
		chunk := buf[:n]
		if i := strings.IndexByte(string(chunk), escape); i >= 0 {
			_, _ = b.WriteConsole(chunk[:i])
			quit <- struct{}{}
			return
		}
		if n > 0 {
			if _, werr := b.WriteConsole(chunk); werr != nil {
				return
			}
		}
		if err != nil {
			return // end of input: keep the board running until it exits
		}
	}
}

// rawTerminal puts the terminal on f in raw mode (bytes go to the guest
// as typed, the guest's tty echoes) and returns a restore function.
func rawTerminal(f *os.File) (func(), error) {
	fd := int(f.Fd())
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return nil, err
	}
	raw := *old
	raw.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	raw.Oflag &^= unix.OPOST
	raw.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	raw.Cflag &^= unix.CSIZE | unix.PARENB
	raw.Cflag |= unix.CS8
	raw.Cc[unix.VMIN], raw.Cc[unix.VTIME] = 1, 0
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &raw); err != nil {
		return nil, err
	}
	return func() { _ = unix.IoctlSetTermios(fd, unix.TCSETS, old) }, nil
}

func stateFlags(name, synopsis string, args []string, extra func(*flag.FlagSet)) (string, error) {
	fs := cli.New("zm-board "+name, synopsis)
	state := fs.String("state", "", "state directory of the running board (required)")
	if extra != nil {
		extra(fs.FlagSet)
	}
	if err := fs.Parse(args, 0, -1); err != nil {
		return "", err
	}
	if *state == "" || fs.NArg() != 0 {
		return "", usageError{fmt.Errorf("%s: --state DIR is required and nothing else", name)}
	}
	return *state, nil
}

func pressCmd(ctx context.Context, args []string, stderr io.Writer) error {
	state, err := stateFlags("press", pressSynopsis, args, nil)
	if err != nil {
		return err
	}
	return qemu.PressButton(ctx, filepath.Join(state, "qmp.sock"))
}

func screenshotCmd(ctx context.Context, args []string, stderr io.Writer) error {
	var out string
	state, err := stateFlags("screenshot", screenshotSynopsis, args, func(fs *flag.FlagSet) {
		fs.StringVar(&out, "o", "", "output PNG file (required)")
	})
	if err != nil {
		return err
	}
	if out == "" {
		return usageError{errors.New("screenshot: -o FILE.png is required")}
	}
	img, err := qemu.Screenshot(ctx, filepath.Join(state, "qmp.sock"), state)
	if err != nil {
		return err
	}
	f, err := os.Create(out)
	if err != nil {
		return fmt.Errorf("screenshot: %w", err)
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return fmt.Errorf("screenshot: encode %s: %w", out, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("screenshot: %w", err)
	}
	return nil
}
