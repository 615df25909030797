package qemu_test

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"image"
	"image/color"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/zmonitor/firmware/image/initramfs"
	"github.com/zmonitor/firmware/image/kernel"
	"github.com/zmonitor/firmware/qemu"
)

// needBoard skips the test when the board's programs or the kernel are
// missing, and returns the kernel Image path.
func needBoard(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("boots QEMU; skipped with -short")
	}
	for _, tool := range []string{"qemu-system-aarch64", "swtpm", "mkfs.ext4", "socat"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not found: run scripts/install-deps.sh", tool)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	k, err := kernel.Locate(ctx, kernel.Options{})
	if errors.Is(err, kernel.ErrNotBuilt) {
		t.Skipf("%v; or set %s to an Image", err, kernel.EnvKernel)
	}
	if err != nil {
		t.Fatalf("locate kernel: %v", err)
	}
	return k
}

// buildTestInitramfs cross-compiles testdata/testinit and packs it as /init.
func buildTestInitramfs(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "testinit")
	build := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, "./testdata/testinit")
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=arm64")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build testinit: %v\n%s", err, out)
	}
	initBin, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "initramfs.cpio.gz")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := initramfs.Build(initramfs.Spec{Init: initBin, BoardProfile: []byte(`{"name":"qemu-test"}`), TrustAnchor: selfSigned(t)}, f); err != nil {
		t.Fatalf("build initramfs: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func selfSigned(t *testing.T) []byte {
	t.Helper()
	key := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "qemu test anchor"},
		NotBefore: time.Unix(0, 0), NotAfter: time.Unix(1<<31-1, 0),
		IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(nil, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func expect(ctx context.Context, t *testing.T, b *qemu.Board, pattern string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	m, err := b.Expect(ctx, regexp.MustCompile(pattern))
	if err != nil {
		t.Fatalf("console: %v\nconsole so far:\n%s", err, b.ConsoleText())
	}
	return m
}

// quadrants are the colours testinit draws: red, green / blue, white.
var quadrants = []struct {
	x, y int
	c    color.RGBA
}{
	{60, 60, color.RGBA{255, 0, 0, 255}}, {180, 60, color.RGBA{0, 255, 0, 255}},
	{60, 180, color.RGBA{0, 0, 255, 255}}, {180, 180, color.RGBA{255, 255, 255, 255}},
}

func patternShown(img image.Image) bool {
	if img.Bounds().Dx() != 240 || img.Bounds().Dy() != 240 {
		return false
	}
	for _, q := range quadrants {
		if color.RGBAModel.Convert(img.At(q.x, q.y)) != q.c {
			return false
		}
	}
	return true
}

// TestBoardBoot boots the cached kernel with testinit on the qemu-virt
// board and drives every handle: console, TPM, screen, button, hostfwd,
// clean power off, power cut, and boots again on the same disk and TPM.
func TestBoardBoot(t *testing.T) {
	kernelPath := needBoard(t)
	dir := t.TempDir()
	initrd := buildTestInitramfs(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	// A host service the guest reaches at 10.0.2.100:80 (guestfwd).
	svc, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	go func() {
		for {
			c, err := svc.Accept()
			if err != nil {
				return
			}
			_, _ = c.Write([]byte("hello from the host\n"))
			c.Close()
		}
	}()
	b, err := qemu.Start(ctx, qemu.Config{
		Kernel: kernelPath, Initrd: initrd, StateDir: filepath.Join(dir, "state"),
		HostFwd:  []qemu.HostFwd{{GuestPort: 8444}},
		GuestFwd: []qemu.GuestFwd{{GuestPort: 80, HostPort: svc.Addr().(*net.TCPAddr).Port}},
	})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	defer b.Close()
	t.Logf("qemu-system-aarch64 %s", strings.Join(b.Args(), " "))

	expect(ctx, t, b, `testinit: start`)
	t.Logf("QEMU start → /init marker: %v", time.Since(b.Started()).Round(time.Millisecond))
	expect(ctx, t, b, `testinit: boot 1\r?\n`)
	expect(ctx, t, b, `testinit: tpm ok`)
	expect(ctx, t, b, `testinit: fb 240x240 drawn`)
	lease := expect(ctx, t, b, `testinit: lease .+ in \S+\r?\n`)
	t.Log(strings.TrimSpace(lease))
	// With restrict=on QEMU's DHCP server sends no router and no DNS
	// option: the guest reaches only 10.0.2.0/24 (guestfwd on 10.0.2.100).
	if !strings.Contains(lease, "lease 10.0.2.15/24 via invalid IP dns []") {
		t.Errorf("DHCP lease from QEMU: %q", lease)
	}
	expect(ctx, t, b, `testinit: listening on 8444`)
	expect(ctx, t, b, `testinit: gpio watching line 3`)
	expect(ctx, t, b, `testinit: ready`)

	t.Run("hostfwd", func(t *testing.T) {
		addr := b.GuestPort(8444)
		if !strings.HasPrefix(addr, "127.0.0.1:") {
			t.Fatalf("GuestPort(8444) = %q", addr)
		}
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatalf("dial %s: %v", addr, err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil || line != "hello from the guest\n" {
			t.Fatalf("read through hostfwd: %q, %v", line, err)
		}
	})

	t.Run("guestfwd", func(t *testing.T) {
		if err := b.SendLine("dial 10.0.2.100:80"); err != nil {
			t.Fatal(err)
		}
		expect(ctx, t, b, `testinit: got "hello from the host\\n"`)
	})

	t.Run("console", func(t *testing.T) {
		if err := b.SendLine("echo ping-42"); err != nil {
			t.Fatal(err)
		}
		expect(ctx, t, b, `testinit: echo ping-42`)
	})

	t.Run("button", func(t *testing.T) {
		start := time.Now()
		if err := b.PressButton(ctx); err != nil {
			t.Fatal(err)
		}
		expect(ctx, t, b, `testinit: edge rising`)
		t.Logf("press → rising edge on the console: %v", time.Since(start).Round(time.Millisecond))
		expect(ctx, t, b, `testinit: edge falling`)
	})

	t.Run("screenshot", func(t *testing.T) {
		// The fbdev emulation flushes damage to virtio-gpu from a worker;
		// poll briefly.
		deadline := time.Now().Add(5 * time.Second)
		for {
			img, err := b.Screenshot(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if patternShown(img) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("screenshot %v does not show the quadrants: %v %v %v %v", img.Bounds(),
					img.At(60, 60), img.At(180, 60), img.At(60, 180), img.At(180, 180))
			}
			time.Sleep(50 * time.Millisecond)
		}
	})

	t.Run("clean power off keeps data", func(t *testing.T) {
		if err := b.SendLine("poweroff"); err != nil {
			t.Fatal(err)
		}
		if err := b.Wait(ctx); err != nil {
			t.Fatalf("Wait: %v", err)
		}
		if b.Running() {
			t.Fatal("still running after power off")
		}
		if err := b.StartAgain(ctx); err != nil {
			t.Fatalf("StartAgain: %v", err)
		}
		expect(ctx, t, b, `testinit: boot 2\r?\n`)
		expect(ctx, t, b, `testinit: tpm ok`)
	})

	t.Run("power cut", func(t *testing.T) {
		expect(ctx, t, b, `testinit: ready`)
		if err := b.PowerCut(); err != nil {
			t.Fatal(err)
		}
		if err := b.StartAgain(ctx); err != nil {
			t.Fatalf("StartAgain: %v", err)
		}
		expect(ctx, t, b, `testinit: boot 3\r?\n`)
		expect(ctx, t, b, `testinit: tpm ok`)
	})

	if err := b.Stop(ctx); err != nil {
		t.Errorf("Stop: %v", err)
	}
	log, err := os.ReadFile(b.ConsoleLog())
	if err != nil || !strings.Contains(string(log), "testinit: boot 3") {
		t.Errorf("console log %s lacks the third boot (%v)", b.ConsoleLog(), err)
	}
}
