package main

import (
	"context"
	"fmt"
	"image"
	"log/slog"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/zmonitor/firmware/board"
	"github.com/zmonitor/firmware/drivers/serialport"
	"github.com/zmonitor/firmware/internal/base/clock"
	"github.com/zmonitor/firmware/internal/base/version"
	"github.com/zmonitor/firmware/internal/fw/engine"
	"github.com/zmonitor/firmware/internal/fw/screen"
	"github.com/zmonitor/firmware/internal/fw/sys/initproc"
	"github.com/zmonitor/firmware/internal/proto/state"
)

// kernelArgs are the zmonitor.* parameters of the kernel command line.
type kernelArgs struct {
	deviceID, serial, label string
	verbose                 bool
}

func parseCmdline(s string) kernelArgs {
	var k kernelArgs
	for _, f := range strings.Fields(s) {
		name, val, _ := strings.Cut(f, "=")
		switch name {
		case "zmonitor.device_id":
			k.deviceID = val
		case "zmonitor.serial":
			k.serial = val
		case "zmonitor.label":
			k.label = val
		case "zmonitor.verbose":
			k.verbose = val == "1"
		}
	}
	return k
}

// pid1 is the firmware as the kernel's /init. It never returns.
func pid1() {
	entered := sinceKernelStart() // before anything: Go's start-up cost
	// The board profile (in the initramfs) is read and checked while the
	// pseudo file systems mount: its JSON decoding is cold code, 30-45 ms
	// under QEMU, and the data partition's mount waits for it.
	profile := sync.OnceValues(func() (board.Profile, error) { return board.Load(board.DefaultPath) })
	go profile()
	early := startEarlyScreen()
	tuneGC()
	sigs := initproc.Notify()
	cmdline, _ := os.ReadFile("/proc/cmdline")
	ini := initproc.New(nil)
	if err := ini.Boot(initproc.PseudoMounts()); err != nil {
		fmt.Fprintf(os.Stderr, "zmonitor: boot: %v\n", err)
	}
	// Expedited RCU for the start-up (initproc.ExpediteRCU says why);
	// back to normal once the engine runs.
	rcuErr := ini.Do(initproc.ExpediteRCU(true))
	if len(cmdline) == 0 {
		cmdline, _ = os.ReadFile("/proc/cmdline")
	}
	args := parseCmdline(string(cmdline))
	level := slog.LevelWarn
	if args.verbose {
		level = slog.LevelInfo
	}
	// The start-up's Info lines wait until the first frame is on the panel
	// or the engine runs (heldHandler says why), 5 s at most.
	text := slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})
	held := newHeldHandler(text)
	time.AfterFunc(5*time.Second, held.release)
	log := slog.New(held)
	trace := &bootTrace{log: log, direct: slog.New(text), release: held.release}
	trace.at("Go runtime started (main entered)", entered)
	trace.mark("pseudo file systems mounted")
	if rcuErr != nil {
		log.Info("start-up", "err", rcuErr) // slower, not broken
	}
	ini = initproc.New(&initproc.Opts{Log: log})
	if err := ini.Boot(initproc.DefaultSteps(args.deviceID)); err != nil {
		log.Error("boot", "err", err)
	}
	trace.mark("init steps")
	ctx, cancel := context.WithCancel(context.Background())
	var how initproc.How
	var once sync.Once
	stop := func(h initproc.How) { once.Do(func() { how = h; cancel() }) }
	go func() {
		if h := ini.Supervise(ctx, sigs); h != 0 {
			stop(h)
		}
	}()
	err := bootFirmware(ctx, ini, profile, early, args, log, trace, held.release, func() error { stop(initproc.Reboot); return nil })
	held.release()
	if err != nil {
		log.Error("firmware stopped", "err", err)
		fmt.Fprintf(os.Stderr, "zmonitor: %v\n", err)
		// Stay up for the service engineer; a signal still shuts down.
		<-ctx.Done()
	}
	if how == 0 {
		how = initproc.Halt
	}
	mount := "/data"
	if p, err := profile(); err == nil {
		mount = p.Data.Mount
	}
	if err := ini.Shutdown(how, mount); err != nil {
		log.Error("shutdown", "err", err)
	}
	initproc.Forever()
}

