package qemu

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// startTimeout bounds swtpm and QEMU creating their sockets.
const startTimeout = 15 * time.Second

// pollInterval is how often Start looks for a socket file.
const pollInterval = 5 * time.Millisecond

// Board is a running (or stopped) qemu-virt board.
type Board struct {
	cfg  Config
	p    paths
	lock *os.File
	cons *console

	mu      sync.Mutex
	run     *instance // nil when stopped
	started time.Time
}

// instance is one boot: a QEMU and a swtpm process.
type instance struct {
	qemu, swtpm *exec.Cmd
	conn        net.Conn // console
	exited      chan struct{}
	exitErr     error // valid after exited is closed
	logs        []*os.File
}

// Start prepares the state directory (data disk, TPM state), starts swtpm
// and QEMU and connects the console. The guest starts running once the
// console is connected, so no output is lost. ctx bounds the start only;
// the board runs until PowerCut, Stop, Close or the guest powers off.
func Start(ctx context.Context, cfg Config) (*Board, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	// QEMU and swtpm get absolute paths: they do not share our view of a
	// relative one once started elsewhere (zm-board press from another
	// directory).
	abspaths := []*string{&cfg.StateDir, &cfg.Kernel}
	if cfg.Initrd != "" {
		abspaths = append(abspaths, &cfg.Initrd)
	}
	if cfg.Firmware != nil {
		abspaths = append(abspaths, &cfg.Firmware.Code)
	}
	for _, p := range abspaths {
		abs, err := filepath.Abs(*p)
		if err != nil {
			return nil, fmt.Errorf("qemu: %w", err)
		}
		*p = abs
	}
	p := paths{dir: cfg.StateDir}
	if err := os.MkdirAll(p.tpm(), 0o700); err != nil {
		return nil, fmt.Errorf("qemu: state directory: %w", err)
	}
	lock, err := lockState(p.lock())
	if err != nil {
		return nil, err
	}
	b := &Board{cfg: cfg, p: p, lock: lock, cons: newConsole(cfg.Console)}
	if _, err := ensureDisk(ctx, cfg.MkfsExt4, p.disk(), cfg.DiskSize); err != nil {
		b.release()
		return nil, fmt.Errorf("qemu: %w", err)
	}
	if err := ensureTPM(ctx, cfg.SWTPMSetup, p.tpm(), cfg.PCRBanks); err != nil {
		b.release()
		return nil, fmt.Errorf("qemu: %w", err)
	}
	for i := range b.cfg.HostFwd {
		if b.cfg.HostFwd[i].HostPort == 0 {
			port, err := freePort()
			if err != nil {
				b.release()
				return nil, fmt.Errorf("qemu: host forward to guest port %d: %w", b.cfg.HostFwd[i].GuestPort, err)
			}
			b.cfg.HostFwd[i].HostPort = port
		}
	}
	if err := b.boot(ctx); err != nil {
		b.release()
		return nil, err
	}
	return b, nil
}

// lockState takes an exclusive flock so two boards never share a state
// directory (one data disk, one TPM).
func lockState(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("qemu: lock state directory: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("qemu: state directory %s is in use by another board: %w", path, err)
	}
	return f, nil
}

// freePort asks the kernel for a free loopback port. Another process may
// take it before QEMU binds it; Start then fails with QEMU's error.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Args returns the QEMU command line of this board (without the program).
func (b *Board) Args() []string { return qemuArgs(b.cfg, b.p) }

