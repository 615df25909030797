package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/zmonitor/firmware/board"
	"github.com/zmonitor/firmware/qemu"
)

// BenchmarkQEMUBoot boots the image b.N times on one board (the first,
// untimed boot creates the TPM keys) and reports the medians of: QEMU start
// → UNPROVISIONED screen drawn, and button press → a decodable QR on the
// screenshot. Run with `make bench-qemu` (-benchtime 5x).
func BenchmarkQEMUBoot(b *testing.B) {
	if testing.Short() {
		b.Skip("boots QEMU: make bench-qemu")
	}
	for _, tool := range []string{"qemu-system-aarch64", "swtpm", "mkfs.ext4", "socat"} {
		if _, err := exec.LookPath(tool); err != nil {
			b.Skipf("%s not found", tool)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	k, err := Kernel(ctx, false)
	if err != nil {
		b.Skipf("kernel: %v", err)
	}
	dir := b.TempDir()
	root, _ := os.Getwd()
	fw, err := BuildFirmware(ctx, filepath.Join(root, "../.."), dir, time.Now().Add(-24*time.Hour))
	if err != nil {
		b.Fatal(err)
	}
	c, err := NewCentral(time.Now())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	initrd := filepath.Join(dir, "initramfs.cpio.gz")
	if err := BuildInitramfs(fw, board.QEMUVirt(), c.AnchorPEM(), initrd); err != nil {
		b.Fatal(err)
	}
	cfg := qemu.Config{Kernel: k, Initrd: initrd, StateDir: filepath.Join(dir, "board"),
		HostFwd:  []qemu.HostFwd{{GuestPort: ProvisioningPort}},
		GuestFwd: []qemu.GuestFwd{{GuestPort: MonitorGuestPort, HostPort: c.MonitorPort()}},
		Append:   "zmonitor.device_id=ZM-BENCH-01 zmonitor.serial=SN-BENCH-1"}
	first, err := qemu.Start(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	d := &Device{Board: first}
	if err := d.WaitConsole(ctx); err != nil {
		b.Fatal(err)
	}
	if err := d.WaitState(ctx, "UNPROVISIONED"); err != nil {
		b.Fatal(err)
	}
	first.Close()

	var boots, presses []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		bd, err := qemu.Start(ctx, cfg)
		if err != nil {
			b.Fatal(err)
		}
		d := &Device{Board: bd}
		for {
			// Until the guest sets the mode, QEMU shows a placeholder of
			// another size; QMP may not be up in the first milliseconds.
			img, err := d.Screenshot(ctx)
			if err == nil && img.Bounds().Dx() == 240 && img.Bounds().Dy() == 240 && FrameHasInk(img) {
				break
			}
			if time.Since(start) > time.Minute {
				b.Fatalf("no UNPROVISIONED screen within a minute (last error %v)", err)
			}
			time.Sleep(10 * time.Millisecond)
		}
		boots = append(boots, time.Since(start))
		if err := d.WaitConsole(ctx); err != nil {
			b.Fatal(err)
		}
		if err := d.WaitState(ctx, "UNPROVISIONED"); err != nil {
			b.Fatal(err)
		}
		press := time.Now()
		if err := d.PressButton(ctx); err != nil {
			b.Fatal(err)
		}
		if _, _, err := d.ScanQR(ctx, ""); err != nil {
			b.Fatal(err)
		}
		presses = append(presses, time.Since(press))
		bd.Close()
	}
	b.StopTimer()
	b.ReportMetric(float64(median(boots).Milliseconds()), "ms-start-to-screen")
	b.ReportMetric(float64(median(presses).Milliseconds()), "ms-press-to-QR")
	b.Logf("start→screen %v; press→QR %v", boots, presses)
}

func median(d []time.Duration) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}
