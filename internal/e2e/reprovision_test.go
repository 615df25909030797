package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/zmonitor/firmware/qemu"
)

// scanAndPair photographs the pairing screen and pairs it with zm-pair
// scan; it returns zm-pair's output and an error when zm-pair failed (the
// device's state is left to the caller).
func (p *programs) scanAndPair(label string) (string, error) {
	shot, _ := p.photograph(nil)
	out, errOut, err := p.zmPairScan(label, shot)
	if err != nil {
		return out, fmt.Errorf("zm-pair scan: %w\nstderr:\n%s", err, errOut)
	}
	return out, nil
}

// Guest ports of the re-provisioning drill: another URL of the same
// monitoring server, and one where nothing answers.
const (
	otherMonitorGuestPort = 9445
	deadGuestPort         = 9446
)

// TestReprovisionOnTheBoard: a PROVISIONED board is paired again without
// a factory reset (console reprovision confirmed by the button): first to
// another server URL, which succeeds (the new pair in key slot B); then to
// a server that does not answer, which fails its connection test and
// falls back to the working provisioning: the device is PROVISIONED on it
// again, audited, and its connection check to it passes.
func TestReprovisionOnTheBoard(t *testing.T) {
	ctx := ctxT(t, 15*time.Minute)
	p := newPrograms(t, ctx)
	dead, err := freeTCPPort() // forwarded, nothing listens
	if err != nil {
		t.Fatal(err)
	}
	p.moreGuestFwd = []qemu.GuestFwd{{GuestPort: otherMonitorGuestPort, HostPort: p.monPort}, {GuestPort: deadGuestPort, HostPort: dead}}
	p.serve(false)
	d := p.boot()
	p.pair("ICU-MON-08")
	oldSerial, slot, _ := certLine(t, ctx, d)
	if slot != "A" {
		t.Fatalf("first pairing in key slot %s", slot)
	}

	// To another server URL.
	other := guestURL(otherMonitorGuestPort)
	p.stopServe()
	p.serve(false, "--server-url", other)
	if err := d.ReprovisionConfirmed(ctx); err != nil {
		t.Fatal(err)
	}
	if out, err := p.scanAndPair("ICU-MON-09"); err != nil || !strings.Contains(out, "PROVISIONED") {
		t.Fatalf("re-provisioning: %v\n%s", err, out)
	}
	newSerial, slot, st := certLine(t, ctx, d)
	if slot != "B" || newSerial == oldSerial {
		t.Errorf("after re-provisioning: key slot %s, serial %s (was %s)\n%s", slot, newSerial, oldSerial, st)
	}
	cfg, err := d.Command(ctx, "config")
	if err != nil || !strings.Contains(cfg, other) || !strings.Contains(cfg, "ICU-MON-09") {
		t.Errorf("config after re-provisioning to %s: %v\n%s", other, err, cfg)
	}

	// To a server that does not answer: falls back.
	p.stopServe()
	p.serve(false, "--server-url", guestURL(deadGuestPort))
	if err := d.ReprovisionConfirmed(ctx); err != nil {
		t.Fatal(err)
	}
	mark := len(p.logText())
	if out, err := p.scanAndPair("ICU-MON-10"); err == nil {
		cfg, _ := d.Command(ctx, "config")
		a, _ := d.Command(ctx, "audit 30")
		t.Fatalf("a pairing to a dead server (guest port %d, host port %d) succeeded:\n%s\nconfig:\n%s\naudit:\n%s", deadGuestPort, dead, out, cfg, a)
	}
	if err := d.WaitStateFor(ctx, "PROVISIONED", time.Minute); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(2 * time.Minute); ; {
		_, _, st = certLine(t, ctx, d)
		if strings.Contains(st, "connection check: PASSED") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no passed connection check of the fallback within 2 minutes:\n%s", st)
		}
		time.Sleep(200 * time.Millisecond)
	}
	serial, slot, _ := certLine(t, ctx, d)
	if serial != newSerial || slot != "B" {
		t.Errorf("after the fallback: serial %s in slot %s, want %s in B", serial, slot, newSerial)
	}
	cfg, err = d.Command(ctx, "config")
	if err != nil || !strings.Contains(cfg, other) || !strings.Contains(cfg, "ICU-MON-09") {
		t.Errorf("config after the fallback: %v\n%s", err, cfg)
	}
	a, err := d.Command(ctx, "audit 40")
	if err != nil || !strings.Contains(a, "REPROVISION_FELL_BACK") || !strings.Contains(a, "REPROVISION_STARTED") {
		t.Errorf("device audit: %v\n%s", err, a)
	}
	// The monitoring server saw the fallback's certificate after the fallback.
	if since := p.logText()[mark:]; !strings.Contains(since, "serial="+newSerial) {
		t.Errorf("the monitoring server logged no health check of the fallback:\n%s", p.logTail())
	}
}