// boot starts swtpm and QEMU and connects the console.
func (b *Board) boot(ctx context.Context) (err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.run != nil {
		return errors.New("qemu: board is already running")
	}
	for _, s := range []string{b.p.swtpmSock(), b.p.consoleSock(), b.p.qmpSock()} {
		if err := os.Remove(s); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("qemu: remove stale socket: %w", err)
		}
	}
	if err := b.writeBoardJSON(); err != nil {
		return err
	}
	in := &instance{exited: make(chan struct{})}
	defer func() {
		if err != nil {
			in.kill()
		}
	}()

	swLog, err := os.OpenFile(b.p.swtpmLog(), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("qemu: swtpm log: %w", err)
	}
	in.logs = append(in.logs, swLog)
	in.swtpm = exec.Command(b.cfg.SWTPM, swtpmArgs(b.p)...)
	in.swtpm.Stdout, in.swtpm.Stderr = swLog, swLog
	in.swtpm.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := in.swtpm.Start(); err != nil {
		return fmt.Errorf("qemu: start swtpm: %w", err)
	}
	if err := waitForFile(ctx, b.p.swtpmSock(), nil); err != nil {
		return fmt.Errorf("qemu: swtpm control socket: %w (see %s)", err, b.p.swtpmLog())
	}

	qLog, err := os.OpenFile(b.p.qemuLog(), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("qemu: qemu log: %w", err)
	}
	in.logs = append(in.logs, qLog)
	in.qemu = exec.Command(b.cfg.QEMU, qemuArgs(b.cfg, b.p)...)
	in.qemu.Stdout, in.qemu.Stderr = qLog, qLog
	in.qemu.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	start := time.Now()
	if err := in.qemu.Start(); err != nil {
		return fmt.Errorf("qemu: start %s: %w", b.cfg.QEMU, err)
	}
	go func() {
		in.exitErr = in.qemu.Wait()
		close(in.exited)
	}()
	if err := waitForFile(ctx, b.p.consoleSock(), in.exited); err != nil {
		return fmt.Errorf("qemu: console socket: %w: %s", err, tail(b.p.qemuLog()))
	}
	conn, err := dialConsole(ctx, b.p.consoleSock(), in.exited)
	if err != nil {
		return fmt.Errorf("qemu: connect console: %w", err)
	}
	in.conn = conn
	b.cons.restart()
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if n > 0 {
				_, _ = b.cons.Write(buf[:n])
			}
			if err != nil {
				b.cons.end(err)
				return
			}
		}
	}()
	b.run = in
	b.started = start
	return nil
}

func (b *Board) writeBoardJSON() error {
	j, err := json.MarshalIndent(struct {
		HostFwd  []HostFwd
		GuestFwd []GuestFwd
	}{b.cfg.HostFwd, b.cfg.GuestFwd}, "", "  ")
	if err != nil {
		return fmt.Errorf("qemu: board.json: %w", err)
	}
	if err := os.WriteFile(b.p.boardJSON(), append(j, '\n'), 0o600); err != nil {
		return fmt.Errorf("qemu: board.json: %w", err)
	}
	return nil
}

// waitForFile polls for path until it exists, ctx ends, startTimeout
// passes or died is closed.
func waitForFile(ctx context.Context, path string, died <-chan struct{}) error {
	deadline := time.NewTimer(startTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		if _, err := os.Stat(path); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline.C:
			return fmt.Errorf("%s did not appear within %v", path, startTimeout)
		case <-died:
			return errors.New("the process exited")
		case <-tick.C:
		}
	}
}

// tail returns the last bytes of a log file for an error message.
func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// kill ends both processes at once, without a shutdown (a power cut).
func (in *instance) kill() {
	if in.qemu != nil && in.qemu.Process != nil {
		_ = in.qemu.Process.Kill()
		<-in.exited
	}
	in.cleanup()
}

// cleanup waits for swtpm (which ends when QEMU goes away, --terminate),
// killing it after a grace period, and closes the logs.
func (in *instance) cleanup() {
	if in.conn != nil {
		in.conn.Close()
	}
	if in.swtpm != nil && in.swtpm.Process != nil {
		done := make(chan struct{})
		go func() { _ = in.swtpm.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(3 * time.Second):
			_ = in.swtpm.Process.Kill()
			<-done
		}
	}
	for _, f := range in.logs {
		f.Close()
	}
}

// current returns the running instance or an error.
func (b *Board) current() (*instance, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.run == nil {
		return nil, errors.New("qemu: board is not running")
	}
	return b.run, nil
}

// Started returns when QEMU of the current boot was started.
func (b *Board) Started() time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.started
}

// StateDir returns the board's state directory.
func (b *Board) StateDir() string { return b.p.dir }

