package tpm

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-tpm/tpm2/transport"
)

// backend is a TPM the shared suite runs against.
type backend interface {
	// open returns a new connection to the running TPM.
	open(t testing.TB) transport.TPMCloser
	// restart power-cycles the TPM, keeping its non-volatile state.
	restart(t testing.TB)
}

// backendKind starts a fresh TPM (blank NV) for one test.
type backendKind struct {
	name  string
	start func(t testing.TB) backend
}

// backends lists every TPM the suite runs against: the cgo simulator where
// cgo is on (simBackends, in sim_cgo_test.go), and swtpm over its unix
// socket and over TCP.
func backends() []backendKind {
	return append(simBackends(),
		backendKind{"swtpm-unix", func(t testing.TB) backend { return startSwtpm(t, false) }},
		backendKind{"swtpm-tcp", func(t testing.TB) backend { return startSwtpm(t, true) }},
	)
}

// forEachBackend runs f as a subtest on a fresh TPM of every kind.
func forEachBackend(t *testing.T, f func(t *testing.T, b backend)) {
	t.Helper()
	for _, k := range backends() {
		t.Run(k.name, func(t *testing.T) { f(t, k.start(t)) })
	}
}

// swtpm is an swtpm process with its state in a temporary directory. The
// test creates the listening sockets and hands them to swtpm (fd=), so no
// waiting for swtpm to come up is needed.
type swtpm struct {
	dir   string
	tcp   bool
	addr  string // Open path: "unix:..." or "tcp:..."
	cmd   *exec.Cmd
	boots int
}

func swtpmBinary(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("swtpm")
	if err != nil {
		t.Skip("swtpm is not installed (Debian: apt-get install swtpm swtpm-tools; scripts/install-deps.sh does it): skipping the swtpm backend")
	}
	return p
}

func startSwtpm(t testing.TB, tcp bool) *swtpm {
	t.Helper()
	swtpmBinary(t)
	s := &swtpm{dir: t.TempDir(), tcp: tcp}
	if err := os.Mkdir(filepath.Join(s.dir, "state"), 0o700); err != nil {
		t.Fatal(err)
	}
	s.boot(t)
	t.Cleanup(func() { s.stop(t) })
	return s
}

// boot starts swtpm on the state directory. The first boot lets swtpm send
// TPM2_Startup itself; later boots do not, so New's own Startup is tested.
func (s *swtpm) boot(t testing.TB) {
	t.Helper()
	s.boots++
	var srv net.Listener
	var err error
	if s.tcp {
		s.bootTCP(t, flags(s.boots))
		return
	} else {
		p := filepath.Join(s.dir, "tpm.sock")
		_ = os.Remove(p)
		srv, err = listenUnix(p)
		s.addr = "unix:" + p
	}
	if err != nil {
		t.Fatalf("swtpm: listen: %v", err)
	}
	ctlPath := filepath.Join(s.dir, "ctl.sock")
	_ = os.Remove(ctlPath)
	ctl, err := listenUnix(ctlPath)
	if err != nil {
		t.Fatalf("swtpm: listen ctrl: %v", err)
	}
	srvFile, err := fileOf(srv)
	if err != nil {
		t.Fatal(err)
	}
	ctlFile, err := fileOf(ctl)
	if err != nil {
		t.Fatal(err)
	}
	_ = srv.Close()
	_ = ctl.Close()
	s.cmd = exec.Command(swtpmBinary(t), "socket", "--tpm2",
		"--server", "type=unixio,fd=3",
		"--ctrl", "type=unixio,fd=4",
		"--tpmstate", "dir="+filepath.Join(s.dir, "state"),
		"--flags", flags(s.boots),
		"--log", "file="+filepath.Join(s.dir, "swtpm.log"))
	s.cmd.ExtraFiles = []*os.File{srvFile, ctlFile}
	// swtpm dies with the test binary even when a timeout skips Cleanup.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("swtpm: start: %v", err)
	}
	_ = srvFile.Close()
	_ = ctlFile.Close()
}

// listenUnix listens on a unix socket whose file survives the listener's
// Close (the listener is closed once swtpm holds its descriptor).
func listenUnix(p string) (net.Listener, error) {
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: p, Net: "unix"})
	if err != nil {
		return nil, err
	}
	l.SetUnlinkOnClose(false)
	return l, nil
}

// flags lets swtpm send TPM2_Startup on the first boot only; later boots
// leave it to New, so that path is tested too.
func flags(boot int) string {
	if boot == 1 {
		return "not-need-init,startup-clear"
	}
	return "not-need-init"
}

// bootTCP starts swtpm's TCP server. Unlike the unix socket, swtpm 0.7.1
// resets connections that reach a TCP listener handed over with fd= before
// its main loop runs, so here swtpm binds a free port itself and the test
// waits (bounded) until a connection is accepted and answered.
func (s *swtpm) bootTCP(t testing.TB, flags string) {
	t.Helper()
	port := freePort(t)
	s.addr = fmt.Sprintf("tcp:127.0.0.1:%d", port)
	s.cmd = exec.Command(swtpmBinary(t), "socket", "--tpm2",
		"--server", fmt.Sprintf("type=tcp,port=%d,bindaddr=127.0.0.1", port),
		"--ctrl", fmt.Sprintf("type=tcp,port=%d,bindaddr=127.0.0.1", freePort(t)),
		"--tpmstate", "dir="+filepath.Join(s.dir, "state"),
		"--flags", flags,
		"--log", "file="+filepath.Join(s.dir, "swtpm.log"))
	// swtpm dies with the test binary even when a timeout skips Cleanup.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("swtpm: start: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", strings.TrimPrefix(s.addr, "tcp:"))
		if err == nil {
			_ = c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("swtpm: TCP port never came up: %v", err)
		}
		time.Sleep(10 * time.Millisecond) // waiting for an external process
	}
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

type filer interface{ File() (*os.File, error) }

func fileOf(l net.Listener) (*os.File, error) {
	return l.(filer).File()
}

// stop ends swtpm with SIGTERM (it keeps its NV state in the directory).
func (s *swtpm) stop(t testing.TB) {
	t.Helper()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(os.Interrupt)
	_ = s.cmd.Wait()
	s.cmd = nil
}

func (s *swtpm) open(t testing.TB) transport.TPMCloser {
	t.Helper()
	tp, err := Open(s.addr)
	if err != nil {
		t.Fatalf("open %s: %v", s.addr, err)
	}
	return tp
}

func (s *swtpm) restart(t testing.TB) {
	t.Helper()
	s.stop(t)
	s.boot(t)
}

func netListen(port int) (net.Listener, error) {
	return net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
}
