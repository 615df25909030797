package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zmonitor/firmware/board"
	"github.com/zmonitor/firmware/internal/testkit/flood"
	"github.com/zmonitor/firmware/internal/testkit/harness"
	"github.com/zmonitor/firmware/qemu"
)

// floodWorkers is how many connections the flood keeps going at once: the
// board sees them all from QEMU's user-mode gateway, one address, and the
// Central Station shares it; below the device's 8 per address, its
// connections still get in.
const floodWorkers = 6

// waitFor polls cond until it holds or limit passes.
func waitFor(ctx context.Context, limit time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// auditBytes reads the audit log off the board's data disk (the board
// stopped) and returns the bytes of the records with from < seq <= to. The
// records the device fsynced may still be in the ext4 journal only: a copy
// of the disk gets the journal replayed (e2fsck) before debugfs reads it.
func auditBytes(stateDir string, from, to int) (int, error) {
	img := filepath.Join(stateDir, "data-copy.img")
	if out, err := exec.Command("cp", "--sparse=always", filepath.Join(stateDir, "data.img"), img).CombinedOutput(); err != nil {
		return 0, fmt.Errorf("copy the data disk: %w: %s", err, out)
	}
	defer os.Remove(img)
	// Exit status 1: errors corrected (the journal replayed).
	if out, err := exec.Command("e2fsck", "-fy", img).CombinedOutput(); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() > 1 {
			return 0, fmt.Errorf("e2fsck: %w: %s", err, out)
		}
	}
	out, err := exec.Command("debugfs", "-R", "cat /security_audit_log.jsonl", img).Output()
	if err != nil {
		return 0, fmt.Errorf("debugfs: %w", err)
	}
	n := 0
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 64<<10), 64<<10)
	for sc.Scan() {
		var r struct {
			Seq int `json:"seq"`
		}
		if json.Unmarshal(sc.Bytes(), &r) == nil && r.Seq > from && r.Seq <= to {
			n += len(sc.Bytes()) + 1
		}
	}
	return n, sc.Err()
}

