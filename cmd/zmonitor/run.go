//go:build !zmfirmware

// Host mode: the device as a plain process on a development host. The
// firmware build (-tags zmfirmware) leaves this file out, and with it the
// in-memory key store (softkeys) and the PNG panel.

package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/zmonitor/firmware/board"
	"github.com/zmonitor/firmware/drivers/button"
	"github.com/zmonitor/firmware/internal/base/cli"
	"github.com/zmonitor/firmware/internal/base/clock"
	"github.com/zmonitor/firmware/internal/base/version"
	"github.com/zmonitor/firmware/internal/fw/boot"
	"github.com/zmonitor/firmware/internal/fw/identity"
	"github.com/zmonitor/firmware/internal/fw/keys"
	"github.com/zmonitor/firmware/internal/fw/keys/softkeys"
)

// runCmd runs the device as a plain process on a development host: the
// screen is a PNG file, SIGUSR1 is the button, the console is stdin/stdout.
// Ctrl-C (SIGINT) or SIGTERM stops it, also while the console waits for a
// line.
func runCmd(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	ctx, cancel := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer cancel()
	c, err := hostConfig(ctx, cancel, args, stdin, stdout, stderr)
	if err != nil {
		return err
	}
	return boot.Run(ctx, c)
}

// hostConfig parses run's flags into the device's configuration on this
// host; cancel stops the device (the console's reboot).
func hostConfig(ctx context.Context, cancel func(), args []string, stdin io.Reader, stdout, stderr io.Writer) (boot.Config, error) {
	fs := cli.New("zmonitor run", "zmonitor run -data DIR -anchor FILE [flags]\n  run the device on this host: the screen is a PNG file, SIGUSR1 is the button,\n  the console is standard input and output; Ctrl-C or SIGTERM stops it")
	boardName := fs.String("board", "qemu-virt", "board profile name, or a JSON profile file")
	data := fs.String("data", "", "data directory (required)")
	tpmPath := fs.String("tpm", "", `TPM: "unix:/path/swtpm.sock", "tcp:127.0.0.1:2321", a device path, or "soft" (in-memory keys, development only)`)
	anchor := fs.String("anchor", "", "provisioning trust anchor PEM (required)")
	deviceID := fs.String("device-id", "ZM-DEV-001", "device ID (first run only: kept in the data directory)")
	serial := fs.String("serial", "SN-DEV-000001", "device serial (first run only)")
	label := fs.String("label", "", "device label shown before provisioning")
	listen := fs.String("listen", "", "provisioning endpoint HOST:PORT; an empty HOST (or none: the default) listens on the address the QR shows, on the board's provisioning port; 0.0.0.0 or [::] listens on every interface")
	address := fs.String("address", "", "IP address the QR shows (default: the -listen host, else this host's first non-loopback IPv4, else 127.0.0.1); it must be where -listen listens")
	screenPNG := fs.String("screen", "", "write the screen to this PNG file on every update (default DATA/screen.png)")
	noConsole := fs.Bool("no-console", false, "no diagnostics console on stdin/stdout")
	verbose := fs.Bool("v", false, "log at info level")
	if err := fs.Parse(args, 0, 0); err != nil {
		return boot.Config{}, err
	}
	if *data == "" || *anchor == "" {
		return boot.Config{}, cli.Usagef("run: -data and -anchor are required (zmonitor run -help)")
	}
	profile, err := board.Lookup(*boardName)
	if err != nil {
		if profile, err = board.Load(*boardName); err != nil {
			return boot.Config{}, fmt.Errorf("run: board %q: %w", *boardName, err)
		}
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	if *screenPNG == "" {
		*screenPNG = filepath.Join(*data, "screen.png")
	}
	if err := os.MkdirAll(*data, 0o700); err != nil {
		return boot.Config{}, fmt.Errorf("run: %w", err)
	}
	listenAddr, addr, err := hostEndpoint(*listen, *address, profile.ProvisioningPort, hostAddress)
	if err != nil {
		return boot.Config{}, fmt.Errorf("run: %w", err)
	}
	openKeys := boot.TPMKeys(*tpmPath)
	switch *tpmPath {
	case "soft":
		openKeys = softKeys
	case "":
		openKeys = boot.TPMKeys(profile.TPM.Path)
	}
	var console io.ReadWriter
	if !*noConsole {
		console = stdio{newCtxReader(ctx, stdin), stdout}
	}
	clk := clock.System{}
	fmt.Fprintf(stderr, "zmonitor %s on %s: provisioning endpoint %s, QR address %s; screen %s; press the button with: kill -USR1 %d\n",
		version.Version, profile.Name, listenAddr, addr, *screenPNG, os.Getpid())
	return boot.Config{
		Profile: profile,
		DataDir: *data,
		Given:   identity.Identity{DeviceID: *deviceID, DeviceSerial: *serial},
		Label:   *label,
		Listen:  listenAddr,
		Anchors: *anchor,
		Keys:    openKeys,
		Clock:   clk,
		Wall:    clock.NewWall(clk, version.Build(), nil),
		Display: newPNGPanel(*screenPNG, profile.Display.Width, profile.Display.Height),
		Button:  signalButton{},
		Console: console,
		Address: func() string { return addr },
		NetLines: func() []string {
			return []string{"host mode, address " + addr + ", provisioning endpoint " + listenAddr}
		},
		Reboot: func() error { cancel(); return nil },
		Log:    log,
	}, nil
}

// hostEndpoint decides where host mode's provisioning endpoint listens and
// which address its QR shows, so that the two agree: a Central Station
// that reads the QR must reach the endpoint. listen is -listen (HOST:PORT,
// either part may be empty; "" is ":"), address is -address, port the
// board's provisioning port (for an empty PORT), and local finds this
// host's address (the first non-loopback IPv4, else 127.0.0.1).
//
//   - no HOST: listen on the QR's address (-address, else local());
//   - an IP HOST: the QR shows it; an -address that differs is an error;
//   - 0.0.0.0 or [::]: listen on every interface, the QR shows -address or
//     local().
func hostEndpoint(listen, address string, port int, local func() string) (listenAddr, qrAddr string, err error) {
	if listen == "" {
		listen = ":"
	}
	host, p, err := net.SplitHostPort(listen)
	if err != nil {
		return "", "", fmt.Errorf("-listen %q: want HOST:PORT: %w", listen, err)
	}
	if p == "" {
		p = strconv.Itoa(port)
	}
	if address != "" {
		a, err := netip.ParseAddr(address)
		if err != nil || a.Zone() != "" || a.IsUnspecified() {
			return "", "", fmt.Errorf("-address %q: want the IP address a tablet's network reaches this host at", address)
		}
		address = a.String()
	}
	switch {
	case host == "":
		if address == "" {
			address = local()
		}
		return net.JoinHostPort(address, p), address, nil
	default:
		h, err := netip.ParseAddr(host)
		if err != nil || h.Zone() != "" {
			return "", "", fmt.Errorf("-listen %q: HOST must be an IP address (the QR shows it), or empty", listen)
		}
		if h.IsUnspecified() {
			if address == "" {
				address = local()
			}
			return net.JoinHostPort(host, p), address, nil
		}
		if address != "" && address != h.String() {
			return "", "", fmt.Errorf("-address %s but -listen %s: the QR would send the Central Station where nothing listens (leave one of them out)", address, listen)
		}
		return net.JoinHostPort(h.String(), p), h.String(), nil
	}
}

// softKeys opens an in-memory key store: new keys on every run, whatever
// the data directory's enrollment record says (development only).
func softKeys(bool) (keys.Store, func() error, error) {
	k, err := softkeys.New(rand.Reader)
	return k, func() error { return nil }, err
}

type stdio struct {
	io.Reader
	io.Writer
}

// ctxReader reads r until ctx ends; from then on Read returns ctx's
// error, also while a read of r is still waiting. A terminal's read
// returns only when a line is typed, and os.Stdin's cannot be interrupted
// (Go gives a blocking stdin no deadlines), so without this the console
// held the device, and `zmonitor run`, past Ctrl-C and SIGTERM. A read
// still waiting then ends with the process.
type ctxReader struct {
	ctx     context.Context
	r       io.Reader
	pending chan readResult // the read in flight, if any
	rest    []byte          // what a read returned beyond the caller's buffer
}

type readResult struct {
	b   []byte
	err error
}

func newCtxReader(ctx context.Context, r io.Reader) *ctxReader { return &ctxReader{ctx: ctx, r: r} }

func (c *ctxReader) Read(p []byte) (int, error) {
	if len(c.rest) > 0 {
		n := copy(p, c.rest)
		c.rest = c.rest[n:]
		return n, nil
	}
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	if c.pending == nil {
		ch := make(chan readResult, 1)
		buf := make([]byte, max(len(p), 256))
		go func() {
			n, err := c.r.Read(buf)
			ch <- readResult{buf[:max(0, n)], err}
		}()
		c.pending = ch
	}
	select {
	case res := <-c.pending:
		c.pending = nil
		n := copy(p, res.b)
		c.rest = res.b[n:]
		if len(c.rest) > 0 {
			return n, nil // the error comes with the rest
		}
		return n, res.err
	case <-c.ctx.Done():
		return 0, c.ctx.Err()
	}
}

func hostAddress() string {
	addrs, err := net.InterfaceAddrs()
	if err == nil {
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && !ipn.IP.IsLoopback() && ipn.IP.To4() != nil {
				return ipn.IP.String()
			}
		}
	}
	return "127.0.0.1"
}

