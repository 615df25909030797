package kernel

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zmonitor/firmware/image/initramfs"
)

// bootNodes are the nodes testdata/bootcheck must report on this board.
var bootNodes = []string{
	"/dev/console", "/dev/null", "/dev/tpm0", "/dev/tpmrm0",
	"/dev/fb0", "/dev/gpiochip0", "/dev/vda", "/dev/rtc0", "/sys/class/net/eth0",
}

// TestBootOnQEMU boots the cached kernel with a throwaway /init under the
// qemu-virt board's devices and checks the kernel created every node the
// firmware needs. Set ZM_KERNEL to test another Image.
func TestBootOnQEMU(t *testing.T) {
	for _, tool := range []string{"qemu-system-aarch64", "swtpm"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not found: run scripts/install-deps.sh", tool)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	kernelPath, err := Locate(ctx, Options{})
	if errors.Is(err, ErrNotBuilt) {
		t.Skipf("%v; or set %s to an Image", err, EnvKernel)
	}
	if err != nil {
		t.Fatalf("locate kernel: %v", err)
	}
	t.Logf("kernel %s", kernelPath)

	dir := t.TempDir()
	initrd := buildBootcheckInitramfs(ctx, t, dir)

	disk := filepath.Join(dir, "disk.img")
	if err := os.WriteFile(disk, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(disk, 8<<20); err != nil {
		t.Fatal(err)
	}

	tpmSock := startSWTPM(ctx, t, dir)

	args := qemuArgs(kernelPath, initrd, tpmSock, disk)
	t.Logf("qemu-system-aarch64 %s", strings.Join(args, " "))
	cmd := exec.CommandContext(ctx, "qemu-system-aarch64", args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatalf("start qemu: %v", err)
	}
	var (
		mu       sync.Mutex
		console  bytes.Buffer
		initTime time.Duration
	)
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			mu.Lock()
			if initTime == 0 && strings.Contains(sc.Text(), "hello from init") {
				initTime = time.Since(start)
			}
			console.WriteString(sc.Text() + "\n")
			mu.Unlock()
		}
	}()
	<-done
	waitErr := cmd.Wait()
	total := time.Since(start)
	out := console.String()
	if waitErr != nil {
		t.Fatalf("qemu: %v (did /init power off?)\nconsole:\n%s", waitErr, out)
	}
	if initTime == 0 {
		t.Fatalf("/init never ran\nconsole:\n%s", out)
	}
	for _, n := range bootNodes {
		if !strings.Contains(out, "have "+n+"\n") {
			t.Errorf("kernel did not create %s", n)
		}
	}
	for _, want := range []string{"gpio line 3 free", "getrandom ok", "bootcheck done"} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("console lacks %q", want)
		}
	}
	if strings.Contains(out, "Kernel panic") {
		t.Errorf("kernel panicked")
	}
	if t.Failed() {
		t.Logf("console:\n%s", out)
	}
	t.Logf("QEMU start → /init: %v, → power off: %v", initTime.Round(time.Millisecond), total.Round(time.Millisecond))
}

// qemuArgs is the qemu-system-aarch64 command line of the boot check: the
// qemu-virt board with console on stdio, TPM through swtpm's control socket,
// a virtio-gpu panel, a raw virtio-blk disk and restricted user networking.
func qemuArgs(kernel, initrd, tpmSock, disk string) []string {
	return []string{
		"-M", "virt", "-cpu", "cortex-a53", "-smp", "1", "-m", "256",
		"-nographic", "-monitor", "none", "-no-reboot",
		"-kernel", kernel, "-initrd", initrd,
		"-append", "console=ttyAMA0 panic=-1",
		"-chardev", "socket,id=chrtpm,path=" + tpmSock,
		"-tpmdev", "emulator,id=tpm0,chardev=chrtpm",
		"-device", "tpm-tis-device,tpmdev=tpm0",
		"-device", "virtio-gpu-pci,xres=240,yres=240",
		"-drive", "if=none,id=d0,file=" + disk + ",format=raw",
		"-device", "virtio-blk-pci,drive=d0",
		"-netdev", "user,id=n0,restrict=on",
		"-device", "virtio-net-pci,netdev=n0,romfile=",
	}
}

// buildBootcheckInitramfs cross-compiles testdata/bootcheck and packs it as
// /init with this package's initramfs builder.
func buildBootcheckInitramfs(ctx context.Context, t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "bootcheck")
	build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, "./testdata/bootcheck")
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=arm64")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build bootcheck: %v\n%s", err, out)
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
	err = initramfs.Build(initramfs.Spec{
		Init:         initBin,
		BoardProfile: []byte(`{"name":"bootcheck"}`),
		TrustAnchor:  selfSigned(t),
	}, f)
	if err != nil {
		t.Fatalf("build initramfs: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// startSWTPM starts a TPM 2.0 emulator whose control socket QEMU connects
// to, and returns the socket path.
func startSWTPM(ctx context.Context, t *testing.T, dir string) string {
	t.Helper()
	state := filepath.Join(dir, "tpm")
	if err := os.Mkdir(state, 0o700); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "swtpm.sock")
	cmd := exec.CommandContext(ctx, "swtpm", "socket", "--tpm2",
		"--ctrl", "type=unixio,path="+sock,
		"--tpmstate", "dir="+state, "--terminate")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start swtpm: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	// swtpm creates the socket right after start; wait for it (bounded).
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(sock); err == nil {
			return sock
		}
		if time.Now().After(deadline) {
			t.Fatalf("swtpm did not create %s: %s", sock, stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func selfSigned(t *testing.T) []byte {
	t.Helper()
	key := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "bootcheck anchor"},
		NotBefore:    time.Unix(0, 0),
		NotAfter:     time.Unix(1<<31-1, 0),
		IsCA:         true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(nil, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(fmt.Errorf("self-signed anchor: %w", err))
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
