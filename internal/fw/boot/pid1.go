package boot

import (
	"context"
	"fmt"
	"image"
	"log/slog"
	"os"
	"runtime/debug"
	"sync"
	"time"

	"github.com/zmonitor/firmware/board"
	"github.com/zmonitor/firmware/drivers/serialport"
	"github.com/zmonitor/firmware/internal/base/clock"
	"github.com/zmonitor/firmware/internal/base/version"
	"github.com/zmonitor/firmware/internal/fw/engine"
	"github.com/zmonitor/firmware/internal/fw/fault"
	"github.com/zmonitor/firmware/internal/fw/identity"
	"github.com/zmonitor/firmware/internal/fw/sys/initproc"
)

// AnchorsPath is where the image puts the provisioning trust anchors.
const AnchorsPath = "/etc/zmonitor/provisioning-anchor.pem"

// PID1 is the firmware as the kernel's /init: it boots the board
// (firmwarePlan, then devicePlan) and runs provisioning until a signal or
// the console asks to stop, then syncs, unmounts and powers off or
// reboots. It never returns. A boot step that fails stops the firmware
// with the step and the reason on the console, and PID 1 stays up for the
// service engineer (a signal still shuts it down).
func PID1() {
	f := &firmware{entered: sinceKernelStart()} // before anything: Go's start-up cost
	// The board profile (in the initramfs) is read and checked while the
	// pseudo file systems mount: its JSON decoding is cold code, 30-45 ms
	// under QEMU, and the data partition's mount waits for it.
	f.profile = sync.OnceValues(func() (board.Profile, error) { return board.Load(board.DefaultPath) })
	go f.profile()
	f.screens = startScreen()
	tuneGC()
	f.sigs = initproc.Notify()
	f.cmdline, _ = os.ReadFile("/proc/cmdline")
	f.ctx, f.cancel = context.WithCancel(context.Background())
	err := firmwarePlan.run(f)
	f.cleanup.run()
	f.screens.noRenderAhead() // if the plan stopped before it could ask
	if f.held != nil {
		f.held.release()
	}
	if err != nil {
		f.log.Error("firmware stopped", "err", err)
		fmt.Fprintf(os.Stderr, "zmonitor: %v\n", err)
		// Stay up for the service engineer; a signal still shuts down.
		<-f.ctx.Done()
	}
	how := f.how()
	mount := "/data"
	if p, err := f.profile(); err == nil {
		mount = p.Data.Mount
	}
	if err := f.ini.Shutdown(how, mount); err != nil {
		f.log.Error("shutdown", "err", err)
	}
	initproc.Forever()
}

// firmwarePlan is PID 1's boot: the board's file systems and parts, each
// opened beside the others where that shortens the way to the first frame,
// then the device plan.
var firmwarePlan = plan[*firmware]{
	{name: "mount the pseudo file systems", run: (*firmware).mountPseudo},
	{name: "run the init steps", run: (*firmware).initSteps},
	{name: "read the board profile", run: (*firmware).readProfile},
	{name: "start opening the button", run: (*firmware).openButton},
	{name: "start opening the display and the console", run: (*firmware).openDisplay},
	{name: "mount the data partition", run: (*firmware).mountData},
	{name: "wait for the display", run: (*firmware).waitDisplay},
	{name: "start the network", run: (*firmware).startNetwork},
	{name: "run the device", run: (*firmware).runDevice},
}

// firmware is PID 1's state.
type firmware struct {
	entered time.Duration // main entered, since the kernel started
	profile func() (board.Profile, error)
	screens *screenMaker
	sigs    chan os.Signal
	cmdline []byte
	ctx     context.Context
	cancel  context.CancelFunc
	stopMu  sync.Mutex
	stopped initproc.How
	cleanup

	ini   *initproc.Init
	args  kernelArgs
	log   *slog.Logger
	held  *heldHandler
	trace *bootTrace

	board   board.Profile
	button  *openingButton
	display chan openedParts
	scr     *board.Screen
	console *serialport.Port
	net     *network
}

func (f *firmware) tracer() *bootTrace { return f.trace }

// showFault does nothing: until the device plan runs there is no screen,
// and the console says what failed.
func (f *firmware) showFault(fault.Fault) {}

// stop ends the firmware with h (the first call wins).
func (f *firmware) stop(h initproc.How) {
	f.stopMu.Lock()
	if f.stopped == 0 {
		f.stopped = h
	}
	f.stopMu.Unlock()
	f.cancel()
}

// how is the shutdown asked for, Halt if none was.
func (f *firmware) how() initproc.How {
	f.stopMu.Lock()
	defer f.stopMu.Unlock()
	if f.stopped == 0 {
		return initproc.Halt
	}
	return f.stopped
}