// signalButton turns SIGUSR1 into button presses.
type signalButton struct{}

func (signalButton) Run(ctx context.Context, out chan<- button.Event) error {
	ch := make(chan os.Signal, 4)
	signal.Notify(ch, syscall.SIGUSR1)
	defer signal.Stop(ch)
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
			select {
			case out <- button.Event{Kind: button.Press, At: time.Now()}:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
}

// pngPanel is a display.Drawer that keeps the frame in memory and writes it
// to a PNG file (atomically) after every draw.
type pngPanel struct {
	path string
	mu   sync.Mutex
	img  *image.RGBA
}

func newPNGPanel(path string, w, h int) *pngPanel {
	return &pngPanel{path: path, img: image.NewRGBA(image.Rect(0, 0, w, h))}
}

func (p *pngPanel) String() string          { return "png:" + p.path }
func (p *pngPanel) Halt() error             { return nil }
func (p *pngPanel) ColorModel() color.Model { return color.RGBAModel }
func (p *pngPanel) Bounds() image.Rectangle { return p.img.Rect }

func (p *pngPanel) Draw(r image.Rectangle, src image.Image, sp image.Point) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	draw.Draw(p.img, r, src, sp, draw.Src)
	tmp := p.path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("png panel: %w", err)
	}
	if err := png.Encode(f, p.img); err != nil {
		f.Close()
		return fmt.Errorf("png panel: %w", err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, p.path)
}
