// Command zm-demo runs the whole provisioning workflow on the QEMU board,
// with the real programs: zm-central (Central Station with a stand-in
// monitoring server and its web app), the firmware image (kernel +
// initramfs with the static zmonitor as /init, trusting zm-central's
// provisioning root) on qemu-virt with swtpm, and the technician's tablet:
// headless Chromium on the web app, signed in with a passkey, its camera
// (Chromium's fake camera) looking at a screenshot of the device's screen.
// It prints a timeline and saves a screenshot of each stage, the device's
// and the tablet's.
//
//	zm-demo -bin out -out out/demo
//
// `make demo` builds everything and runs it.
package main

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"image"
	"image/png"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/zmonitor/firmware/image/fwimage"
	"github.com/zmonitor/firmware/image/kernel"
	"github.com/zmonitor/firmware/internal/base/cli"
	"github.com/zmonitor/firmware/internal/base/version"
	"github.com/zmonitor/firmware/internal/testkit/browser"
	"github.com/zmonitor/firmware/internal/testkit/harness"
	"github.com/zmonitor/firmware/qemu"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

type demo struct {
	bin, out, repo string
	stdout         io.Writer
	start          time.Time
	timeline       []string
}

func (d *demo) mark(format string, a ...any) {
	line := fmt.Sprintf("%7.2fs  %s", time.Since(d.start).Seconds(), fmt.Sprintf(format, a...))
	d.timeline = append(d.timeline, line)
	fmt.Fprintln(d.stdout, line)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := cli.New("zm-demo", "zm-demo [flags]\n  provision the QEMU board end to end with the real programs (make demo)\nzm-demo version\n  the program's version and build time")
	bin := fs.String("bin", "out", "directory with zm-central and zmonitor-arm64")
	out := fs.String("out", "out/demo", "demo directory (recreated)")
	deviceID := fs.String("device-id", "ZM-QEMU-01", "device ID given at first boot")
	label := fs.String("label", "ICU-MON-04", "device label the Central Station assigns")
	usage := func(w io.Writer) { fs.Help(w) }
	if len(args) > 0 {
		switch args[0] {
		case "version", "-version", "--version":
			cli.Version(stdout, "zm-demo", version.Version, version.BuildTime)
			return cli.ExitOK
		case "help":
			return cli.Exit(stdout, stderr, "zm-demo", usage, flag.ErrHelp)
		}
	}
	if err := fs.Parse(args, 0, 0); err != nil {
		return cli.Exit(stdout, stderr, "zm-demo", usage, err)
	}
	d := &demo{bin: *bin, out: *out, stdout: stdout, start: time.Now()}
	return cli.Exit(stdout, stderr, "zm-demo", usage, d.run(ctx, *deviceID, *label))
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (d *demo) cmd(ctx context.Context, name string, args ...string) *exec.Cmd {
	c := exec.CommandContext(ctx, filepath.Join(d.bin, name), args...)
	c.Stderr = os.Stderr
	return c
}

func (d *demo) shot(ctx context.Context, dev *harness.Device, name string) (string, image.Image, error) {
	img, err := dev.Screenshot(ctx)
	if err != nil {
		return "", nil, err
	}
	path := filepath.Join(d.out, name+".png")
	f, err := os.Create(path)
	if err != nil {
		return "", nil, err
	}
	defer f.Close()
	return path, img, png.Encode(f, img)
}

func (d *demo) run(ctx context.Context, deviceID, label string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	root, err := kernel.FindRepoRoot()
	if err != nil {
		return err
	}
	d.repo = root
	if err := os.RemoveAll(d.out); err != nil {
		return err
	}
	if err := os.MkdirAll(d.out, 0o755); err != nil {
		return err
	}
	centralDir := filepath.Join(d.out, "central")

	// 1. The Central Station: CA, provisioning root and signer, the
	// bootstrap operator.
	if _, err := d.cmd(ctx, "zm-central", "init", "--dir", centralDir, "--technician", "it-operator").Output(); err != nil {
		return fmt.Errorf("zm-central init: %w", err)
	}
	d.mark("Central Station initialized (%s): device CA, provisioning root and signer, operator it-operator", centralDir)

	// 2. The firmware image, trusting this Central Station's provisioning root.
	k, err := kernel.Build(ctx, kernel.Options{RepoRoot: root, Progress: os.Stderr})
	if err != nil {
		return fmt.Errorf("kernel: %w", err)
	}
	imgDir := filepath.Join(d.out, "image")
	m, err := fwimage.Build(fwimage.Inputs{
		KernelPath: k, InitPath: filepath.Join(d.bin, "zmonitor-arm64"),
		BoardPath:       filepath.Join(root, "board/qemu-virt/board.json"),
		AnchorPath:      filepath.Join(centralDir, "provisioning-root.pem"),
		FirmwareVersion: "demo", Board: "qemu-virt",
	}, imgDir, io.Discard)
	if err != nil {
		return fmt.Errorf("firmware image: %w", err)
	}
	d.mark("firmware image %s: kernel %d KB, initramfs %d KB (/init %d KB), manifest.json", imgDir, m.Kernel.Size>>10, m.Initramfs.Size>>10, m.Init.Size>>10)

	// 3. Ports on 127.0.0.1: the device's provisioning port (hostfwd), the
	// monitoring server (guestfwd target), the tablet API.
	devPort, err1 := freePort()
	monPort, err2 := freePort()
	apiPort, err3 := freePort()
	if err := errors.Join(err1, err2, err3); err != nil {
		return err
	}

	// 4. The Central Station with its stand-in monitoring server. It runs
	// before the board boots: QEMU connects its guestfwd at start.
	serve := d.cmd(ctx, "zm-central", "serve", "--dir", centralDir,
		"--listen", "127.0.0.1:"+strconv.Itoa(apiPort),
		"--monitor-listen", "127.0.0.1:"+strconv.Itoa(monPort),
		"--server-url", fmt.Sprintf("https://%s:%d", qemu.GuestFwdAddr, harness.MonitorGuestPort),
		"--device-addr", fmt.Sprintf("%s=127.0.0.1:%d", deviceID, devPort),
		// The demo board (qemu-virt) boots its kernel directly: it
		// measures nothing, so it has no firmware to attest.
		"--allow-unmeasured-dev-firmware")
	serveLog, err := os.Create(filepath.Join(d.out, "zm-central.log"))
	if err != nil {
		return err
	}
	defer serveLog.Close()
	serve.Stdout, serve.Stderr = serveLog, serveLog
	if err := serve.Start(); err != nil {
		return fmt.Errorf("zm-central serve: %w", err)
	}
	defer func() { serve.Process.Signal(os.Interrupt); serve.Wait() }()
	if err := waitPort(ctx, apiPort); err != nil {
		return fmt.Errorf("zm-central serve did not listen: %w", err)
	}
	d.mark("Central Station serving the web app and the tablet API on https://localhost:%d; monitoring server on 127.0.0.1:%d (the device sees https://%s:%d)", apiPort, monPort, qemu.GuestFwdAddr, harness.MonitorGuestPort)
	origin := "https://localhost:" + strconv.Itoa(apiPort)
	addOut, err := d.cmd(ctx, "zm-central", "technicians", "add", "--dir", centralDir, "--enroll", "--no-qr", "--origin", origin, "biomed-tech").Output()
	if err != nil {
		return fmt.Errorf("zm-central technicians add: %w", err)
	}
	link := ""
	for _, l := range strings.Split(string(addOut), "\n") {
		if strings.HasPrefix(l, origin+"/enroll#") {
			link = l
		}
	}
	if link == "" {
		return fmt.Errorf("technicians add printed no enrollment link: %s", addOut)
	}
	d.mark("technician biomed-tech added with a one-time passkey enrollment link (15 minutes)")

	// 5. Boot the board.
	bootStart := time.Now()
	b, err := qemu.Start(ctx, qemu.Config{
		Kernel: filepath.Join(imgDir, "Image"), Initrd: filepath.Join(imgDir, "initramfs.cpio.gz"),
		StateDir: filepath.Join(d.out, "board"),
		HostFwd:  []qemu.HostFwd{{GuestPort: harness.ProvisioningPort, HostPort: devPort}},
		GuestFwd: []qemu.GuestFwd{{GuestPort: harness.MonitorGuestPort, HostPort: monPort}},
		Append:   fmt.Sprintf("zmonitor.device_id=%s zmonitor.serial=SN-2026-000001", deviceID),
	})
	if err != nil {
		return fmt.Errorf("board: %w", err)
	}
	defer b.Close()
	dev := &harness.Device{Board: b}
	d.mark("QEMU board qemu-virt started (cortex-a53, swtpm, virtio-gpu 240x240); console log %s", b.ConsoleLog())
	if err := dev.WaitConsole(ctx); err != nil {
		return err
	}
	if err := dev.WaitState(ctx, "UNPROVISIONED"); err != nil {
		return err
	}
	d.mark("device booted: console says UNPROVISIONED (%.2fs after QEMU start)", time.Since(bootStart).Seconds())
	if p, _, err := d.shot(ctx, dev, "1-unprovisioned"); err == nil {
		d.mark("screenshot %s", p)
	}

	// 6. Enrollment record into the inventory (the manufacturing step).
	enr, err := dev.Command(ctx, "enroll")
	if err != nil {
		return err
	}
	i, j := strings.Index(enr, "{"), strings.LastIndex(enr, "}")
	if i < 0 || j < i {
		return fmt.Errorf("enroll answered %q", enr)
	}
	enrFile := filepath.Join(d.out, "enrollment.json")
	if err := os.WriteFile(enrFile, []byte(enr[i:j+1]), 0o644); err != nil {
		return err
	}
	if out, err := d.cmd(ctx, "zm-central", "devices", "import", "--dir", centralDir, enrFile).Output(); err != nil {
		return fmt.Errorf("devices import: %w: %s", err, out)
	}
	if _, err := d.cmd(ctx, "zm-central", "devices", "label", "--dir", centralDir, deviceID, label).Output(); err != nil {
		d.mark("(could not set the label: %v)", err)
	}
	d.mark("enrollment record of %s imported into the Central Station inventory", deviceID)

	// 7. The technician presses Enable Provisioning.
	press := time.Now()
	if err := dev.PressButton(ctx); err != nil {
		return err
	}
	d.mark("button pressed (QMP system_powerdown pulses PL061 GPIO line 3)")
	q, _, err := dev.ScanQR(ctx, "")
	if err != nil {
		return err
	}
	d.mark("QR readable on the screen %.0f ms after the press: device %s at %s, expires %s", float64(time.Since(press).Milliseconds()), q.DeviceID, q.IPAddress, q.ExpiresAt)
	shotPath, shotImg, err := d.shot(ctx, dev, "2-ready-to-pair")
	if err != nil {
		return err
	}
	d.mark("screenshot %s (what the tablet's camera looks at)", shotPath)

	// 8. The technician's tablet: the web app in headless Chromium, its
	// camera looking at the screen.
	y4m := filepath.Join(d.out, "camera.y4m")
	if err := browser.WriteHandheldVideo(shotImg, y4m); err != nil {
		return err
	}
	tabletCert, err := readCert(filepath.Join(centralDir, "tablet-server.pem"))
	if err != nil {
		return err
	}
	chromium, err := browser.Start(ctx, browser.Options{Camera: browser.CameraFromFile(y4m), Trust: []*x509.Certificate{tabletCert}})
	if err != nil {
		return fmt.Errorf("tablet browser: %w", err)
	}
	defer chromium.Close()
	tabCtx, closeTab := chromium.NewTab()
	defer closeTab()
	tab := browser.NewTablet(tabCtx, origin)
	if err := tab.Open(link); err != nil {
		return err
	}
	if err := d.tabletShot(tab, "4-tablet-enroll"); err != nil {
		return err
	}
	scan := time.Now()
	if err := tab.Enroll(link); err != nil {
		return err
	}
	d.mark("tablet: passkey registered (user verification), signed in; the camera is on the device's screen")
	if err := tab.WaitPath("/preview"); err != nil {
		return err
	}
	d.mark("tablet: QR read in the page %.2fs after sign-in: %s, serial %s, label %s, at %s", time.Since(scan).Seconds(),
		tab.Text("#device-id"), tab.Text("#device-serial"), tab.Text("#device-label"), tab.Text("#device-address"))
	if err := d.tabletShot(tab, "5-tablet-device"); err != nil {
		return err
	}
	provision := time.Now()
	if err := tab.Tap("#provision"); err != nil {
		return err
	}
	if err := tab.WaitText("#result-title", "PROVISIONED"); err != nil {
		fmt.Fprintln(d.stdout, "\nconsole:\n"+b2c(dev))
		return err
	}
	d.mark("tablet: %s, %s (%.2fs after Provision)", tab.Text("#result-title"), tab.Text("#result-label"), time.Since(provision).Seconds())
	if err := d.tabletShot(tab, "6-tablet-provisioned"); err != nil {
		return err
	}
	if err := dev.WaitState(ctx, "PROVISIONED"); err != nil {
		return err
	}
	d.mark("device PROVISIONED %.2fs after Provision was tapped", time.Since(provision).Seconds())
	if p, _, err := d.shot(ctx, dev, "3-provisioned"); err == nil {
		d.mark("screenshot %s", p)
	}
	audit, _ := dev.Command(ctx, "audit 40")
	if err := os.WriteFile(filepath.Join(d.out, "device-audit.txt"), []byte(audit), 0o644); err == nil {
		d.mark("device security_audit_log tail saved to %s", filepath.Join(d.out, "device-audit.txt"))
	}
	fmt.Fprintf(d.stdout, "\nDone: %s is provisioned. Screenshots (the device's and the tablet's), logs and the Central Station are in %s.\n", deviceID, d.out)
	return nil
}

// tabletShot saves the tablet's screen (768×1024, held upright).
func (d *demo) tabletShot(tab *browser.Tablet, name string) error {
	png, err := browser.Screenshot(tab.Context(), browser.TabletPortrait())
	if err != nil {
		return err
	}
	path := filepath.Join(d.out, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		return err
	}
	d.mark("screenshot %s (the tablet)", path)
	return nil
}

func readCert(path string) (*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("%s: no PEM certificate", path)
	}
	return x509.ParseCertificate(blk.Bytes)
}

func b2c(dev *harness.Device) string { return harness.Tail(dev.ConsoleText(), 30) }

func waitPort(ctx context.Context, port int) error {
	for {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}
