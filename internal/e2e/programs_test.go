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

// programs is the Central Station and the tablet as the real programs
// (zm-central, zm-pair as subprocesses) and a board booted with the
// Central Station's provisioning root.
type programs struct {
	t         *testing.T
	ctx       context.Context
	bin       string // zm-central and zm-pair
	central   string // zm-central's directory
	tokenFile string
	// Host ports: the device's provisioning port, the monitoring server,
	// the tablet API, the EST server.
	devPort, monPort, apiPort, estPort int
	serveLog                           string
	stopServe                          func()
	board                              *harness.Device
	// moreGuestFwd are guest ports boot forwards besides the monitoring
	// and EST servers' (another server URL for a re-provisioning).
	moreGuestFwd []qemu.GuestFwd
	// measured: the board attests its firmware (qemu-virt-secure), so
	// serve runs without the development flag.
	measured bool
}

const programsDeviceID = "ZM-QEMU-01"

// newPrograms builds the programs and runs zm-central init.
func newPrograms(t *testing.T, ctx context.Context) *programs {
	need(t) // skips without QEMU before anything is built
	p := &programs{t: t, ctx: ctx, bin: t.TempDir(), central: filepath.Join(t.TempDir(), "central"),
		serveLog: filepath.Join(t.TempDir(), "zm-central.log")}
	build := exec.CommandContext(ctx, "go", "build", "-o", p.bin, "./cmd/zm-central", "./cmd/zm-pair")
	build.Dir = repoRoot(t)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build zm-central zm-pair: %v\n%s", err, out)
	}
	// The Central Station: CA, provisioning root and signer, a technician.
	initOut := strings.Fields(p.run("zm-central", "init", "--dir", p.central, "--technician", "biomed-tech"))
	if len(initOut) == 0 {
		t.Fatal("zm-central init printed no technician token")
	}
	p.tokenFile = filepath.Join(t.TempDir(), "technician.token")
	if err := os.WriteFile(p.tokenFile, []byte(initOut[len(initOut)-1]+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, port := range []*int{&p.devPort, &p.monPort, &p.apiPort, &p.estPort} {
		var err error
		if *port, err = freeTCPPort(); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

// run runs one of the programs to its end and returns its standard output.
func (p *programs) run(name string, args ...string) string {
	p.t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(p.ctx, filepath.Join(p.bin, name), args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		p.t.Fatalf("%s %s: %v\nstdout:\n%s\nstderr:\n%s", name, strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// logText is zm-central serve's log so far (every run of it).
func (p *programs) logText() string {
	b, _ := os.ReadFile(p.serveLog)
	return string(b)
}

func (p *programs) logTail() string { return harness.Tail(p.logText(), harness.ConsoleTail) }

// guestURL is a host port as the guest reaches it (QEMU's guestfwd).
func guestURL(guestPort int) string {
	return "https://" + net.JoinHostPort(qemu.GuestFwdAddr, strconv.Itoa(guestPort))
}

// serve runs zm-central serve (tablet API, monitoring server, and with
// est the EST server) with extra arguments until stop or the test's end.
func (p *programs) serve(est bool, extra ...string) {
	t := p.t
	args := []string{"serve", "--dir", p.central,
		"--listen", "127.0.0.1:" + strconv.Itoa(p.apiPort),
		"--monitor-listen", "127.0.0.1:" + strconv.Itoa(p.monPort),
		"--server-url", guestURL(harness.MonitorGuestPort),
		"--device-addr", p.deviceID() + "=127.0.0.1:" + strconv.Itoa(p.devPort)}
	if !p.measured {
		// qemu-virt boots its kernel directly: nothing measured, nothing to attest.
		args = append(args, "--allow-unmeasured-dev-firmware")
	}
	if est {
		args = append(args, "--est-listen", "127.0.0.1:"+strconv.Itoa(p.estPort),
			"--est-url", guestURL(harness.ESTGuestPort)+"/.well-known/est")
	}
	logf, err := os.OpenFile(p.serveLog, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	serve := exec.Command(filepath.Join(p.bin, "zm-central"), append(args, extra...)...)
	serve.Stdout, serve.Stderr = logf, logf
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- serve.Wait(); logf.Close() }()
	stopped := false
	p.stopServe = func() {
		if stopped {
			return
		}
		stopped = true
		_ = serve.Process.Signal(os.Interrupt)
		select {
		case <-served:
		case <-time.After(10 * time.Second):
			_ = serve.Process.Kill()
			<-served
		}
	}
	t.Cleanup(p.stopServe)
	for _, port := range []int{p.apiPort, p.monPort} {
		if err := waitListening(p.ctx, port, served, 30*time.Second); err != nil {
			t.Fatalf("zm-central serve: %v\n%s", err, p.logTail())
		}
	}
}

// deviceID is the board's device ID: the secure board's signed command
// line names one (harness.SecureCmdline).
func (p *programs) deviceID() string {
	if p.measured {
		return harness.SecureDeviceID
	}
	return programsDeviceID
}

// boot boots the board with the Central Station's provisioning root, its
// monitoring and EST servers reachable from the guest.
func (p *programs) boot() *harness.Device {
	t := p.t
	anchor, err := os.ReadFile(filepath.Join(p.central, "provisioning-root.pem"))
	if err != nil {
		t.Fatal(err)
	}
	e := need(t)
	initrd := filepath.Join(t.TempDir(), "initramfs.cpio.gz")
	if err := harness.BuildInitramfs(e.firmware, board.QEMUVirt(), anchor, initrd); err != nil {
		t.Fatal(err)
	}
	bctx, cancel := context.WithTimeout(p.ctx, 2*time.Minute)
	defer cancel()
	b, err := qemu.Start(bctx, qemu.Config{Kernel: e.kernel, Initrd: initrd, StateDir: t.TempDir(),
		HostFwd: []qemu.HostFwd{{GuestPort: harness.ProvisioningPort, HostPort: p.devPort}},
		GuestFwd: append([]qemu.GuestFwd{{GuestPort: harness.MonitorGuestPort, HostPort: p.monPort},
			{GuestPort: harness.ESTGuestPort, HostPort: p.estPort}}, p.moreGuestFwd...),
		Append: "zmonitor.device_id=" + programsDeviceID + " zmonitor.serial=SN-2026-000001"})
	if err != nil {
		t.Fatalf("start board: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	d := &harness.Device{Board: b}
	if err := d.WaitConsole(bctx); err != nil {
		t.Fatal(err)
	}
	p.board = d
	return d
}

// pair is the technician's job with the programs: the console's
// enrollment record into the inventory, the button, a photograph of the
// screen, zm-pair scan. It returns zm-pair's output; the device is then
// PROVISIONED.
func (p *programs) pair(label string) string {
	t, ctx, d := p.t, p.ctx, p.board
	if err := d.WaitStateFor(ctx, "UNPROVISIONED", 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	p.importEnrollment()
	// The technician presses the button and photographs the screen.
	if err := d.PressFor(ctx, "READY_TO_PAIR"); err != nil {
		t.Fatal(err)
	}
	shot, _ := p.photograph(nil)
	out, errOut, err := p.zmPairScan(label, shot)
	if err != nil {
		t.Fatalf("zm-pair scan: %v\nstdout:\n%s\nstderr:\n%s\n%v\nzm-central:\n%s", err, out, errOut, d.Failure("pairing"), p.logTail())
	}
	if err := d.WaitStateFor(ctx, "PROVISIONED", 30*time.Second); err != nil {
		t.Fatal(err)
	}
	return out
}

// importEnrollment puts the enrollment record the device's console prints
// into the Central Station's inventory.
func (p *programs) importEnrollment() {
	t, ctx, d := p.t, p.ctx, p.board
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
	p.run("zm-central", "devices", "import", "--dir", p.central, enrFile)
}

// photograph waits for a readable QR on the device's screen other than
// not (nil: any) and returns the PNG file of the screenshot and the QR.
func (p *programs) photograph(not []byte) (string, []byte) {
	t, ctx, d := p.t, p.ctx, p.board
	shot := filepath.Join(t.TempDir(), "screen.png")
	for deadline := time.Now().Add(time.Minute); ; {
		img, err := d.Screenshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if text, err := tablet.ScanImage(img); err == nil && !bytes.Equal(text, not) {
			var buf bytes.Buffer
			if err := png.Encode(&buf, img); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(shot, buf.Bytes(), 0o600); err != nil {
				t.Fatal(err)
			}
			return shot, text
		}
		if time.Now().After(deadline) {
			t.Fatal(d.Failure("no readable QR on the screen within a minute of READY_TO_PAIR"))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// zmPairScan runs zm-pair scan on the screenshot shot: it pairs through
// the Central Station. err is set when zm-pair did not exit 0.
func (p *programs) zmPairScan(label, shot string) (stdout, stderr string, err error) {
	pctx, pcancel := context.WithTimeout(p.ctx, 3*time.Minute)
	defer pcancel()
	var pout, perr bytes.Buffer
	pair := exec.CommandContext(pctx, filepath.Join(p.bin, "zm-pair"), "scan",
		"--central", "https://127.0.0.1:"+strconv.Itoa(p.apiPort),
		"--ca", filepath.Join(p.central, "device-ca.pem"), "--token-file", p.tokenFile, "--label", label, shot)
	pair.Stdout, pair.Stderr = &pout, &perr
	err = pair.Run()
	return pout.String(), perr.String(), err
}

// TestProgramsPairTheBoard runs the Central Station and the tablet as the
// real programs, as subprocesses: zm-central init, devices import of the
// enrollment record the device's console prints, serve (tablet API and the
// stand-in monitoring server the guest reaches), and zm-pair scan of a
// screenshot of the device's screen. The device must end PROVISIONED and
// zm-pair must exit 0 saying so.
func TestProgramsPairTheBoard(t *testing.T) {
	ctx := ctxT(t, 8*time.Minute)
	p := newPrograms(t, ctx)
	p.serve(false)
	d := p.boot()
	out := p.pair("ICU-MON-04")
	if !strings.Contains(out, "Scanned") || !strings.Contains(out, "PROVISIONED: "+programsDeviceID+" is ready (label ICU-MON-04)") {
		t.Errorf("zm-pair scan output:\n%s", out)
	}
	cfg, err := d.Command(ctx, "config")
	if err != nil || !strings.Contains(cfg, "ICU-MON-04") {
		t.Errorf("device config after zm-pair: %q %v", cfg, err)
	}
	t.Logf("zm-pair scan:\n%s", out)
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
