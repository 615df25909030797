package e2e

import (
	"github.com/zmonitor/firmware/internal/testkit/harness"

	"context"
	"fmt"
	"image"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/zmonitor/firmware/board"
	"github.com/zmonitor/firmware/internal/tablet"
	"github.com/zmonitor/firmware/qemu"
)

// benchImage builds the firmware and an initramfs trusting a fresh Central
// Station, for a board benchmark; it skips when the board's tools or the
// kernel are missing. The caller closes the Central Station.
func benchImage(ctx context.Context, b *testing.B) (kernel, initrd string, c *harness.Central) {
	b.Helper()
	if testing.Short() {
		b.Skip("boots QEMU: make bench-qemu")
	}
	for _, tool := range []string{"qemu-system-aarch64", "swtpm", "mkfs.ext4", "socat"} {
		if _, err := exec.LookPath(tool); err != nil {
			b.Skipf("%s not found", tool)
		}
	}
	k, err := harness.Kernel(ctx, false)
	if err != nil {
		b.Skipf("kernel: %v", err)
	}
	dir := b.TempDir()
	root, _ := os.Getwd()
	fw, err := harness.BuildFirmware(ctx, filepath.Join(root, "../.."), dir, time.Now().Add(-24*time.Hour))
	if err != nil {
		b.Fatal(err)
	}
	c, err = harness.NewCentral(time.Now())
	if err != nil {
		b.Fatal(err)
	}
	initrd = filepath.Join(dir, "initramfs.cpio.gz")
	if err := harness.BuildInitramfs(fw, board.QEMUVirt(), c.AnchorPEM(), initrd); err != nil {
		c.Close()
		b.Fatal(err)
	}
	return k, initrd, c
}

