package e2e

import (
	"bytes"
	"github.com/zmonitor/firmware/internal/testkit/harness"

	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"image/png"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zmonitor/firmware/board"
	"github.com/zmonitor/firmware/image/kernel"
	"github.com/zmonitor/firmware/internal/central/job"
	"github.com/zmonitor/firmware/internal/proto/auditcheckpoint"
	"github.com/zmonitor/firmware/internal/proto/auditlog"
	"github.com/zmonitor/firmware/internal/proto/failure"
	"github.com/zmonitor/firmware/internal/proto/pairing"
	"github.com/zmonitor/firmware/qemu"
)

var keepShots = flag.String("shots", "", "save the screenshots of each stage into this directory")

// env is what every test here shares: one firmware build, one kernel.
type env struct {
	kernel   string
	firmware string
	err      error
}

var (
	shared     env
	sharedOnce sync.Once
)

func repoRoot(t testing.TB) string {
	root, err := kernel.FindRepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// need skips without QEMU's tools or the kernel and builds the firmware
// once.
func need(t *testing.T) env {
	t.Helper()
	if testing.Short() {
		t.Skip("boots the firmware image under QEMU; skipped with -short")
	}
	for _, tool := range []string{"qemu-system-aarch64", "swtpm", "mkfs.ext4", "socat"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not found: run scripts/install-deps.sh", tool)
		}
	}
	sharedOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		shared.kernel, shared.err = harness.Kernel(ctx, false)
		if shared.err != nil {
			return
		}
		dir, err := os.MkdirTemp("", "zm-e2e-fw-")
		if err != nil {
			shared.err = err
			return
		}
		// A build time of yesterday: the board's RTC (the host clock) is
		// above it, so the device's wall clock is trusted.
		shared.firmware, shared.err = harness.BuildFirmware(ctx, repoRoot(t), dir, time.Now().Add(-24*time.Hour))
	})
	if errors.Is(shared.err, kernel.ErrNotBuilt) {
		t.Skipf("%v (make kernel)", shared.err)
	}
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return shared
}

