package e2e

import (
	"github.com/zmonitor/firmware/internal/testkit/harness"

	"bytes"
	"context"
	"debug/pe"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zmonitor/firmware/image/kernel"
	"github.com/zmonitor/firmware/image/manifest"
	"github.com/zmonitor/firmware/image/uefi"
	"github.com/zmonitor/firmware/qemu"
)

var (
	secureBoard harness.SecureBoard
	secureErr   error
	secureOnce  sync.Once
)

// needSecure skips without the secure board's tools, kernel, keys or
// firmware (make kernel u-boot build them).
func needSecure(t *testing.T) harness.SecureBoard {
	t.Helper()
	need(t)
	for _, tool := range []string{"osslsigncode", "sbverify", "sbattach", "cert-to-efi-sig-list", "sign-efi-sig-list", "swtpm_setup", uefi.DefaultObjcopy} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not found: run scripts/install-deps.sh", tool)
		}
	}
	secureOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		secureBoard, secureErr = harness.Secure(ctx)
	})
	if errors.Is(secureErr, kernel.ErrNotBuilt) || errors.Is(secureErr, uefi.ErrNotBuilt) {
		t.Skipf("%v (make kernel u-boot)", secureErr)
	}
	if secureErr != nil {
		t.Fatal(secureErr)
	}
	return secureBoard
}

// refusedRE is what U-Boot prints when Secure Boot refuses the image
// (lib/efi_loader/efi_image_loader.c, then cmd/bootefi.c).
var refusedRE = regexp.MustCompile(`Image not authenticated\s+Loading image failed`)