// BenchmarkQEMUBoot boots the image b.N times on one board (the first,
// untimed boot creates the TPM keys) and reports the medians of: QEMU start
// → UNPROVISIONED screen drawn, and button press → a decodable QR on the
// screenshot. Run with `make bench-qemu` (-benchtime 5x).
func BenchmarkQEMUBoot(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	k, initrd, c := benchImage(ctx, b)
	defer c.Close()
	cfg := qemu.Config{Kernel: k, Initrd: initrd, StateDir: filepath.Join(b.TempDir(), "board"),
		HostFwd:  []qemu.HostFwd{{GuestPort: harness.ProvisioningPort}},
		GuestFwd: []qemu.GuestFwd{{GuestPort: harness.MonitorGuestPort, HostPort: c.MonitorPort()}},
		// verbose: the firmware logs its boot steps, so the benchmark can
		// also report when the guest itself drew the first screen.
		Append: "zmonitor.device_id=ZM-BENCH-01 zmonitor.serial=SN-BENCH-1 zmonitor.verbose=1"}
	first, err := qemu.Start(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	d := &harness.Device{Board: first}
	if err := d.WaitConsole(ctx); err != nil {
		b.Fatal(err)
	}
	if err := d.WaitState(ctx, "UNPROVISIONED"); err != nil {
		b.Fatal(err)
	}
	first.Close()

	var boots, fromQEMU, announced, guest, polls, presses, guestPresses, leases []time.Duration
	var trace string // the first timed boot's trace
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		bd, err := qemu.Start(ctx, cfg)
		if err != nil {
			b.Fatal(err)
		}
		d := &harness.Device{Board: bd}
		// Screenshots start when the firmware says on the console that
		// it drew the first frame (its boot trace holds every other line
		// until then, so the announcement comes a few milliseconds after
		// the frame), not before: each QMP screendump holds QEMU's big
		// lock for ~5-7 ms, and the guest's disk, TPM and display
		// accesses wait meanwhile. Polling from a fixed 0.7 s after QEMU
		// started took ~45 screenshots a boot and slowed the boot itself
		// by ~0.2 s. The time reported is when a screenshot shows the
		// screen, so it can only be late, never early. Watch, not Expect:
		// the boot trace and the console's own output interleave in no
		// fixed order, so it searches the whole text; and it wakes on
		// output instead of polling (a 2 ms poll of the console took host
		// CPU from the boot it timed).
		tctx, cancel := context.WithTimeout(ctx, time.Minute)
		m, err := d.Watch(tctx, firstScreenRE)
		cancel()
		if err != nil {
			b.Fatalf("no boot trace of the first frame on the console: %v\n%s", err, harness.Tail(d.ConsoleText(), 1500))
		}
		announced = append(announced, time.Since(bd.Started()))
		for {
			// Until the guest sets the mode, QEMU shows a placeholder of
			// another size.
			shot := time.Now()
			img, err := d.Screenshot(ctx)
			polls = append(polls, time.Since(shot))
			if err == nil && img.Bounds().Dx() == 240 && img.Bounds().Dy() == 240 && harness.FrameHasInk(img) {
				break
			}
			if time.Since(start) > time.Minute {
				b.Fatalf("no UNPROVISIONED screen within a minute (last error %v)", err)
			}
			time.Sleep(5 * time.Millisecond)
		}
		boots = append(boots, time.Since(start))
		fromQEMU = append(fromQEMU, time.Since(bd.Started()))
		if err := d.WaitConsole(ctx); err != nil {
			b.Fatal(err)
		}
		g, err := time.ParseDuration(m[1])
		if err != nil {
			b.Fatalf("boot trace %q: %v", m[0], err)
		}
		guest = append(guest, g)
		if i == 0 {
			trace = strings.Join(bootTraceRE.FindAllString(d.ConsoleText(), -1), "\n")
		}
		if err := d.WaitState(ctx, "UNPROVISIONED"); err != nil {
			b.Fatal(err)
		}
		// Press once the device has finished its start-up work (it makes
		// the pairing screen's glyphs right after the first frame, ~0.2 s
		// under QEMU): a technician does not press within that time, and a
		// press during it would measure the warm-up, not the press.
		tctx, cancel = context.WithTimeout(ctx, 10*time.Second)
		_, err = d.Watch(tctx, warmedRE)
		cancel()
		if err != nil {
			b.Fatalf("no boot trace of the pairing screen warm-up: %v", err)
		}
		before, err := d.Screenshot(ctx)
		if err != nil {
			b.Fatal(err)
		}
		press := time.Now()
		if err := d.PressButton(ctx); err != nil {
			b.Fatal(err)
		}
		if err := waitForQR(ctx, d, before); err != nil {
			b.Fatal(err)
		}
		presses = append(presses, time.Since(press))
		tctx, cancel = context.WithTimeout(ctx, 10*time.Second)
		pm, err := d.Watch(tctx, pressTraceRE)
		cancel()
		if err != nil {
			b.Fatalf("no trace of the press on the console: %v\n%s", err, harness.Tail(d.ConsoleText(), 1500))
		}
		got, err1 := time.ParseDuration(pm[1])
		drawn, err2 := time.ParseDuration(pm[2])
		if err1 != nil || err2 != nil {
			b.Fatalf("press trace %q: %v %v", pm[0], err1, err2)
		}
		guestPresses = append(guestPresses, drawn-got)
		tctx, cancel = context.WithTimeout(ctx, 30*time.Second)
		lm, err := d.Watch(tctx, leaseRE)
		cancel()
		if err != nil {
			b.Fatalf("no DHCP lease on the console: %v\n%s", err, harness.Tail(d.ConsoleText(), 1500))
		}
		lt, err := time.ParseDuration(lm[1])
		if err != nil {
			b.Fatalf("lease line %q: %v", lm[0], err)
		}
		leases = append(leases, lt)
		bd.Close()
	}
	b.StopTimer()
	b.ReportMetric(float64(median(boots).Milliseconds()), "ms-start-to-screen")
	b.ReportMetric(float64(median(fromQEMU).Milliseconds()), "ms-qemu-to-screen")
	if len(guest) > 0 {
		b.ReportMetric(float64(median(guest).Milliseconds()), "ms-kernel-to-screen")
	}
	b.ReportMetric(float64(median(presses).Milliseconds()), "ms-press-to-QR")
	b.ReportMetric(float64(median(guestPresses).Milliseconds()), "ms-guest-press-to-drawn")
	b.ReportMetric(float64(median(leases).Microseconds())/1000, "ms-dhcp-lease")
	b.Logf("board start (swtpm, QEMU) → screenshot shows the screen %v", boots)
	b.Logf("QEMU process start → screenshot shows the screen %v", fromQEMU)
	b.Logf("kernel start → firmware drew the first screen (guest's own clock) %v", guest)
	b.Logf("QEMU process start → the console announced the first frame %v", announced)
	b.Logf("press → decodable QR %v; one screenshot takes %v (median of %d)", presses, median(polls), len(polls))
	b.Logf("press seen by the firmware → pairing screen written (guest's own clock) %v", guestPresses)
	b.Logf("DHCP: first DISCOVER → ACK (guest's own clock) %v", leases)
	b.Logf("boot trace of the first timed boot:\n%s", trace)
}

// bootTraceRE finds the firmware's boot trace lines.
var bootTraceRE = regexp.MustCompile(`step="[^"]+" at=\S+ took=\S+`)

