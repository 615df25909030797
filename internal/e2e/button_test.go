package e2e

import (
	"flag"
	"testing"
	"time"

	"github.com/zmonitor/firmware/board"
)

var (
	presses   = flag.Int("presses", 30, "presses per round in TestButtonPressesOnTheBoard")
	rawRounds = flag.Bool("raw-presses", false, "TestButtonPressesOnTheBoard also presses through bare QMP at fixed gaps and logs how many the guest saw (the measurement in docs/qemu.md)")
)

// TestButtonPressesOnTheBoard presses the button *presses times back to
// back on the real image with Device.Press and checks that the guest
// records every one (BUTTON_PRESSED in its audit log). With -raw-presses it
// first measures bare QMP presses at fixed gaps, which QEMU merges when they
// come within its 100 ms pulse (QEMUButtonPulse).
func TestButtonPressesOnTheBoard(t *testing.T) {
	e := need(t)
	c := newCentral(t)
	d := boot(t, e, c, board.QEMUVirt(), t.TempDir())
	ctx := ctxT(t, 10*time.Minute)
	if err := d.WaitStateFor(ctx, "UNPROVISIONED", time.Minute); err != nil {
		t.Fatal(err)
	}
	n := *presses
	if *rawRounds {
		for _, gap := range []time.Duration{0, 50 * time.Millisecond, 90 * time.Millisecond, 150 * time.Millisecond, 250 * time.Millisecond} {
			mark, err := d.AuditMark(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < n; i++ {
				if err := d.PressButton(ctx); err != nil {
					t.Fatal(err)
				}
				time.Sleep(gap)
			}
			time.Sleep(time.Second) // the last pulse ends; the guest records it
			seen, err := d.PressesSince(ctx, mark)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("bare QMP presses %v after the previous reply: %d of %d seen", gap, seen, n)
		}
	}
	mark, err := d.AuditMark(ctx)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for i := 0; i < n; i++ {
		if err := d.Press(ctx); err != nil {
			t.Fatalf("press %d of %d: %v", i+1, n, err)
		}
	}
	el := time.Since(start)
	seen, err := d.PressesSince(ctx, mark)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Device.Press: %d of %d seen in %v (%v a press)", seen, n, el.Round(time.Millisecond), (el / time.Duration(n)).Round(time.Millisecond))
	if seen != n {
		t.Fatalf("the guest recorded %d of %d presses", seen, n)
	}
}
