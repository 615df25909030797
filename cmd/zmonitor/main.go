// Command zmonitor is the Z Monitor firmware. On the device it runs as PID 1
// (the kernel starts it as /init) and boots the board (internal/fw/boot);
// on a development host it runs as a plain process.
//
//	zmonitor                      as /init: boot the board and run provisioning
//	zmonitor run [flags]          run the device on this host (see -help)
//	zmonitor render -state S -size WxH -o out.png
//	zmonitor version
//
// The firmware is built with -tags zmfirmware (scripts/build-firmware.sh):
// that build leaves host mode (`run`) out, and with it the in-memory key
// store it offers, so /init links neither (deps_test.go).
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/zmonitor/firmware/internal/base/cli"
	"github.com/zmonitor/firmware/internal/base/version"
	"github.com/zmonitor/firmware/internal/fw/boot"
	"github.com/zmonitor/firmware/internal/fw/screen"
	"github.com/zmonitor/firmware/internal/proto/state"
)

func main() {
	if os.Getpid() == 1 {
		boot.PID1() // never returns
	}
	os.Exit(run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run is the testable body of main: it returns the exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	var err error
	switch args[0] {
	case "run":
		err = runCmd(ctx, args[1:], stdin, stdout, stderr)
	case "render":
		err = renderCmd(args[1:], stdout, stderr)
	case "version":
		cli.Version(stdout, "zmonitor", version.Version, version.BuildTime)
	case "help", "-h", "-help", "--help":
		usage(stdout)
	default:
		fmt.Fprintf(stderr, "zmonitor: unknown command %q\n", args[0])
		usage(stderr)
		return 2
	}
	return cli.Exit(stdout, stderr, "zmonitor", usage, err)
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage:
  zmonitor run [flags]                       run the device on this host (zmonitor run -help)
  zmonitor render -state S -size WxH -o F    draw the screen of state S into a PNG
  zmonitor version
As PID 1 (the image's /init) it boots the board and runs provisioning.
`)
}

func renderCmd(args []string, stdout, stderr io.Writer) error {
	fs := cli.New("zmonitor render", "zmonitor render -state S -size WxH -o FILE.png\n  draw the screen of state S into a PNG")
	st := fs.String("state", "READY_TO_PAIR", "state to draw: "+stateNames())
	size := fs.String("size", "240x240", "frame size WxH (240x240, 320x240, 480x320)")
	out := fs.String("o", "", "output PNG file (required)")
	if err := fs.Parse(args, 0, 0); err != nil {
		return err
	}
	if *out == "" {
		return cli.Usagef("render: -o FILE is required")
	}
	s, err := state.Parse(strings.ToUpper(*st))
	if err != nil {
		return fmt.Errorf("render: %w (one of %s)", err, stateNames())
	}
	w, h, err := parseSize(*size)
	if err != nil {
		return fmt.Errorf("render: %w", err)
	}
	f, err := os.Create(*out)
	if err != nil {
		return fmt.Errorf("render: %w", err)
	}
	if err := screen.RenderPNG(screen.SampleView(s), w, h, f); err != nil {
		f.Close()
		os.Remove(*out)
		return fmt.Errorf("render: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("render: %w", err)
	}
	fmt.Fprintf(stdout, "%s %dx%d -> %s\n", s, w, h, *out)
	return nil
}

func stateNames() string {
	var n []string
	for _, s := range state.All {
		n = append(n, s.String())
	}
	return strings.Join(n, ", ")
}

func parseSize(s string) (int, int, error) {
	a, b, ok := strings.Cut(strings.ToLower(s), "x")
	if !ok {
		return 0, 0, fmt.Errorf("size %q is not WxH", s)
	}
	w, err1 := strconv.Atoi(a)
	h, err2 := strconv.Atoi(b)
	if err1 != nil || err2 != nil || w <= 0 || h <= 0 || w > 4096 || h > 4096 {
		return 0, 0, fmt.Errorf("size %q is not WxH with positive numbers up to 4096", s)
	}
	return w, h, nil
}