// tuneGC sets the collector for a board where the firmware is the only
// program: a live heap of a few MB in 256 MB of RAM. Go's default (GOGC=100,
// 4 MB minimum goal) started the first collection in the middle of the first
// button press → QR path under QEMU (3+35+11 ms of wall time, gctrace). The
// heap may now grow to five times the live heap (16 MB at least) before a
// collection, and the soft limit keeps the whole Go runtime under 64 MB
// whatever GOGC says. GOGC and GOMEMLIMIT on the kernel command line still
// win (they are read before this runs, and this leaves them alone).
func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(64 << 20)
	}
}

// bootView is the UNPROVISIONED screen with the kernel command line's
// identity: the stored identity is on the data partition, still mounting
// when the screen is rendered ahead, and the bootloader's copy is normally
// the same; when they match, device.Run finds the frame made.
func bootView(args kernelArgs) screen.View {
	return screen.View{State: state.Unprovisioned, DeviceID: args.deviceID, DeviceSerial: args.serial,
		DeviceLabel: args.label, FirmwareVersion: version.Version}
}

// bootFirmware opens the board's parts and runs the firmware; running is
// called once the engine runs.
func bootFirmware(ctx context.Context, ini *initproc.Init, loadProfile func() (board.Profile, error), early *earlyScreen, args kernelArgs, log *slog.Logger, trace *bootTrace, running func(), reboot func() error) error {
	defer early.request(nil)
	profile, err := loadProfile()
	if err != nil {
		return fmt.Errorf("board profile: %w", err)
	}
	if args.deviceID != "" {
		early.request(&warmRequest{view: bootView(args), size: image.Pt(profile.Display.Width, profile.Display.Height)})
	}
	// The button starts opening before anything is drawn (openingButton
	// says why it is not waited for).
	btn := openButton(profile, trace)
	defer btn.Halt()
	// The display (a mode set) and the console open while the data
	// partition mounts; then the same goroutine makes the screen with the
	// early renderer, which device.Run waits for only where it draws
	// (fonts).
	type openedScreen struct {
		scr *board.Screen
		con *serialport.Port
		err error
	}
	sch := make(chan openedScreen, 1)
	fonts := make(chan *screen.Screen, 1) // nil: device.Run makes its own, and reports the error
	go func() {
		scr, err := board.OpenDisplay(profile)
		if err != nil {
			sch <- openedScreen{err: err}
			fonts <- nil
			return
		}
		trace.mark("display open")
		con, err := board.OpenConsole(profile)
		if err != nil {
			log.Error("console", "err", err) // the device still works without it
		}
		trace.mark("console open")
		sch <- openedScreen{scr: scr, con: con}
		fonts <- early.screen(scr.Drawer, trace)
	}()
	merr := ini.MountData(initproc.Data{Device: profile.Data.Device, Mount: profile.Data.Mount, FSType: profile.Data.Filesystem})
	if merr == nil {
		trace.mark("data partition mounted")
	}
	od := <-sch
	if od.scr != nil {
		defer od.scr.Close()
	}
	switch {
	case merr != nil:
		if od.con != nil {
			od.con.Close()
		}
		return merr
	case od.err != nil:
		return fmt.Errorf("display: %w", od.err)
	}
	scr, con := od.scr, od.con
	net := startNetwork(ctx, profile, log)
	clk := clock.System{}
	f := firmware{
		profile:  profile,
		dataDir:  profile.Data.Mount,
		anchor:   "/etc/zmonitor/provisioning-anchor.pem",
		id:       identity{DeviceID: args.deviceID, DeviceSerial: args.serial},
		label:    args.label,
		clock:    clk,
		wall:     clock.NewWall(clk, version.Build(), ini.SetSystemTime),
		display:  scr.Drawer,
		screen:   sync.OnceValue(func() *screen.Screen { return <-fonts }),
		button:   btn,
		address:  net.address,
		netLines: net.lines,
		reboot:   reboot,
		log:      log,
		trace:    trace,
		started: func(*engine.Engine) {
			if err := ini.Do(initproc.ExpediteRCU(false)); err != nil {
				log.Info("start-up done", "err", err)
			}
			running()
		},
	}
	if con != nil {
		defer con.Close()
		f.console = con
	}
	return runFirmware(ctx, f)
}
