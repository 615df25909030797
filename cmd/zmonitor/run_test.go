//go:build !zmfirmware

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/zmonitor/firmware/board"
	"github.com/zmonitor/firmware/internal/fw/boot"
	"github.com/zmonitor/firmware/internal/fw/engine"
	"github.com/zmonitor/firmware/internal/proto/pairing"
	"github.com/zmonitor/firmware/internal/testkit/testpki"
)

// waitingStdin is a terminal nobody types on: Read waits until the test
// ends. called is closed at the first Read.
type waitingStdin struct {
	once    sync.Once
	called  chan struct{}
	release chan struct{}
}

func (s *waitingStdin) Read([]byte) (int, error) {
	s.once.Do(func() { close(s.called) })
	<-s.release
	return 0, io.EOF
}

// lockedBuffer is a bytes.Buffer for several goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// `zmonitor run` stops on SIGTERM (and Ctrl-C's SIGINT, the same path)
// while its console waits for a line on stdin, and exits 0 (issue 14, item
// 17: the read held it forever).
func TestRunStopsOnSIGTERMWhileTheConsoleWaitsForInput(t *testing.T) {
	root, err := testpki.NewCA("provisioning root", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	anchor := filepath.Join(t.TempDir(), "root.pem")
	if err := os.WriteFile(anchor, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: root.Cert.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	stdin := &waitingStdin{called: make(chan struct{}), release: make(chan struct{})}
	t.Cleanup(func() { close(stdin.release) })
	var stderr lockedBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(context.Background(), []string{"run", "-data", t.TempDir(), "-tpm", "soft", "-anchor", anchor,
			"-listen", "127.0.0.1:0", "-address", "127.0.0.1"}, stdin, io.Discard, &stderr)
	}()
	select {
	case <-stdin.called: // the console is reading: the device runs, its signal handler is set
	case code := <-done:
		t.Fatalf("run ended with %d before its console read stdin:\n%s", code, stderr.String())
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// Not a timing assertion: a bound so that the old behaviour fails
	// the test instead of hanging it.
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("run exited %d after SIGTERM:\n%s", code, stderr.String())
		}
	case <-time.After(time.Minute):
		t.Fatalf("run did not stop on SIGTERM while its console waited for input:\n%s", stderr.String())
	}
}

func TestCtxReaderHandsOnWhatItReadAndStopsWithItsContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	r := newCtxReader(ctx, strings.NewReader("status\r"))
	b := make([]byte, 4)
	var got []byte
	for len(got) < len("status\r") {
		n, err := r.Read(b)
		if err != nil {
			t.Fatalf("read after %q: %v", got, err)
		}
		got = append(got, b[:n]...)
	}
	if string(got) != "status\r" {
		t.Errorf("read %q", got)
	}
	cancel()
	if n, err := r.Read(b); n != 0 || err != context.Canceled {
		t.Errorf("read after cancel = %d, %v", n, err)
	}
}

func TestHostEndpointAgreesWithTheQR(t *testing.T) {
	local := func() string { return "192.0.2.7" }
	for _, c := range []struct {
		listen, address    string
		wantListen, wantQR string
		wantErr            string
	}{
		// The README's command: no -listen, no -address.
		{"", "", "192.0.2.7:8444", "192.0.2.7", ""},
		{":0", "", "192.0.2.7:0", "192.0.2.7", ""},
		{"", "10.1.2.3", "10.1.2.3:8444", "10.1.2.3", ""},
		{"127.0.0.1:9000", "", "127.0.0.1:9000", "127.0.0.1", ""},
		{"127.0.0.1:9000", "127.0.0.1", "127.0.0.1:9000", "127.0.0.1", ""},
		{"0.0.0.0:8444", "", "0.0.0.0:8444", "192.0.2.7", ""},
		{"[::]:8444", "10.1.2.3", "[::]:8444", "10.1.2.3", ""},
		{"[2001:db8::1]:", "", "[2001:db8::1]:8444", "2001:db8::1", ""},
		// The old default with a machine that has a network: refused.
		{"127.0.0.1:8444", "192.0.2.7", "", "", "the QR would send the Central Station where nothing listens"},
		{"localhost:8444", "", "", "", "HOST must be an IP address"},
		{"8444", "", "", "", "want HOST:PORT"},
		{"", "0.0.0.0", "", "", "-address"},
		{"", "monitor.local", "", "", "-address"},
	} {
		l, q, err := hostEndpoint(c.listen, c.address, 8444, local)
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("hostEndpoint(%q, %q) = %q, %q, %v; want an error saying %q", c.listen, c.address, l, q, err, c.wantErr)
			}
			continue
		}
		if err != nil || l != c.wantListen || q != c.wantQR {
			t.Errorf("hostEndpoint(%q, %q) = %q, %q, %v; want %q, %q", c.listen, c.address, l, q, err, c.wantListen, c.wantQR)
		}
	}
}

// `zmonitor run` with the README's flags (only the board's provisioning
// port moved to a free one): a press opens the endpoint where the QR
// points, so a Central Station on the network reaches it. Before, the QR
// showed this host's network address while the endpoint listened on
// 127.0.0.1 (issue 14, item 16).
func TestHostModeQRPointsWhereTheEndpointListens(t *testing.T) {
	anchor := filepath.Join(t.TempDir(), "root.pem")
	root, err := testpki.NewCA("provisioning root", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(anchor, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: root.Cert.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	profile := board.QEMUVirt()
	profile.ProvisioningPort = freePort(t)
	pj, err := json.Marshal(profile)
	if err != nil {
		t.Fatal(err)
	}
	profileFile := filepath.Join(t.TempDir(), "board.json")
	if err := os.WriteFile(profileFile, pj, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c, err := hostConfig(ctx, cancel, []string{"-data", t.TempDir(), "-tpm", "soft", "-anchor", anchor, "-board", profileFile, "-no-console"},
		nil, io.Discard, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan *engine.Engine, 1)
	c.Started = func(e *engine.Engine) { started <- e }
	done := make(chan error, 1)
	go func() { done <- boot.Run(ctx, c) }()
	var eng *engine.Engine
	select {
	case eng = <-started:
	case err := <-done:
		t.Fatalf("run stopped: %v", err)
	}
	if err := eng.Press(); err != nil {
		t.Fatal(err)
	}
	q, err := pairing.ParseQR(eng.QRText())
	if err != nil {
		t.Fatal(err)
	}
	if a := netip.MustParseAddr(q.IPAddress); a.IsLoopback() {
		t.Logf("this host has no non-loopback IPv4 address: the QR shows %s", a)
	}
	_, port, err := net.SplitHostPort(eng.EndpointAddr())
	if err != nil {
		t.Fatal(err)
	}
	if port != strconv.Itoa(profile.ProvisioningPort) {
		t.Errorf("endpoint on %s, not on the board's provisioning port %d", eng.EndpointAddr(), profile.ProvisioningPort)
	}
	conn, err := net.Dial("tcp", net.JoinHostPort(q.IPAddress, port))
	if err != nil {
		t.Fatalf("the QR shows %s, but its provisioning port there does not answer (endpoint on %s): %v", q.IPAddress, eng.EndpointAddr(), err)
	}
	conn.Close()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// freePort returns a TCP port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