// ConsoleLog returns the path of the console log file.
func (b *Board) ConsoleLog() string { return b.p.consoleLog() }

// TPMTrace returns the path of the TPM command trace (Config.TraceTPM).
func (b *Board) TPMTrace() string { return b.p.tpmTrace() }

// QMPSocket returns the path of the QMP socket.
func (b *Board) QMPSocket() string { return b.p.qmpSock() }

// GuestPort returns the host address ("127.0.0.1:port") forwarded to the
// guest's TCP port, or "" when the port is not forwarded.
func (b *Board) GuestPort(guest int) string {
	for _, f := range b.cfg.HostFwd {
		if f.GuestPort == guest {
			return net.JoinHostPort("127.0.0.1", strconv.Itoa(f.HostPort))
		}
	}
	return ""
}

// PressButton presses the provisioning button: QMP system_powerdown, which
// QEMU's virt machine turns into a pulse on PL061 GPIO line 3.
func (b *Board) PressButton(ctx context.Context) error {
	if _, err := b.current(); err != nil {
		return err
	}
	return PressButton(ctx, b.p.qmpSock())
}

// Screenshot returns what the panel shows (QMP screendump; save it with
// image/png to get a PNG).
func (b *Board) Screenshot(ctx context.Context) (image.Image, error) {
	if _, err := b.current(); err != nil {
		return nil, err
	}
	return Screenshot(ctx, b.p.qmpSock(), b.p.dir)
}

// PressButton sends the button press to the board whose QMP socket is sock.
func PressButton(ctx context.Context, sock string) error {
	if _, err := QMP(ctx, sock, "system_powerdown", nil); err != nil {
		return fmt.Errorf("press button: %w", err)
	}
	return nil
}

// Screenshot takes a screenshot of the board whose QMP socket is sock;
// QEMU writes it as PPM into a temporary file in dir, removed afterwards.
// PPM, not PNG: QEMU holds its big lock while it writes the file, and the
// guest stands still meanwhile; compressing a PNG took about 20 ms of it,
// which slowed the very boots and presses the benchmarks time.
func Screenshot(ctx context.Context, sock, dir string) (image.Image, error) {
	// QEMU resolves a relative file name against its own working directory.
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("screenshot: %w", err)
	}
	f, err := os.CreateTemp(dir, "screendump-*.ppm")
	if err != nil {
		return nil, fmt.Errorf("screenshot: %w", err)
	}
	name := f.Name()
	f.Close()
	defer os.Remove(name)
	if _, err := QMP(ctx, sock, "screendump", map[string]any{"filename": name, "format": "ppm"}); err != nil {
		return nil, fmt.Errorf("screenshot: %w", err)
	}
	f, err = os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("screenshot: %w", err)
	}
	defer f.Close()
	img, err := DecodePPM(f)
	if err != nil {
		return nil, fmt.Errorf("screenshot: from QEMU: %w", err)
	}
	return img, nil
}

// SendLine writes line and a newline to the console.
func (b *Board) SendLine(line string) error {
	in, err := b.current()
	if err != nil {
		return err
	}
	if _, err := in.conn.Write([]byte(line + "\n")); err != nil {
		return fmt.Errorf("console: send: %w", err)
	}
	return nil
}

// Expect waits for console output matching re after everything earlier
// Expect calls consumed (the cursor starts at the beginning of each boot),
// and returns the match.
func (b *Board) Expect(ctx context.Context, re *regexp.Regexp) (string, error) {
	subs, err := b.cons.expect(ctx, re)
	if err != nil {
		return "", err
	}
	return subs[0], nil
}

// ExpectSubmatch is Expect returning the submatches (0 is the whole match).
func (b *Board) ExpectSubmatch(ctx context.Context, re *regexp.Regexp) ([]string, error) {
	return b.cons.expect(ctx, re)
}

