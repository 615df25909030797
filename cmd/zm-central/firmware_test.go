package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zmonitor/firmware/image/manifest"
)

func secureManifest(t *testing.T, img string) string {
	t.Helper()
	h := func(c string) string { return strings.Repeat(c, 64) }
	m := manifest.Manifest{
		Format: manifest.Format, FirmwareVersion: "v1.2.3", Board: "qemu-virt-secure",
		KernelSource: "linux-source-6.1 6.1.192-2", KernelVersion: "Linux version 6.1.192", GoVersion: "go1.26.0",
		Kernel:       manifest.Part{Path: manifest.KernelFileName, Size: 10, SHA256: h("a")},
		Initramfs:    manifest.Part{Path: manifest.InitramfsFileName, Size: 20, SHA256: h("b")},
		Init:         manifest.Part{Path: "/init", Size: 30, SHA256: h("c")},
		BoardProfile: manifest.Part{Path: "/etc/zmonitor/board.json", Size: 4, SHA256: h("d")},
		TrustAnchor:  manifest.Part{Path: "/etc/zmonitor/provisioning-anchor.pem", Size: 5, SHA256: h("e")},
		UEFI: &manifest.UEFI{
			Image: manifest.Part{Path: manifest.EFIFileName, Size: 40, SHA256: h("f")}, Cmdline: "console=ttyAMA0", Stub: "systemd-boot-efi 252",
			Authenticode: img, SigningCert: h("1"),
			PCRs: []manifest.PCR{{Index: 4, Bank: "sha256", Value: h("4")}, {Index: 7, Bank: "sha256", Value: h("7")}},
		},
	}
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "manifest.json")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestFirmwareAllowListCommands(t *testing.T) {
	dir, _ := initCentral(t)
	img := strings.Repeat("9", 64)
	if code, out, errb := runCLI(t, "firmware", "allow", "--dir", dir, secureManifest(t, img)); code != 0 || !strings.Contains(out, img) {
		t.Fatalf("firmware allow: %d %q %q", code, out, errb)
	}
	if code, out, _ := runCLI(t, "firmware", "list", "--dir", dir); code != 0 || !strings.Contains(out, img+"\tallowed\tv1.2.3\tqemu-virt-secure") {
		t.Fatalf("firmware list: %d %q", code, out)
	}
	if code, _, errb := runCLI(t, "firmware", "deny", "--dir", dir, img); code != 0 {
		t.Fatalf("firmware deny: %d %q", code, errb)
	}
	if _, out, _ := runCLI(t, "firmware", "list", "--dir", dir); !strings.Contains(out, img+"\tdenied") {
		t.Errorf("after deny: %q", out)
	}
	if code, _, errb := runCLI(t, "firmware", "deny", "--dir", dir, strings.Repeat("8", 64)); code == 0 || !strings.Contains(errb, "not found") {
		t.Errorf("deny of an unknown image: %d %q", code, errb)
	}
	// A manifest the image tools would not accept is refused.
	b, _ := os.ReadFile(secureManifest(t, img))
	plain := strings.Replace(string(b), `"uefi"`, `"uefiX"`, 1)
	p := filepath.Join(t.TempDir(), "plain.json")
	_ = os.WriteFile(p, []byte(plain), 0o600)
	if code, _, _ := runCLI(t, "firmware", "allow", "--dir", dir, p); code == 0 {
		t.Error("a manifest with an unknown field was allowed")
	}
	if code, out, _ := runCLI(t, "audit", "export", "--dir", dir); code != 0 || !strings.Contains(out, "firmware.allow") || !strings.Contains(out, "firmware.deny") {
		t.Errorf("audit lacks firmware.allow/deny: %q", out)
	}
}