// mountPseudo mounts /proc, /sys, /dev and the rest, reads the kernel
// command line and starts the log. A failed mount is reported and the boot
// goes on: the steps after it say what they miss.
func (f *firmware) mountPseudo() error {
	f.ini = initproc.New(nil)
	mountErr := f.ini.Boot(initproc.PseudoMounts())
	if mountErr != nil {
		fmt.Fprintf(os.Stderr, "zmonitor: boot: %v\n", mountErr)
	}
	// Expedited RCU for the start-up (initproc.ExpediteRCU says why);
	// back to normal once the engine runs.
	rcuErr := f.ini.Do(initproc.ExpediteRCU(true))
	if len(f.cmdline) == 0 {
		f.cmdline, _ = os.ReadFile("/proc/cmdline")
	}
	f.args = parseCmdline(string(f.cmdline))
	level := slog.LevelWarn
	if f.args.verbose {
		level = slog.LevelInfo
	}
	// The start-up's Info lines wait until the first frame is on the panel
	// or the engine runs (heldHandler says why), 5 s at most.
	text := slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})
	f.held = newHeldHandler(text)
	time.AfterFunc(5*time.Second, f.held.release)
	f.log = slog.New(f.held)
	f.trace = &bootTrace{log: f.log, direct: slog.New(text), release: f.held.release}
	f.trace.at("Go runtime started (main entered)", f.entered)
	if rcuErr != nil {
		f.log.Info("start-up", "err", rcuErr) // slower, not broken
	}
	return nil
}

// initSteps makes the /dev links and sets the host name, then starts
// reaping orphans and watching for the signals that shut down.
func (f *firmware) initSteps() error {
	f.ini = initproc.New(&initproc.Opts{Log: f.log})
	if err := f.ini.Boot(initproc.DefaultSteps(f.args.deviceID)); err != nil {
		f.log.Error("boot", "err", err)
	}
	go func() {
		if h := f.ini.Supervise(f.ctx, f.sigs); h != 0 {
			f.stop(h)
		}
	}()
	return nil
}

// readProfile waits for the board profile and asks for the first frame to
// be rendered ahead with the kernel command line's identity: the stored
// identity is on the data partition, still to be mounted, and the
// bootloader's copy is normally the same.
func (f *firmware) readProfile() error {
	p, err := f.profile()
	if err != nil {
		return err
	}
	f.board = p
	f.net = newNetwork(p)
	if f.args.deviceID == "" {
		f.screens.noRenderAhead()
		return nil
	}
	o := engine.Options{DeviceID: f.args.deviceID, DeviceSerial: f.args.serial, DeviceLabel: f.args.label, FirmwareVersion: version.Version}
	f.screens.renderAhead(engine.StartView(o, f.net.address()), image.Pt(p.Display.Width, p.Display.Height))
	return nil
}

// openButton starts opening the button before anything is drawn
// (openingButton says why it is not waited for).
func (f *firmware) openButton() error {
	f.button = openButton(f.board, f.trace)
	f.later(f.button.Halt)
	return nil
}

// openedParts is the display and the console, or why the display did not
// open (a console that does not open is logged: the device works without
// it).
type openedParts struct {
	scr *board.Screen
	con *serialport.Port
	err error
}

// openDisplay opens the display (a mode set) and the console while the data
// partition mounts, and hands the display to the screen maker.
func (f *firmware) openDisplay() error {
	f.display = make(chan openedParts, 1)
	go func() {
		scr, err := board.OpenDisplay(f.board)
		if err != nil {
			f.screens.setDisplay(nil, err)
			f.display <- openedParts{err: err}
			return
		}
		f.trace.mark("display open")
		f.screens.setDisplay(scr.Drawer, nil)
		con, err := board.OpenConsole(f.board)
		if err != nil {
			f.log.Error("console", "err", err) // the device still works without it
		} else {
			f.trace.mark("console open")
		}
		f.display <- openedParts{scr: scr, con: con}
	}()
	f.later(func() {
		parts := f.waitParts()
		if parts.con != nil {
			parts.con.Close()
		}
		if parts.scr != nil {
			parts.scr.Close()
		}
	})
	return nil
}

// waitParts waits for the display and the console (once).
func (f *firmware) waitParts() openedParts {
	if f.display != nil {
		p := <-f.display
		f.scr, f.console = p.scr, p.con
		f.display = nil
		if p.err != nil {
			return p
		}
	}
	return openedParts{scr: f.scr, con: f.console}
}

// mountData mounts the data partition, first; its superblock is read only
// to explain a failed mount.
func (f *firmware) mountData() error {
	d := f.board.Data
	return f.ini.MountData(initproc.Data{Device: d.Device, Mount: d.Mount, FSType: d.Filesystem})
}

// waitDisplay waits for the display.
func (f *firmware) waitDisplay() error {
	if p := f.waitParts(); p.err != nil {
		return p.err
	}
	return nil
}

// startNetwork brings the interface up in the background.
func (f *firmware) startNetwork() error {
	f.net.start(f.ctx, f.log)
	return nil
}

// runDevice runs the device plan on the board's parts until the firmware
// stops.
func (f *firmware) runDevice() error {
	clk := clock.System{}
	c := Config{
		Profile:  f.board,
		DataDir:  f.board.Data.Mount,
		Given:    identity.Identity{DeviceID: f.args.deviceID, DeviceSerial: f.args.serial},
		Label:    f.args.label,
		Anchors:  AnchorsPath,
		Keys:     TPMKeys(f.board.TPM.Path),
		EventLog: ReadEventLog,
		Clock:    clk,
		Wall:     clock.NewWall(clk, version.Build(), f.ini.SetSystemTime),
		Button:   f.button,
		Address:  f.net.address,
		NetLines: f.net.lines,
		Reboot:   func() error { f.stop(initproc.Reboot); return nil },
		Log:      f.log,
		Started: func(*engine.Engine) {
			if err := f.ini.Do(initproc.ExpediteRCU(false)); err != nil {
				f.log.Info("start-up done", "err", err)
			}
			f.held.release()
		},
	}
	if f.console != nil {
		c.Console = f.console
	}
	return newDevice(c, f.screens, f.trace).run(f.ctx)
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