// Watch waits until re matches anywhere in the console output kept (all
// boots) and returns the submatches (0 is the whole match). Unlike Expect
// it leaves the cursor alone, and unlike a loop over ConsoleText it does
// not poll: it wakes when output arrives, so a benchmark waiting for a
// console line takes no CPU from the guest it times.
func (b *Board) Watch(ctx context.Context, re *regexp.Regexp) ([]string, error) {
	return b.cons.watch(ctx, re)
}

// ConsoleText returns the console output kept in memory (all boots).
func (b *Board) ConsoleText() string { return b.cons.text() }

// PowerCut kills QEMU without any shutdown, as if the power cord were
// pulled; swtpm then exits too. The disk and TPM state stay; StartAgain
// boots on them.
func (b *Board) PowerCut() error {
	b.mu.Lock()
	in := b.run
	b.run = nil
	b.mu.Unlock()
	if in == nil {
		return errors.New("qemu: power cut: board is not running")
	}
	in.kill()
	return nil
}

// Wait waits until QEMU exits by itself: the guest powered off, halted or
// rebooted (the board runs with -no-reboot). It returns QEMU's exit error.
func (b *Board) Wait(ctx context.Context) error {
	in, err := b.current()
	if err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		return fmt.Errorf("qemu: wait for the guest to power off: %w", ctx.Err())
	case <-in.exited:
	}
	b.mu.Lock()
	if b.run == in {
		b.run = nil
	}
	b.mu.Unlock()
	in.cleanup()
	if in.exitErr != nil {
		return fmt.Errorf("qemu: %w: %s", in.exitErr, tail(b.p.qemuLog()))
	}
	return nil
}

// Stop ends QEMU with QMP quit (QEMU flushes its disk cache to data.img),
// falling back to a kill. The guest is not asked to shut down: for a clean
// shutdown make the guest power off (console command) and call Wait.
func (b *Board) Stop(ctx context.Context) error {
	in, err := b.current()
	if err != nil {
		return err
	}
	qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, qerr := QMP(qctx, b.p.qmpSock(), "quit", nil); qerr == nil {
		select {
		case <-in.exited:
		case <-qctx.Done():
		}
	}
	b.mu.Lock()
	if b.run == in {
		b.run = nil
	}
	b.mu.Unlock()
	in.kill() // no-op for the QEMU that has exited
	return nil
}

// Running reports whether QEMU runs.
func (b *Board) Running() bool {
	in, err := b.current()
	if err != nil {
		return false
	}
	select {
	case <-in.exited:
		return false
	default:
		return true
	}
}

// StartAgain boots the board again on the same disk and TPM state, after a
// PowerCut, Stop or Wait.
func (b *Board) StartAgain(ctx context.Context) error {
	return b.boot(ctx)
}

// Close stops the board if it runs and releases the state directory.
func (b *Board) Close() error {
	if b.Running() {
		_ = b.Stop(context.Background())
	} else if in, err := b.current(); err == nil {
		b.mu.Lock()
		b.run = nil
		b.mu.Unlock()
		in.kill()
	}
	b.release()
	return nil
}

func (b *Board) release() {
	if b.lock != nil {
		b.lock.Close()
		b.lock = nil
	}
}

// WriteConsole writes raw bytes to the serial console (an interactive
// terminal; tests use SendLine).
func (b *Board) WriteConsole(p []byte) (int, error) {
	in, err := b.current()
	if err != nil {
		return 0, err
	}
	n, err := in.conn.Write(p)
	if err != nil {
		return n, fmt.Errorf("console: send: %w", err)
	}
	return n, nil
}

// dialConsole connects to QEMU's console socket. The socket file appears at
// bind(2), a moment before QEMU listens: until then a connect is refused, so
// that is retried (bounded by startTimeout and QEMU exiting).
func dialConsole(ctx context.Context, path string, died <-chan struct{}) (net.Conn, error) {
	deadline := time.Now().Add(startTimeout)
	var d net.Dialer
	for {
		conn, err := d.DialContext(ctx, "unix", path)
		if err == nil || !errors.Is(err, syscall.ECONNREFUSED) || time.Now().After(deadline) {
			return conn, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-died:
			return nil, errors.New("QEMU exited")
		case <-time.After(10 * time.Millisecond):
		}
	}
}