// TestFloodOnTheBoard floods the real image's provisioning port with TLS
// connections carrying self-signed client certificates through a whole
// pairing session: a Central Station pairs the device in the middle of
// 2,000 of them, the port closes under the flood, a second session expires
// under it, and after each the button and the console answer. The audit log
// grows by a bounded number of records.
func TestFloodOnTheBoard(t *testing.T) {
	const total = 2000
	e := need(t)
	c := newCentral(t)
	prof := board.QEMUVirt()
	prof.Pairing.SessionLifetime = board.Duration(60 * time.Second)
	stateDir := t.TempDir()
	d := boot(t, e, c, prof, stateDir)
	ctx := ctxT(t, 8*time.Minute)
	if err := d.WaitStateFor(ctx, "UNPROVISIONED", 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	enr, err := d.Enroll(ctx)
	if err != nil {
		t.Fatal(err)
	}
	identity, _, err := enr.Keys()
	if err != nil {
		t.Fatal(err)
	}
	if err := d.PressFor(ctx, "READY_TO_PAIR"); err != nil {
		t.Fatal(err)
	}
	q, _, err := d.ScanQR(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := flood.SelfSigned("Central Station provisioning signer")
	if err != nil {
		t.Fatal(err)
	}
	addr := d.GuestPort(harness.ProvisioningPort)

	// 1. 2,000 connections; the Central Station pairs after the first 200.
	mark0, err := d.AuditMark(ctx)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	f := flood.Start(flood.Config{Addr: addr, Cert: cert, Workers: floodWorkers, Limit: total})
	defer f.Stop()
	if !waitFor(ctx, 2*time.Minute, func() bool { return f.Attempts() >= 200 }) {
		t.Fatalf("flood: %d connections in 2 minutes", f.Attempts())
	}
	p, err := c.Pusher(nil)
	if err != nil {
		t.Fatal(err)
	}
	out, err := p.Provision(ctx, d.Job(q, identity), nil)
	paired := f.Attempts()
	if err != nil || out.State != "PROVISIONED" {
		t.Fatalf("pairing after %d flooding connections: %+v, %v\n%s", paired, out, err, harness.Tail(d.ConsoleText(), 2000))
	}
	f.Wait()
	elapsed := time.Since(start)
	mark1, err := d.AuditMark(ctx)
	if err != nil {
		t.Fatalf("console after the flood: %v", err)
	}
	t.Logf("%d connections in %v (paired after %d): %d audit records", f.Attempts(), elapsed.Round(time.Millisecond), paired, mark1-mark0)
	// The pairing's own records are about ten; refusals at most two per
	// address and code in each 10 s interval (the first, then a count).
	if limit := 20 + 2*2*(int(elapsed/(10*time.Second))+1); mark1-mark0 > limit {
		t.Errorf("%d audit records during the flood, want at most %d", mark1-mark0, limit)
	}

	// The port closed under the flood: the console and the button answer.
	if err := d.WaitStateFor(ctx, "PROVISIONED", time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := d.FactoryResetConfirmed(ctx); err != nil {
		t.Fatalf("factory reset after the flood: %v", err)
	}

	// 2. A session that expires under the flood.
	if err := d.PressFor(ctx, "READY_TO_PAIR"); err != nil {
		t.Fatal(err)
	}
	f2 := flood.Start(flood.Config{Addr: addr, Cert: cert, Workers: floodWorkers})
	defer f2.Stop()
	if err := d.WaitStateFor(ctx, "UNPROVISIONED", 2*time.Minute); err != nil {
		t.Fatalf("session under the flood did not end: %v", err)
	}
	f2.Stop()
	t.Logf("second session: %d connections until it expired", f2.Attempts())
	if err := d.PressFor(ctx, "READY_TO_PAIR"); err != nil {
		t.Fatalf("button after the session expired under the flood: %v", err)
	}
	qr, err := d.Command(ctx, "qr plain")
	if err != nil || !strings.Contains(qr, "█") {
		t.Fatalf("console qr after the flood: %q, %v", qr, err)
	}
	mark2, err := d.AuditMark(ctx)
	if err != nil {
		t.Fatal(err)
	}

	// The bytes the first flood cost the audit log, off the disk.
	if err := d.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	n, err := auditBytes(stateDir, mark0, mark1)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("audit log: %d bytes for the %d records of the 2,000-connection flood; %d records since", n, mark1-mark0, mark2-mark1)
}

// BenchmarkQEMUFloodAudit measures what 15 s of a flood of TLS connections
// with self-signed client certificates (32 at a time) costs the board:
// audit records and bytes written (read off the data disk), and the
// connections made. Run:
//
//	go test -run '^$' -bench QEMUFloodAudit -benchtime 1x ./internal/e2e/
func BenchmarkQEMUFloodAudit(b *testing.B) {
	const window = 15 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	k, initrd, c := benchImage(ctx, b)
	defer c.Close()
	cert, err := flood.SelfSigned("Central Station provisioning signer")
	if err != nil {
		b.Fatal(err)
	}
	var records, size, conns float64
	b.StopTimer()
	for i := 0; i < b.N; i++ {
		stateDir := filepath.Join(b.TempDir(), "board")
		bd, err := qemu.Start(ctx, qemu.Config{Kernel: k, Initrd: initrd, StateDir: stateDir,
			HostFwd: []qemu.HostFwd{{GuestPort: harness.ProvisioningPort}},
			Append:  "zmonitor.device_id=ZM-BENCH-03 zmonitor.serial=SN-BENCH-3"})
		if err != nil {
			b.Fatal(err)
		}
		d := &harness.Device{Board: bd}
		if err := d.WaitConsole(ctx); err != nil {
			b.Fatal(err)
		}
		if err := d.WaitStateFor(ctx, "UNPROVISIONED", 2*time.Minute); err != nil {
			b.Fatal(err)
		}
		if err := d.PressFor(ctx, "READY_TO_PAIR"); err != nil {
			b.Fatal(err)
		}
		mark0, err := d.AuditMark(ctx)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		f := flood.Start(flood.Config{Addr: d.GuestPort(harness.ProvisioningPort), Cert: cert, Workers: 32})
		<-time.After(window)
		f.Stop()
		b.StopTimer()
		mark1, err := d.AuditMark(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if err := d.Stop(ctx); err != nil {
			b.Fatal(err)
		}
		n, err := auditBytes(stateDir, mark0, mark1)
		if err != nil {
			b.Fatal(err)
		}
		bd.Close()
		records += float64(mark1 - mark0)
		size += float64(n)
		conns += float64(f.Attempts())
		b.Logf("run %d: %d connections, %d audit records, %d bytes in %v", i, f.Attempts(), mark1-mark0, n, window)
	}
	b.ReportMetric(records/float64(b.N), "records/15s")
	b.ReportMetric(size/float64(b.N), "bytes/15s")
	b.ReportMetric(conns/float64(b.N), "connections/15s")
}