// waitForQR polls screenshots every 10 ms (ScanQR's 50 ms would be most
// of the resolution) and decodes only frames that differ from before.
func waitForQR(ctx context.Context, d *harness.Device, before image.Image) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		img, err := d.Screenshot(ctx)
		if err != nil {
			return err
		}
		if !sameImage(img, before) {
			if _, err := harness.DecodeQR(img); err == nil {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("no decodable QR after the press: %w", ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func sameImage(a, b image.Image) bool {
	if a.Bounds() != b.Bounds() {
		return false
	}
	r := a.Bounds()
	for y := r.Min.Y; y < r.Max.Y; y += 2 {
		for x := r.Min.X; x < r.Max.X; x += 2 {
			if a.At(x, y) != b.At(x, y) {
				return false
			}
		}
	}
	return true
}

// warmedRE finds the boot trace line of the pairing screen's warm-up.
var warmedRE = regexp.MustCompile(`step="pairing screen warmed"`)

// pressTraceRE finds the firmware's trace of a press: when the engine got
// it and when the pairing screen was written to the display.
var pressTraceRE = regexp.MustCompile(`(?s)step="button press received" at=([0-9.]+m?s) .*?step="pairing screen drawn" at=([0-9.]+m?s) `)

// leaseRE finds netup's lease line: how long the DHCP exchange took.
var leaseRE = regexp.MustCompile(`msg="dhcp lease" .*?took=([0-9.]+[mµn]?s)`)

// firstScreenRE finds the firmware's boot trace line for its first frame.
var firstScreenRE = regexp.MustCompile(`step="first screen drawn" at=([0-9.]+m?s) `)

func median(d []time.Duration) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

// benchBoard boots the image with the Central Station's monitor port
// forwarded and the kernel arguments given, and waits for UNPROVISIONED.
// The board stops when the benchmark ends.
func benchBoard(ctx context.Context, b *testing.B, k, initrd string, c *harness.Central, args string) *harness.Device {
	b.Helper()
	bctx, bcancel := context.WithTimeout(ctx, 2*time.Minute)
	defer bcancel()
	bd, err := qemu.Start(bctx, qemu.Config{Kernel: k, Initrd: initrd, StateDir: filepath.Join(b.TempDir(), "board"),
		HostFwd:  []qemu.HostFwd{{GuestPort: harness.ProvisioningPort}},
		GuestFwd: []qemu.GuestFwd{{GuestPort: harness.MonitorGuestPort, HostPort: c.MonitorPort()}},
		Append:   args})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { bd.Close() })
	d := &harness.Device{Board: bd}
	if err := d.WaitConsole(bctx); err != nil {
		b.Fatal(err)
	}
	if err := d.WaitStateFor(ctx, "UNPROVISIONED", 2*time.Minute); err != nil {
		b.Fatal(err)
	}
	return d
}

// BenchmarkQEMUPairing boots the image once and provisions it b.N times
// through the Central Station's tablet API, the way a technician does with
// zm-pair scan: press → READY_TO_PAIR, screenshot, decode with the tablet
// library, pair, PROVISIONED; then a console factory reset confirmed with
// the button brings it back to UNPROVISIONED. It reports the median, min
// and max from the scan (the screenshot that yields the QR) to the Central
// Station's answer that the device is PROVISIONED. Every wait has a
// deadline and fails with the device's state and the console tail. Run
// with `make bench-qemu` (-benchtime 5x).
func BenchmarkQEMUPairing(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	k, initrd, c := benchImage(ctx, b)
	defer c.Close()
	d := benchBoard(ctx, b, k, initrd, c, "zmonitor.device_id=ZM-BENCH-02 zmonitor.serial=SN-BENCH-2")
	s := newStation(b, c, d)

	var runs []time.Duration
	last := ""
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := d.PressFor(ctx, "READY_TO_PAIR"); err != nil {
			b.Fatalf("run %d: %v", i, err)
		}
		qr, scanned, err := scanTablet(ctx, d, last, time.Minute)
		if err != nil {
			b.Fatalf("run %d: %v", i, err)
		}
		last = string(qr)
		pctx, pcancel := context.WithTimeout(ctx, 2*time.Minute)
		res, err := s.tablet.Pair(pctx, tablet.Request{QR: qr, Label: "ICU-MON-04"})
		pcancel()
		if err != nil || !res.Provisioned() || res.DeviceState != "PROVISIONED" {
			b.Fatalf("run %d: %v", i, d.Failure(fmt.Sprintf("pairing: %+v, %v", res, err)))
		}
		runs = append(runs, time.Since(scanned))
		if err := d.WaitStateFor(ctx, "PROVISIONED", 30*time.Second); err != nil {
			b.Fatalf("run %d: %v", i, err)
		}
		if err := d.FactoryResetConfirmed(ctx); err != nil {
			b.Fatalf("run %d: %v", i, err)
		}
	}
	b.StopTimer()
	sorted := append([]time.Duration(nil), runs...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	b.ReportMetric(median(runs).Seconds(), "s/scan-to-provisioned")
	b.ReportMetric(sorted[0].Seconds(), "s/scan-to-provisioned-min")
	b.ReportMetric(sorted[len(sorted)-1].Seconds(), "s/scan-to-provisioned-max")
	b.Logf("scan→PROVISIONED over %d runs: %v", len(runs), runs)
}

// scanTablet takes screenshots until the tablet library (zm-pair scan's
// decoder) reads a pairing QR other than not, and returns its text and
// when the screenshot that held it was taken.
func scanTablet(ctx context.Context, d *harness.Device, not string, limit time.Duration) ([]byte, time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	var lastErr error
	for {
		at := time.Now()
		img, err := d.Screenshot(ctx)
		if err == nil {
			var text []byte
			if text, err = tablet.ScanImage(img); err == nil && string(text) != not {
				return text, at, nil
			}
		}
		if err != nil {
			lastErr = err
		}
		select {
		case <-ctx.Done():
			return nil, time.Time{}, d.Failure(fmt.Sprintf("no new pairing QR on the screen within %v (last error %v)", limit, lastErr))
		case <-time.After(50 * time.Millisecond):
		}
	}
}
