package e2e

import (
	"github.com/zmonitor/firmware/internal/testkit/harness"

	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/zmonitor/firmware/image/kernel"
	"github.com/zmonitor/firmware/image/manifest"
	"github.com/zmonitor/firmware/image/uefi"
	"github.com/zmonitor/firmware/qemu"
)

// firmwareBannerRE is U-Boot's first line on the console.
var firmwareBannerRE = regexp.MustCompile(`U-Boot \d{4}\.\d{2}`)

// BenchmarkQEMUBootSecure boots the signed image on the qemu-virt-secure
// board b.N times (the first, untimed boot creates the TPM's keys) and
// reports the medians of:
// QEMU start → the firmware's banner, → the kernel's clock starting (the
// firmware, the stubs), → first screen on a screenshot. Run with
// `make bench-qemu-secure` (-benchtime 5x).
func BenchmarkQEMUBootSecure(b *testing.B) {
	if testing.Short() {
		b.Skip("boots QEMU: make bench-qemu-secure")
	}
	for _, tool := range []string{"qemu-system-aarch64", "swtpm", "swtpm_setup", "mkfs.ext4", "socat", "osslsigncode", "sign-efi-sig-list", uefi.DefaultObjcopy} {
		if _, err := exec.LookPath(tool); err != nil {
			b.Skipf("%s not found", tool)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()
	s, err := harness.Secure(ctx)
	if errors.Is(err, kernel.ErrNotBuilt) || errors.Is(err, uefi.ErrNotBuilt) {
		b.Skipf("%v (make kernel u-boot)", err)
	}
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	root, _ := os.Getwd()
	fw, err := harness.BuildFirmware(ctx, filepath.Join(root, "../.."), dir, time.Now().Add(-24*time.Hour))
	if err != nil {
		b.Fatal(err)
	}
	c, err := harness.NewCentral(time.Now())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	// verbose: the boot trace says when the guest drew the first screen.
	if _, err := s.Image(fw, c.AnchorPEM(), s.Keys, harness.SecureCmdline+" zmonitor.verbose=1", filepath.Join(dir, "image")); err != nil {
		b.Fatal(err)
	}
	cfg := s.Config(filepath.Join(dir, "image", manifest.EFIFileName), filepath.Join(dir, "board"))
	cfg.TraceTPM = true
	cfg.GuestFwd = []qemu.GuestFwd{{GuestPort: harness.MonitorGuestPort, HostPort: c.MonitorPort()}}
	first, err := qemu.Start(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	d := &harness.Device{Board: first}
	if err := d.WaitConsole(ctx); err != nil {
		b.Fatal(err)
	}
	if err := d.WaitState(ctx, "UNPROVISIONED"); err != nil {
		b.Fatalf("%v\n%s", err, harness.Tail(d.ConsoleText(), 2000))
	}
	first.Close()

	var banner, toKernel, kernelToScreen, fromQEMU []time.Duration
	phases := map[string][]time.Duration{}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		bd, err := qemu.Start(ctx, cfg)
		if err != nil {
			b.Fatal(err)
		}
		d := &harness.Device{Board: bd}
		tctx, cancel := context.WithTimeout(ctx, time.Minute)
		if _, err := d.Watch(tctx, firmwareBannerRE); err != nil {
			cancel()
			b.Fatalf("no firmware banner: %v", err)
		}
		banner = append(banner, time.Since(bd.Started()))
		m, err := d.Watch(tctx, firstScreenRE)
		cancel()
		if err != nil {
			b.Fatalf("no boot trace of the first frame: %v\n%s", err, harness.Tail(d.ConsoleText(), 1500))
		}
		announced := time.Since(bd.Started())
		for {
			img, err := d.Screenshot(ctx)
			if err == nil && img.Bounds().Dx() == 240 && img.Bounds().Dy() == 240 && harness.FrameHasInk(img) {
				break
			}
			if time.Since(bd.Started()) > time.Minute {
				b.Fatalf("no UNPROVISIONED screen within a minute (last error %v)", err)
			}
			time.Sleep(5 * time.Millisecond)
		}
		fromQEMU = append(fromQEMU, time.Since(bd.Started()))
		g, err := time.ParseDuration(m[1])
		if err != nil {
			b.Fatalf("boot trace %q: %v", m[0], err)
		}
		kernelToScreen = append(kernelToScreen, g)
		kernelStart := announced - g
		toKernel = append(toKernel, kernelStart-banner[len(banner)-1])
		bd.Close()
		f, err := os.Open(bd.TPMTrace())
		if err != nil {
			b.Fatal(err)
		}
		cmds, err := qemu.ReadTPMTrace(f)
		f.Close()
		if err != nil {
			b.Fatal(err)
		}
		for name, at := range firmwarePhases(cmds, bd.Started()) {
			phases[name] = append(phases[name], at)
		}
		phases["kernel starts"] = append(phases["kernel starts"], kernelStart)
	}
	b.StopTimer()
	b.ReportMetric(float64(median(fromQEMU).Milliseconds()), "ms-qemu-to-screen")
	b.ReportMetric(float64(median(banner).Milliseconds()), "ms-qemu-to-firmware")
	b.ReportMetric(float64(median(toKernel).Milliseconds()), "ms-firmware-to-kernel")
	b.ReportMetric(float64(median(kernelToScreen).Milliseconds()), "ms-kernel-to-screen")
	b.Logf("QEMU process start → screenshot shows the screen %v", fromQEMU)
	b.Logf("QEMU process start → the firmware's banner on the console %v", banner)
	b.Logf("banner → the kernel's clock starts (U-Boot, systemd-stub, EFI stub; announced minus guest time) %v", toKernel)
	b.Logf("kernel start → the firmware drew the first screen (guest's own clock) %v", kernelToScreen)
	b.Logf("phases, median time after QEMU started (TPM commands from QEMU's trace; the kernel from the guest's clock):")
	for _, name := range phaseOrder {
		if d := phases[name]; len(d) > 0 {
			b.Logf("  %-46s %6d ms  %v", name, median(d).Milliseconds(), d)
		}
	}
}

// phaseOrder names the phases firmwarePhases finds, in boot order.
var phaseOrder = []string{
	"U-Boot: TPM2_Startup (EFI subsystem starts)",
	"U-Boot: Secure Boot policy measured (PCR 7)",
	"U-Boot: image verified and measured (PCR 4)",
	"U-Boot: separators, image starts (PCR 7)",
	"systemd-stub: sections measured (last PCR 11)",
	"U-Boot: inner kernel verified, measured (PCR 4)",
	"EFI stub: initrd measured (last PCR 9)",
	"kernel starts",
}

// firmwarePhases reads the boot phases from the TPM commands of U-Boot,
// systemd-stub (PCR 11, through U-Boot's TCG2 protocol) and the kernel's
// EFI stub (PCR 9). Each is when the command went to the TPM: after the
// hashing it records.
func firmwarePhases(cmds []qemu.TPMCommand, started time.Time) map[string]time.Duration {
	out := map[string]time.Duration{}
	set := func(name string, at time.Time) {
		if _, ok := out[name]; !ok {
			out[name] = at.Sub(started)
		}
	}
	imageDone, stubRan := false, false
	for _, c := range cmds {
		switch {
		case c.Code == qemu.TPMStartup:
			set(phaseOrder[0], c.At)
		case c.Code == qemu.TPMPCRExtend && c.Handle == 7 && !imageDone:
			set(phaseOrder[1], c.At)
		case c.Code == qemu.TPMPCRExtend && c.Handle == 4 && !stubRan:
			set(phaseOrder[2], c.At)
			imageDone = true
		case c.Code == qemu.TPMPCRExtend && c.Handle == 7 && imageDone:
			set(phaseOrder[3], c.At)
		case c.Code == qemu.TPMPCRExtend && c.Handle == 11:
			out[phaseOrder[4]] = c.At.Sub(started) // the last one
			stubRan = true
		case c.Code == qemu.TPMPCRExtend && c.Handle == 4 && stubRan:
			set(phaseOrder[5], c.At)
		case c.Code == qemu.TPMPCRExtend && c.Handle == 9:
			// The last: the command line first, then the initrd.
			out[phaseOrder[6]] = c.At.Sub(started)
		}
	}
	return out
}
