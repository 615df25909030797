package manifest

import (
	"strings"
	"testing"
)

func hexOf(c byte) string { return strings.Repeat(string(c), 64) }

func validManifest() Manifest {
	return Manifest{
		Format:          Format,
		FirmwareVersion: "v1.2.3",
		Board:           "qemu-virt",
		KernelSource:    "linux-source-6.1 6.1.192-2",
		KernelVersion:   "Linux version 6.1.192 (zmonitor@zmonitor-build) #1 SMP",
		GoVersion:       "go1.26.0",
		SourceDateEpoch: 0,
		Kernel:          Part{Path: KernelFileName, Size: 10, SHA256: hexOf('a')},
		Initramfs:       Part{Path: InitramfsFileName, Size: 20, SHA256: hexOf('b')},
		Init:            Part{Path: "/init", Size: 30, SHA256: hexOf('c')},
		BoardProfile:    Part{Path: "/etc/zmonitor/board.json", Size: 4, SHA256: hexOf('d')},
		TrustAnchor:     Part{Path: "/etc/zmonitor/provisioning-anchor.pem", Size: 5, SHA256: hexOf('e')},
	}
}

func TestMarshalParseRoundTrip(t *testing.T) {
	m := validManifest()
	b, err := m.Marshal()
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	if !strings.HasSuffix(string(b), "}\n") || !strings.Contains(string(b), "\n  \"board\": \"qemu-virt\",\n") {
		t.Fatalf("not the canonical indented form:\n%s", b)
	}
	got, err := Parse(b)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if got != m {
		t.Fatalf("round trip changed the manifest:\n got %+v\nwant %+v", got, m)
	}
	again, _ := got.Marshal()
	if string(again) != string(b) {
		t.Fatal("Marshal is not stable")
	}
}

func TestParseErrors(t *testing.T) {
	good, err := validManifest().Marshal()
	if err != nil {
		t.Fatal(err)
	}
	mutate := func(f func(*Manifest)) string {
		m := validManifest()
		f(&m)
		// Bypass Marshal's validation to produce the bad input.
		return encodeUnchecked(t, m)
	}
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", "EOF"},
		{"not JSON", "nope", "invalid character"},
		{"array", "[]", "cannot unmarshal array"},
		{"trailing", string(good) + "{}", "data after"},
		{"unknown field", strings.Replace(string(good), `"format"`, `"extra": 1, "format"`, 1), "unknown field"},
		{"too big", strings.Repeat(" ", maxSize+1), "at most"},
		{"format", mutate(func(m *Manifest) { m.Format = 2 }), "format 2"},
		{"no version", mutate(func(m *Manifest) { m.FirmwareVersion = "" }), "firmwareVersion: empty"},
		{"control char", mutate(func(m *Manifest) { m.Board = "a\nb" }), "board: control character"},
		{"long text", mutate(func(m *Manifest) { m.GoVersion = strings.Repeat("g", 513) }), "goVersion: longer"},
		{"epoch", mutate(func(m *Manifest) { m.SourceDateEpoch = -1 }), "sourceDateEpoch"},
		{"kernel path with slash", mutate(func(m *Manifest) { m.Kernel.Path = "../Image" }), "kernel: path"},
		{"kernel path dotdot", mutate(func(m *Manifest) { m.Kernel.Path = ".." }), "kernel: path"},
		{"initramfs absolute", mutate(func(m *Manifest) { m.Initramfs.Path = "/etc/passwd" }), "initramfs: path"},
		{"init relative", mutate(func(m *Manifest) { m.Init.Path = "init" }), "init: path"},
		{"init unclean", mutate(func(m *Manifest) { m.Init.Path = "/a/../init" }), "init: path"},
		{"negative size", mutate(func(m *Manifest) { m.TrustAnchor.Size = -1 }), "trustAnchor: size"},
		{"short hash", mutate(func(m *Manifest) { m.BoardProfile.SHA256 = "abc" }), "boardProfile: sha256"},
		{"upper hash", mutate(func(m *Manifest) { m.BoardProfile.SHA256 = hexOf('A') }), "boardProfile: sha256"},
		{"non-hex hash", mutate(func(m *Manifest) { m.BoardProfile.SHA256 = hexOf('g') }), "boardProfile: sha256"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Parse error %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestMarshalRefusesInvalid(t *testing.T) {
	m := validManifest()
	m.Kernel.SHA256 = ""
	if _, err := m.Marshal(); err == nil {
		t.Fatal("Marshal accepted an invalid manifest")
	}
}

func FuzzParse(f *testing.F) {
	good, err := validManifest().Marshal()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"format":1,"kernel":{"path":"../x"}}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"format":1}{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Parse(b)
		if err != nil {
			return
		}
		if err := m.Validate(); err != nil {
			t.Fatalf("Parse returned an invalid manifest: %v", err)
		}
		out, err := m.Marshal()
		if err != nil {
			t.Fatalf("Marshal of a parsed manifest: %v", err)
		}
		back, err := Parse(out)
		if err != nil || back != m {
			t.Fatalf("re-parse: %v, changed=%v", err, back != m)
		}
	})
}

func validUEFI() *UEFI {
	return &UEFI{
		Image: Part{Path: EFIFileName, Size: 40, SHA256: hexOf('f')}, Cmdline: "console=ttyAMA0 quiet",
		Stub: "systemd-boot-efi 252.39-1~deb12u2", Authenticode: hexOf('1'), SigningCert: hexOf('2'),
		PCRs: []PCR{{Index: 4, Bank: "sha256", Value: hexOf('3')}, {Index: 7, Bank: "sha256", Value: hexOf('4')}},
	}
}

func TestUEFISectionRoundTripAndErrors(t *testing.T) {
	m := validManifest()
	m.Board = "qemu-virt-secure"
	m.UEFI = validUEFI()
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	got, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.UEFI == nil || got.UEFI.Authenticode != hexOf('1') || len(got.UEFI.PCRs) != 2 || got.UEFI.PCRs[1] != m.UEFI.PCRs[1] {
		t.Fatalf("round trip: %+v", got.UEFI)
	}
	for name, breakIt := range map[string]func(u *UEFI){
		"image path":      func(u *UEFI) { u.Image.Path = "../zmonitor.efi" },
		"authenticode":    func(u *UEFI) { u.Authenticode = "ABC" },
		"signing cert":    func(u *UEFI) { u.SigningCert = strings.ToUpper(hexOf('a')) },
		"cmdline control": func(u *UEFI) { u.Cmdline = "quiet\nrdinit=/bin/sh" },
		"no PCRs":         func(u *UEFI) { u.PCRs = nil },
		"PCR twice":       func(u *UEFI) { u.PCRs[1].Index = 4 },
		"PCR 24":          func(u *UEFI) { u.PCRs[0].Index = 24 },
		"sha1 bank":       func(u *UEFI) { u.PCRs[0].Bank = "sha1" },
		"short value":     func(u *UEFI) { u.PCRs[0].Value = "00" },
	} {
		m := validManifest()
		m.UEFI = validUEFI()
		breakIt(m.UEFI)
		if _, err := Parse([]byte(encodeUnchecked(t, m))); err == nil || !strings.Contains(err.Error(), "uefi") {
			t.Errorf("%s: Parse = %v, want an error about the uefi section", name, err)
		}
	}
}
