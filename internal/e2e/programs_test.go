package e2e

import (
	"github.com/zmonitor/firmware/internal/testkit/harness"

	"bytes"
	"context"
	"fmt"
	"image/png"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zmonitor/firmware/board"
	"github.com/zmonitor/firmware/internal/tablet"
	"github.com/zmonitor/firmware/qemu"
)

// TestProgramsPairTheBoard runs the Central Station and the tablet as the
// real programs, as subprocesses: zm-central init, devices import of the
// enrollment record the device's console prints, serve (tablet API and the
// stand-in monitoring server the guest reaches), and zm-pair scan of a
// screenshot of the device's screen. The device must end PROVISIONED and
// zm-pair must exit 0 saying so.
func TestProgramsPairTheBoard(t *testing.T) {
	e := need(t)
	ctx := ctxT(t, 8*time.Minute)
	bin := t.TempDir()
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/zm-central", "./cmd/zm-pair")
	build.Dir = repoRoot(t)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build zm-central zm-pair: %v\n%s", err, out)
	}
	run := func(name string, args ...string) string {
		t.Helper()
		var stdout, stderr bytes.Buffer
		cmd := exec.CommandContext(ctx, filepath.Join(bin, name), args...)
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("%s %s: %v\nstdout:\n%s\nstderr:\n%s", name, strings.Join(args, " "), err, stdout.String(), stderr.String())
		}
		return stdout.String()
	}

	// The Central Station: CA, provisioning root and signer, a technician.
	central := filepath.Join(t.TempDir(), "central")
	initOut := strings.Fields(run("zm-central", "init", "--dir", central, "--technician", "biomed-tech"))
	if len(initOut) == 0 {
		t.Fatal("zm-central init printed no technician token")
	}
	tokenFile := filepath.Join(t.TempDir(), "technician.token")
	if err := os.WriteFile(tokenFile, []byte(initOut[len(initOut)-1]+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	anchor, err := os.ReadFile(filepath.Join(central, "provisioning-root.pem"))
	if err != nil {
		t.Fatal(err)
	}
	ports := make([]int, 3)
	for i := range ports {
		if ports[i], err = freeTCPPort(); err != nil {
			t.Fatal(err)
		}
	}
	devPort, monPort, apiPort := ports[0], ports[1], ports[2]
	const deviceID = "ZM-QEMU-01"

	serveLog, err := os.Create(filepath.Join(t.TempDir(), "zm-central.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer serveLog.Close()
	logTail := func() string {
		b, _ := os.ReadFile(serveLog.Name())
		if len(b) > harness.ConsoleTail {
			b = b[len(b)-harness.ConsoleTail:]
		}
		return string(b)
	}
	serve := exec.Command(filepath.Join(bin, "zm-central"), "serve", "--dir", central,
		"--listen", "127.0.0.1:"+strconv.Itoa(apiPort),
		"--monitor-listen", "127.0.0.1:"+strconv.Itoa(monPort),
		"--server-url", "https://"+net.JoinHostPort(qemu.GuestFwdAddr, strconv.Itoa(harness.MonitorGuestPort)),
		"--device-addr", deviceID+"=127.0.0.1:"+strconv.Itoa(devPort))
	serve.Stdout, serve.Stderr = serveLog, serveLog
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- serve.Wait() }()
	t.Cleanup(func() {
		_ = serve.Process.Signal(os.Interrupt)
		select {
		case <-served:
		case <-time.After(10 * time.Second):
			_ = serve.Process.Kill()
			<-served
		}
	})
	if err := waitListening(ctx, apiPort, served, 30*time.Second); err != nil {
		t.Fatalf("zm-central serve: %v\n%s", err, logTail())
	}

	// The image trusts this Central Station's provisioning root.
	initrd := filepath.Join(t.TempDir(), "initramfs.cpio.gz")
	if err := harness.BuildInitramfs(e.firmware, board.QEMUVirt(), anchor, initrd); err != nil {
		t.Fatal(err)
	}
	bctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	b, err := qemu.Start(bctx, qemu.Config{Kernel: e.kernel, Initrd: initrd, StateDir: t.TempDir(),
		HostFwd:  []qemu.HostFwd{{GuestPort: harness.ProvisioningPort, HostPort: devPort}},
		GuestFwd: []qemu.GuestFwd{{GuestPort: harness.MonitorGuestPort, HostPort: monPort}},
		Append:   "zmonitor.device_id=" + deviceID + " zmonitor.serial=SN-2026-000001"})
	if err != nil {
		t.Fatalf("start board: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	d := &harness.Device{Board: b}
	if err := d.WaitConsole(bctx); err != nil {
		t.Fatal(err)
	}
	if err := d.WaitStateFor(ctx, "UNPROVISIONED", 2*time.Minute); err != nil {
		t.Fatal(err)
	}

	// The manufacturing step: the console's enrollment record into the
	// inventory.
	enr, err := d.Command(ctx, "enroll")
	if err != nil {
		t.Fatal(err)
	}
	i, j := strings.Index(enr, "{"), strings.LastIndex(enr, "}")
	if i < 0 || j < i {
		t.Fatalf("enroll answered %q", enr)
	}
	enrFile := filepath.Join(t.TempDir(), "enrollment.json")
	if err := os.WriteFile(enrFile, []byte(enr[i:j+1]), 0o600); err != nil {
		t.Fatal(err)
	}
	run("zm-central", "devices", "import", "--dir", central, enrFile)

	// The technician presses the button and photographs the screen.
	if err := d.PressFor(ctx, "READY_TO_PAIR"); err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(t.TempDir(), "screen.png")
	for deadline := time.Now().Add(time.Minute); ; {
		img, err := d.Screenshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tablet.ScanImage(img); err == nil {
			var buf bytes.Buffer
			if err := png.Encode(&buf, img); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(shot, buf.Bytes(), 0o600); err != nil {
				t.Fatal(err)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal(d.Failure("no readable QR on the screen within a minute of READY_TO_PAIR"))
		}
		time.Sleep(100 * time.Millisecond)
	}

	// zm-pair scans the picture and pairs through the Central Station.
	pctx, pcancel := context.WithTimeout(ctx, 3*time.Minute)
	defer pcancel()
	var pout, perr bytes.Buffer
	pair := exec.CommandContext(pctx, filepath.Join(bin, "zm-pair"), "scan",
		"--central", "https://127.0.0.1:"+strconv.Itoa(apiPort),
		"--ca", filepath.Join(central, "device-ca.pem"), "--token-file", tokenFile, "--label", "ICU-MON-04", shot)
	pair.Stdout, pair.Stderr = &pout, &perr
	err = pair.Run()
	if err != nil || pair.ProcessState.ExitCode() != 0 {
		t.Fatalf("zm-pair scan: %v (exit %d)\nstdout:\n%s\nstderr:\n%s\n%v\nzm-central:\n%s", err, pair.ProcessState.ExitCode(),
			pout.String(), perr.String(), d.Failure("pairing"), logTail())
	}
	if !strings.Contains(pout.String(), "Scanned") || !strings.Contains(pout.String(), "PROVISIONED: "+deviceID+" is ready (label ICU-MON-04)") {
		t.Errorf("zm-pair scan output:\n%s", pout.String())
	}
	if err := d.WaitStateFor(ctx, "PROVISIONED", 30*time.Second); err != nil {
		t.Fatal(err)
	}
	cfg, err := d.Command(ctx, "config")
	if err != nil || !strings.Contains(cfg, "ICU-MON-04") {
		t.Errorf("device config after zm-pair: %q %v", cfg, err)
	}
	t.Logf("zm-pair scan:\n%s", pout.String())
}

func freeTCPPort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitListening waits until 127.0.0.1:port accepts a connection, the
// process ends (exited) or limit passes.
func waitListening(ctx context.Context, port int, exited <-chan error, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	for {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case err := <-exited:
			return fmt.Errorf("exited before listening on %d: %v", port, err)
		case <-ctx.Done():
			return fmt.Errorf("not listening on %d within %v: %w", port, limit, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}