// boot builds an initramfs with c's anchor and the profile and boots it.
func boot(t *testing.T, e env, c *harness.Central, profile board.Profile, stateDir string) *harness.Device {
	t.Helper()
	initrd := filepath.Join(t.TempDir(), "initramfs.cpio.gz")
	if err := harness.BuildInitramfs(e.firmware, profile, c.AnchorPEM(), initrd); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b, err := qemu.Start(ctx, qemu.Config{
		Kernel: e.kernel, Initrd: initrd, StateDir: stateDir,
		HostFwd:  []qemu.HostFwd{{GuestPort: harness.ProvisioningPort}},
		GuestFwd: []qemu.GuestFwd{{GuestPort: harness.MonitorGuestPort, HostPort: c.MonitorPort()}},
		Append:   "zmonitor.device_id=ZM-QEMU-01 zmonitor.serial=SN-2026-000001",
	})
	if err != nil {
		t.Fatalf("start board: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	d := &harness.Device{Board: b}
	if err := d.WaitConsole(ctx); err != nil {
		t.Fatal(err)
	}
	return d
}

// newCentral starts a Central Station side for t, closed when t ends
// (after the board, which boot's cleanup closes first).
func newCentral(t *testing.T) *harness.Central {
	t.Helper()
	c, err := harness.NewCentral(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func save(t *testing.T, d *harness.Device, name string) {
	if *keepShots == "" {
		return
	}
	img, err := d.Screenshot(context.Background())
	if err != nil {
		t.Logf("screenshot %s: %v", name, err)
		return
	}
	os.MkdirAll(*keepShots, 0o755)
	f, err := os.Create(filepath.Join(*keepShots, name+".png"))
	if err == nil {
		png.Encode(f, img)
		f.Close()
	}
}

// TestBootPressScanPair is the technician's whole job on the real image:
// boot, read the console, press the button, scan the QR off the screen,
// pair through the Central Station side, and check that the device is
// provisioned and stays so across a reboot and a power cut.
func TestBootPressScanPair(t *testing.T) {
	e := need(t)
	c := newCentral(t)
	d := boot(t, e, c, board.QEMUVirt(), t.TempDir())
	ctx := ctxT(t, 3*time.Minute)

	if err := d.WaitState(ctx, "UNPROVISIONED"); err != nil {
		t.Fatalf("%v\nconsole:\n%s", err, d.ConsoleText())
	}
	enr, err := d.Enroll(ctx)
	if err != nil {
		t.Fatal(err)
	}
	identity, _, err := enr.Keys()
	if err != nil || enr.DeviceID != "ZM-QEMU-01" || enr.DeviceSerial != "SN-2026-000001" {
		t.Fatalf("enrollment %+v: %v", enr, err)
	}
	save(t, d, "1-unprovisioned")

	if err := d.Press(ctx); err != nil {
		t.Fatal(err)
	}
	q, _, err := d.ScanQR(ctx, "")
	if err != nil {
		t.Fatalf("scan: %v\nconsole:\n%s", err, d.ConsoleText())
	}
	save(t, d, "2-ready-to-pair")
	if _, err := pairing.VerifyToken(identity, q); err != nil {
		t.Fatalf("QR token does not verify with the enrolled identity key: %v", err)
	}
	if q.DeviceID != "ZM-QEMU-01" || q.IPAddress != qemu.GuestAddr {
		t.Errorf("QR = %+v; want device ZM-QEMU-01 at %s (DHCP)", q, qemu.GuestAddr)
	}
	if s, _ := d.State(ctx); s != "READY_TO_PAIR" {
		t.Errorf("console says %s after the press", s)
	}

	p, err := c.Pusher(nil)
	if err != nil {
		t.Fatal(err)
	}
	var states []string
	out, err := p.Provision(ctx, d.Job(q, identity), func(pr job.Progress) {
		if pr.State != "" && (len(states) == 0 || states[len(states)-1] != pr.State) {
			states = append(states, pr.State)
		}
	})
	if err != nil || out.State != "PROVISIONED" {
		t.Fatalf("pair: %+v, %v\nconsole:\n%s", out, err, d.ConsoleText())
	}
	t.Logf("pairing states: %s", strings.Join(states, " → "))
	if err := d.WaitState(ctx, "PROVISIONED"); err != nil {
		t.Fatal(err)
	}
	save(t, d, "3-provisioned")
	if _, err := d.Screenshot(ctx); err != nil {
		t.Fatal(err)
	}
	// The provisioning port is closed: nothing answers TLS behind the
	// forward any more.
	if conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 3 * time.Second}, "tcp", d.GuestPort(harness.ProvisioningPort), &tls.Config{InsecureSkipVerify: true}); err == nil {
		conn.Close()
		t.Error("provisioning port still answers TLS in PROVISIONED")
	}
	auditOut, err := d.Command(ctx, "audit 100")
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range []string{"BUTTON_PRESSED", "HELLO", "CONFIG_VERIFIED", "PROVISIONED", "PORT_CLOSED"} {
		if !strings.Contains(auditOut, ev) {
			t.Errorf("audit trail lacks %s", ev)
		}
	}
	if strings.Contains(auditOut, q.PairingCode) || strings.Contains(auditOut, q.PairingToken) {
		t.Error("audit trail shows the pairing code or token")
	}

	// A reboot keeps the identity and the provisioning.
	if err := d.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := d.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if err := d.WaitState(ctx, "PROVISIONED"); err != nil {
		t.Fatalf("after reboot: %v", err)
	}
	enr2, err := d.Enroll(ctx)
	if err != nil || enr2 != enr {
		t.Fatalf("enrollment after reboot %+v, %v; want %+v", enr2, err, enr)
	}
	// And so does a power cut.
	if err := d.PowerCut(); err != nil {
		t.Fatal(err)
	}
	if err := d.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if err := d.WaitState(ctx, "PROVISIONED"); err != nil {
		t.Fatalf("after power cut: %v", err)
	}
	if enr3, err := d.Enroll(ctx); err != nil || enr3 != enr {
		t.Fatalf("enrollment after power cut %+v, %v", enr3, err)
	}
	// The audit log is anchored in the board's TPM (swtpm): across the
	// reboot and the power cut nothing is taken for tampering, and the
	// checkpoint it signed with the identity key verifies with the key of
	// the enrollment record, as the Central Station would check it.
	checkAuditAnchored(ctx, t, d, identity)
}

// checkAuditAnchored asks the console's status until it shows the signed
// checkpoint the log writes at every boot (the TPM signs it in the
// background), and checks the anchor and the checkpoint.
func checkAuditAnchored(ctx context.Context, t *testing.T, d *harness.Device, identity *ecdsa.PublicKey) {
	t.Helper()
	for ctx.Err() == nil {
		st, err := d.Command(ctx, "status")
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(st, "TAMPERED") || !strings.Contains(st, "TPM anchor at record") {
			t.Fatalf("status after reboot and power cut:\n%s", st)
		}
		_, js, ok := strings.Cut(st, "audit log: checkpoint ")
		if !ok {
			continue // not signed yet
		}
		js, _, _ = strings.Cut(js, "\n")
		cp, err := auditcheckpoint.Parse([]byte(strings.TrimSpace(js)))
		if err != nil {
			t.Fatalf("checkpoint %q: %v", js, err)
		}
		if err := cp.Verify(identity); err != nil || cp.DeviceID != "ZM-QEMU-01" {
			t.Fatalf("checkpoint %+v does not verify with the enrolled identity key: %v", cp, err)
		}
		// The whole log, exported on the console, verifies as the
		// Central Station checks it (zm-central devices verify-audit):
		// every record, the chain across the boots and every checkpoint
		// with the enrolled identity key.
		out, err := d.Command(ctx, "audit export")
		if err != nil {
			t.Fatal(err)
		}
		recs, err := auditlog.FromCapture([]byte(out))
		if err != nil {
			t.Fatalf("audit export: %v\n%s", err, out)
		}
		sum, err := auditlog.VerifyExport(bytes.NewReader(recs), identity, "ZM-QEMU-01")
		if err != nil || sum.Checkpoints == 0 || sum.Records < 5 {
			t.Fatalf("the exported log does not verify with the enrolled identity key: %+v, %v", sum, err)
		}
		return
	}
	t.Fatalf("no signed audit checkpoint on the console: %v", ctx.Err())
}

// TestRotationExpiryAndFailure uses a test profile with short timings: the
// QR rotates, an old token is refused, a wrong code fails with the spec's
// text, and the session expires back to UNPROVISIONED.
func TestRotationExpiryAndFailure(t *testing.T) {
	e := need(t)
	c := newCentral(t)
	prof := board.QEMUVirt()
	prof.Pairing.TokenRotation = board.Duration(4 * time.Second)
	prof.Pairing.SessionLifetime = board.Duration(40 * time.Second)
	d := boot(t, e, c, prof, t.TempDir())
	ctx := ctxT(t, 3*time.Minute)
	if err := d.WaitState(ctx, "UNPROVISIONED"); err != nil {
		t.Fatal(err)
	}
	enr, err := d.Enroll(ctx)
	if err != nil {
		t.Fatal(err)
	}
	identity, _, _ := enr.Keys()
	if err := d.Press(ctx); err != nil {
		t.Fatal(err)
	}
	q1, _, err := d.ScanQR(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	q2, _, err := d.ScanQR(ctx, string(q1.Marshal()))
	if err != nil {
		t.Fatal(err)
	}
	if q2.PairingToken == q1.PairingToken || q2.PairingCode != q1.PairingCode {
		t.Fatalf("rotation changed code or kept the token: %v", q2)
	}
	// Two rotations after q1, q1's token is refused.
	if _, _, err := d.ScanQR(ctx, string(q2.Marshal())); err != nil {
		t.Fatal(err)
	}
	p, _ := c.Pusher(nil)
	_, err = p.Provision(ctx, d.Job(q1, identity), nil)
	if failure.CodeOf(err) != failure.TokenInvalid {
		t.Fatalf("old token: %v", err)
	}

	// A wrong pairing code (typed on the tablet: no token) fails with the
	// spec's text on the screen.
	wrong := d.Job(q1, identity)
	wrong.Token = ""
	wrong.PairingCode = "AAA-000-AAA"
	out, err := p.Provision(ctx, wrong, nil)
	if err != nil || out.Code != failure.PairingCodeMismatch {
		t.Fatalf("wrong code: %+v, %v", out, err)
	}
	st, _ := d.Command(ctx, "status")
	if !strings.Contains(st, "PROVISIONING_FAILED") || !strings.Contains(st, "Re-scan QR code") {
		t.Errorf("status after a wrong code: %q", st)
	}
	save(t, d, "4-failed")
	// Retry (one press on the failure screen gives a new QR), then let
	// the session run out.
	if err := d.PressFor(ctx, "READY_TO_PAIR"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := d.WaitState(ctx, "UNPROVISIONED"); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el > 45*time.Second {
		t.Errorf("session took %v to expire, lifetime 40s", el)
	}
	fmt.Fprintln(os.Stderr)
}