// TestSecureBootRunsOnlyTheSignedImage boots the signed firmware image on
// the qemu-virt-secure board (it must reach UNPROVISIONED), then three
// images the firmware must refuse: the same program without its signature,
// signed by a key that is not in db, and signed but with one byte changed.
func TestSecureBootRunsOnlyTheSignedImage(t *testing.T) {
	e := need(t)
	s := needSecure(t)
	c := newCentral(t)
	dir := t.TempDir()
	_, err := s.Image(e.firmware, c.AnchorPEM(), s.Keys, harness.SecureCmdline, filepath.Join(dir, "image"))
	if err != nil {
		t.Fatal(err)
	}
	signed := filepath.Join(dir, "image", manifest.EFIFileName)

	t.Run("signed", func(t *testing.T) {
		ctx := ctxT(t, 3*time.Minute)
		cfg := s.Config(signed, filepath.Join(t.TempDir(), "board"))
		cfg.GuestFwd = []qemu.GuestFwd{{GuestPort: harness.MonitorGuestPort, HostPort: c.MonitorPort()}}
		b, err := qemu.Start(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		d := &harness.Device{Board: b}
		if err := d.WaitConsole(ctx); err != nil {
			t.Fatalf("the signed image did not come up: %v", err)
		}
		if err := d.WaitState(ctx, "UNPROVISIONED"); err != nil {
			t.Fatalf("the signed image did not come up: %v\n%s", err, harness.Tail(d.ConsoleText(), 2000))
		}
		if refusedRE.MatchString(d.ConsoleText()) {
			t.Error("the firmware refused the signed image")
		}
	})

	unsigned := filepath.Join(dir, "unsigned.efi")
	b, err := os.ReadFile(signed)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(unsigned, b, 0o644); err != nil {
		t.Fatal(err)
	}
	// sbattach --remove drops the signature in place.
	if out, err := exec.Command("sbattach", "--remove", unsigned).CombinedOutput(); err != nil {
		t.Fatalf("sbattach --remove: %v: %s", err, out)
	}
	otherKeys := filepath.Join(dir, "other-keys")
	if err := s.MakeKeys(context.Background(), otherKeys, "Someone else"); err != nil {
		t.Fatal(err)
	}
	foreign := filepath.Join(dir, "foreign.efi")
	other := uefi.Signer{Key: filepath.Join(otherKeys, "db.key"), Cert: filepath.Join(otherKeys, "db.crt")}
	if err := other.Sign(context.Background(), unsigned, foreign); err != nil {
		t.Fatal(err)
	}
	modified := filepath.Join(dir, "modified.efi")
	if err := flipByteIn(signed, ".cmdline", modified); err != nil {
		t.Fatal(err)
	}
	for _, img := range []struct{ name, path string }{
		{"unsigned", unsigned}, {"signed by another key", foreign}, {"one byte changed", modified},
	} {
		t.Run(img.name, func(t *testing.T) {
			ctx := ctxT(t, 3*time.Minute)
			b, err := qemu.Start(ctx, s.Config(img.path, filepath.Join(t.TempDir(), "board")))
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			if _, err := b.Watch(ctx, refusedRE); err != nil {
				t.Fatalf("no refusal from the firmware: %v\n%s", err, harness.Tail(b.ConsoleText(), 2000))
			}
			// The refusal comes before any kernel code runs: neither the
			// kernel's EFI stub nor /init has said anything.
			if text := b.ConsoleText(); strings.Contains(text, "EFI stub") || strings.Contains(text, "zmonitor") {
				t.Errorf("the refused image ran:\n%s", harness.Tail(text, 2000))
			}
		})
	}
	// Nobody at the serial console can stop U-Boot, edit its environment
	// or boot something else: keys typed from QEMU's start to the
	// firmware's banner and after it (what stops a stock U-Boot's
	// autoboot, then commands that would boot without verification) change
	// nothing: the unsigned image is still refused and no prompt appears.
	t.Run("keys typed at the console", func(t *testing.T) {
		ctx := ctxT(t, 3*time.Minute)
		b, err := qemu.Start(ctx, s.Config(unsigned, filepath.Join(t.TempDir(), "board")))
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		keys := []byte(" \x03\r\n")
		if _, err := b.WriteConsole(keys); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Watch(ctx, firmwareBannerRE); err != nil {
			t.Fatalf("no U-Boot banner: %v\n%s", err, harness.Tail(b.ConsoleText(), 2000))
		}
		for _, k := range [][]byte{keys, keys, []byte("setenv bootcmd 'echo console-took-over'; boot\r"), []byte("bootefi ${kernel_addr_r}\r")} {
			if _, err := b.WriteConsole(k); err != nil {
				// The firmware may have powered the board off already.
				break
			}
		}
		if _, err := b.Watch(ctx, refusedRE); err != nil {
			t.Fatalf("no refusal from the firmware: %v\n%s", err, harness.Tail(b.ConsoleText(), 2000))
		}
		if err := b.Wait(ctx); err != nil {
			t.Fatalf("the board did not power off after the refusal: %v", err)
		}
		text := b.ConsoleText()
		for _, bad := range []string{"=> ", "console-took-over", "Hit any key", "EFI stub", "zmonitor"} {
			if strings.Contains(text, bad) {
				t.Errorf("console shows %q: the console reached the firmware or the image ran\n%s", bad, harness.Tail(text, 2000))
			}
		}
	})
}

// flipByteIn copies the PE image in to out with one byte in the middle of
// section changed.
func flipByteIn(in, section, out string) error {
	b, err := os.ReadFile(in)
	if err != nil {
		return err
	}
	f, err := pe.NewFile(bytes.NewReader(b))
	if err != nil {
		return err
	}
	s := f.Section(section)
	if s == nil {
		return errors.New("no section " + section)
	}
	b[s.Offset+s.Size/2] ^= 0x20
	return os.WriteFile(out, b, 0o644)
}

var (
	measuredRE = regexp.MustCompile(`measured: pcr4=([0-9a-f]{64}) pcr7=([0-9a-f]{64})`)
	eventLogRE = regexp.MustCompile(`measured: eventlog=([A-Za-z0-9+/=]+)`)
	measErrRE  = regexp.MustCompile(`measured: error: [^\r\n]*`)
)

// TestMeasuredBootMatchesManifest boots a signed image whose /init reads
// PCR 4 and 7 from the TPM and the firmware's event log
// (/sys/kernel/security/tpm0/binary_bios_measurements), and checks that
// the manifest's expected PCRs, the TPM's values and tpm2_eventlog's replay
// of the log all agree, and that the log measured the image's Authenticode
// digest.
func TestMeasuredBootMatchesManifest(t *testing.T) {
	need(t)
	s := needSecure(t)
	if _, err := exec.LookPath("tpm2_eventlog"); err != nil {
		t.Skip("tpm2_eventlog not found: run scripts/install-deps.sh")
	}
	c := newCentral(t)
	dir := t.TempDir()
	init := filepath.Join(dir, "measuredinit")
	cmd := exec.Command("go", "build", "-trimpath", "-o", init, "./internal/e2e/testdata/measuredinit")
	cmd.Dir = repoRoot(t)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=arm64")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build measuredinit: %v: %s", err, out)
	}
	m, err := s.Image(init, c.AnchorPEM(), s.Keys, "console=ttyAMA0 panic=-1 quiet", filepath.Join(dir, "image"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t, 3*time.Minute)
	b, err := qemu.Start(ctx, s.Config(filepath.Join(dir, "image", manifest.EFIFileName), filepath.Join(dir, "board")))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	text := b.ConsoleText()
	if e := measErrRE.FindString(text); e != "" {
		t.Fatal(e)
	}
	pm := measuredRE.FindStringSubmatch(text)
	lm := eventLogRE.FindStringSubmatch(text)
	if pm == nil || lm == nil {
		t.Fatalf("no measurements on the console:\n%s", harness.Tail(text, 2000))
	}
	tpmPCR := map[int]string{4: pm[1], 7: pm[2]}
	want := map[int]string{}
	for _, p := range m.UEFI.PCRs {
		want[p.Index] = p.Value
	}
	log, err := base64.StdEncoding.DecodeString(lm[1])
	if err != nil {
		t.Fatal(err)
	}
	logFile := filepath.Join(dir, "binary_bios_measurements")
	if err := os.WriteFile(logFile, log, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("tpm2_eventlog", logFile).CombinedOutput()
	if err != nil {
		t.Fatalf("tpm2_eventlog: %v: %s", err, out)
	}
	replayed := eventlogPCRs(string(out))
	for _, i := range []int{4, 7} {
		if tpmPCR[i] != replayed[i] {
			t.Errorf("PCR %d: TPM %s, tpm2_eventlog's replay of the log %s", i, tpmPCR[i], replayed[i])
		}
		if want[i] != tpmPCR[i] {
			t.Errorf("PCR %d: manifest expects %s, TPM has %s", i, want[i], tpmPCR[i])
		}
	}
	if !strings.Contains(strings.ToLower(string(out)), m.UEFI.Authenticode) {
		t.Errorf("the event log has no measurement of the image's Authenticode digest %s", m.UEFI.Authenticode)
	}
	if t.Failed() {
		t.Logf("tpm2_eventlog:\n%s", out)
	}
}

// eventlogPCRs reads the SHA-256 PCR values from tpm2_eventlog's final
// "pcrs:" section.
func eventlogPCRs(out string) map[int]string {
	pcrs := map[int]string{}
	i := strings.LastIndex(out, "pcrs:")
	if i < 0 {
		return pcrs
	}
	inSHA256 := false
	for _, line := range strings.Split(out[i:], "\n") {
		f := strings.Fields(strings.ReplaceAll(line, ":", " "))
		switch {
		case len(f) == 1 && strings.HasPrefix(f[0], "sha"):
			inSHA256 = f[0] == "sha256"
		case inSHA256 && len(f) == 2 && strings.HasPrefix(f[1], "0x"):
			var n int
			for _, c := range f[0] {
				n = n*10 + int(c-'0')
			}
			if v, err := hex.DecodeString(f[1][2:]); err == nil && len(v) == 32 {
				pcrs[n] = hex.EncodeToString(v)
			}
		}
	}
	return pcrs
}
