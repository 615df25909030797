package uefi

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"debug/pe"
	"encoding/hex"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// needTools skips when a host tool of the secure image build is missing
// (scripts/install-deps.sh installs them).
func needTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not found: run scripts/install-deps.sh", tool)
		}
	}
	if _, err := os.Stat(DefaultStub); err != nil {
		t.Skipf("%s: %v (systemd-boot-efi:arm64)", DefaultStub, err)
	}
}

// testSigner writes an RSA-2048 key and a self-signed certificate, as
// scripts/uefi-keys.sh makes them, and returns the signer and the DER.
func testSigner(t *testing.T, cn string) (Signer, []byte) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	s := Signer{Key: filepath.Join(dir, "db.key"), Cert: filepath.Join(dir, "db.crt")}
	kb := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	cb := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := os.WriteFile(s.Key, kb, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.Cert, cb, 0o644); err != nil {
		t.Fatal(err)
	}
	return s, der
}

var osslDigest = regexp.MustCompile(`Calculated message digest\s*:\s*([0-9A-Fa-f]{64})`)

// The digest must be the one osslsigncode computes for the signed file
// (and the firmware measures: see the board test in internal/e2e).
func TestAuthenticodeMatchesOsslsigncode(t *testing.T) {
	needTools(t, "sbverify", "osslsigncode")
	s, _ := testSigner(t, "test db")
	signed := filepath.Join(t.TempDir(), "stub.efi")
	if err := s.Sign(context.Background(), DefaultStub, signed); err != nil {
		t.Fatal(err)
	}
	out, _ := exec.Command("osslsigncode", "verify", "-in", signed).CombinedOutput()
	m := osslDigest.FindSubmatch(out)
	if m == nil {
		t.Fatalf("no digest in osslsigncode's output:\n%s", out)
	}
	b, err := os.ReadFile(signed)
	if err != nil {
		t.Fatal(err)
	}
	d, err := Authenticode(b)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := hex.EncodeToString(d[:]), strings.ToLower(string(m[1])); got != want {
		t.Errorf("Authenticode = %s, osslsigncode says %s", got, want)
	}
	// One byte of code changed: another digest.
	b[0x1100] ^= 1
	d2, err := Authenticode(b)
	if err != nil {
		t.Fatal(err)
	}
	if d2 == d {
		t.Error("a changed byte left the digest as it was")
	}
	if _, err := Authenticode([]byte("MZ not a PE image")); err == nil {
		t.Error("Authenticode of garbage succeeded")
	}
}

func TestSignVerifyRefusesAnotherCertificate(t *testing.T) {
	needTools(t, "osslsigncode", "sbverify")
	s, _ := testSigner(t, "test db")
	other, _ := testSigner(t, "another db")
	signed := filepath.Join(t.TempDir(), "stub.efi")
	if err := s.Sign(context.Background(), DefaultStub, signed); err != nil {
		t.Fatal(err)
	}
	other.Key = ""
	if err := other.Verify(context.Background(), signed); err == nil {
		t.Error("sbverify accepted a signature by another key")
	}
}

// The unified image must carry every part where systemd-stub looks for it.
func TestBuildUKIHasEverySection(t *testing.T) {
	needTools(t, DefaultObjcopy)
	dir := t.TempDir()
	initrd := filepath.Join(dir, "initrd")
	if err := os.WriteFile(initrd, bytes.Repeat([]byte("initramfs"), 1000), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "uki.efi")
	// The stub stands in for the kernel: any arm64 PE image will do here.
	u := UKI{Kernel: DefaultStub, Initrd: initrd, Cmdline: "console=ttyAMA0 quiet", OSRelease: "ID=zmonitor\n"}
	if err := BuildUKI(context.Background(), u, out); err != nil {
		t.Fatal(err)
	}
	f, err := pe.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	kernel, _ := os.ReadFile(DefaultStub)
	want := map[string][]byte{
		".osrel": []byte("ID=zmonitor\n"), ".cmdline": []byte("console=ttyAMA0 quiet\x00"),
		".linux": kernel, ".initrd": bytes.Repeat([]byte("initramfs"), 1000),
	}
	var last uint32
	for _, name := range []string{".osrel", ".cmdline", ".linux", ".initrd"} {
		s := f.Section(name)
		if s == nil {
			t.Fatalf("no %s section", name)
		}
		data, err := s.Data()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(data[:len(want[name])], want[name]) {
			t.Errorf("%s holds other bytes", name)
		}
		if s.VirtualAddress < last {
			t.Errorf("%s at %#x overlaps the section before it (ends %#x)", name, s.VirtualAddress, last)
		}
		last = s.VirtualAddress + s.VirtualSize
	}
	u.Cmdline = "console=ttyAMA0\nrdinit=/bin/sh"
	if err := BuildUKI(context.Background(), u, out); err == nil || !strings.Contains(err.Error(), "printable") {
		t.Errorf("a command line with a newline: %v", err)
	}
	u.Cmdline, u.Kernel = "quiet", initrd
	if err := BuildUKI(context.Background(), u, out); err == nil || !strings.Contains(err.Error(), "EFI program") {
		t.Errorf("a kernel that is not an EFI program: %v", err)
	}
}

// SignatureList must write what efitools' cert-to-efi-sig-list writes, and
// FirstX509 read it back.
func TestSignatureListMatchesEfitools(t *testing.T) {
	needTools(t, "cert-to-efi-sig-list")
	s, der := testSigner(t, "test db")
	const owner = "8fd677c6-16bb-4fec-a1e1-9dbf68dff2e0"
	esl := filepath.Join(t.TempDir(), "db.esl")
	if out, err := exec.Command("cert-to-efi-sig-list", "-g", owner, s.Cert, esl).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	want, err := os.ReadFile(esl)
	if err != nil {
		t.Fatal(err)
	}
	g, err := ParseGUID(owner)
	if err != nil {
		t.Fatal(err)
	}
	if got := SignatureList(g, der); !bytes.Equal(got, want) {
		t.Errorf("SignatureList:\n%x\nefitools:\n%x", got, want)
	}
	o, cert, err := FirstX509(want)
	if err != nil || o != g || !bytes.Equal(cert, der) {
		t.Errorf("FirstX509 = %x, %d bytes, %v", o, len(cert), err)
	}
}

func TestParseGUID(t *testing.T) {
	g, err := ParseGUID("8be4df61-93ca-11d2-aa0d-00e098032b8c")
	if err != nil {
		t.Fatal(err)
	}
	// EFI_GLOBAL_VARIABLE as it is laid out in memory.
	if want := "61dfe48bca93d211aa0d00e098032b8c"; hex.EncodeToString(g[:]) != want {
		t.Errorf("got %x, want %s", g, want)
	}
	for _, bad := range []string{"", "8be4df61-93ca-11d2-aa0d-00e098032b8", "8be4df61x93ca-11d2-aa0d-00e098032b8c", "zzzzzzzz-93ca-11d2-aa0d-00e098032b8c"} {
		if _, err := ParseGUID(bad); err == nil {
			t.Errorf("ParseGUID(%q) succeeded", bad)
		}
	}
}

// UEFI_VARIABLE_DATA for SecureBoot = 1, laid out by hand from the TCG PC
// Client spec: GUID, name length in characters, data length, UTF-16 name,
// data.
func TestVariableData(t *testing.T) {
	got := VariableData(GlobalVariable, "SecureBoot", []byte{1})
	want, _ := hex.DecodeString("61dfe48bca93d211aa0d00e098032b8c" +
		"0a00000000000000" + "0100000000000000" +
		"53006500630075007200650042006f006f007400" + "01")
	if !bytes.Equal(got, want) {
		t.Errorf("got  %x\nwant %x", got, want)
	}
}

func TestExpectedPCRsReplayEvents(t *testing.T) {
	m := Measured{Image: sha256.Sum256([]byte("image")), PK: []byte("pk"), KEK: []byte("kek"), DB: []byte("db")}
	pcrs := m.ExpectedPCRs()
	var p4 [32]byte
	for _, e := range m.Events() {
		if e.PCR == 4 {
			p4 = sha256.Sum256(append(p4[:], e.Digest[:]...))
		}
	}
	if pcrs[4] != p4 {
		t.Error("PCR 4 is not the replay of its events")
	}
	other := m
	other.DB = []byte("another db")
	if other.ExpectedPCRs()[7] == pcrs[7] {
		t.Error("another db left PCR 7 as it was")
	}
	if other.ExpectedPCRs()[4] != pcrs[4] {
		t.Error("another db changed PCR 4")
	}
}

func FuzzFirstX509(f *testing.F) {
	g, _ := ParseGUID("8fd677c6-16bb-4fec-a1e1-9dbf68dff2e0")
	f.Add(SignatureList(g, []byte("not really a certificate")))
	f.Add([]byte{})
	f.Add(make([]byte, 44))
	f.Fuzz(func(t *testing.T, b []byte) {
		owner, cert, err := FirstX509(b)
		if err != nil {
			return
		}
		if !bytes.Equal(SignatureList(owner, cert)[28:], b[28:28+16+len(cert)]) {
			t.Fatal("the entry read back differs from the bytes")
		}
	})
}

// The PCR 7 digests Debian's AAVMF (edk2 2022.11) extended in Setup Mode,
// read off QEMU's TPM trace (PCR_Extend commands): SecureBoot = 0 and the
// four key variables absent. VariableData must encode them the same way.
func TestVariableEventsMatchTheFirmware(t *testing.T) {
	for _, c := range []struct {
		vendor GUID
		name   string
		data   []byte
		want   string
	}{
		{GlobalVariable, "SecureBoot", []byte{0}, "115aa827dbccfb44d216ad9ecfda56bdea620b860a94bed5b7a27bba1c4d02d8"},
		{GlobalVariable, "PK", nil, "dea7b80ab53a3daaa24d5cc46c64e1fa9ffd03739f90aadbd8c0867c4a5b4890"},
		{GlobalVariable, "KEK", nil, "e670e121fcebd473b8bc41bb801301fc1d9afa33904f06f7149b74f12c47a68f"},
		{ImageSecurityDatabase, "db", nil, "baf89a3ccace52750c5f0128351e0422a41597a1adfd50822aa363b9d124ea7c"},
		{ImageSecurityDatabase, "dbx", nil, "9f75b6823bff6af1024a4e2036719cdd548d3cbc2bf1de8e7ef4d0ed01f94bf9"},
	} {
		got := sha256.Sum256(VariableData(c.vendor, c.name, c.data))
		if hex.EncodeToString(got[:]) != c.want {
			t.Errorf("%s: %x, the firmware measured %s", c.name, got, c.want)
		}
	}
	// And the two fixed ones: the separator and the boot-option action.
	if hex.EncodeToString(Separator[:]) != "df3f619804a92fdb4057192dc43dd748ea778adc52bc498ce80524c014b81119" {
		t.Error("separator digest")
	}
	if a := sha256.Sum256([]byte(callingBootOption)); hex.EncodeToString(a[:]) != "3d6772b4f84ed47595d72a2c4c5ffd15f5bb72c7507fe26f2aaee2c69d5633ba" {
		t.Error("EV_EFI_ACTION digest")
	}
}

var osslSigningTime = regexp.MustCompile(`Signing time: (.+)`)

// signingTime is the signing time osslsigncode reads from a signed file.
func signingTime(t *testing.T, path string) string {
	t.Helper()
	out, _ := exec.Command("osslsigncode", "verify", "-in", path).CombinedOutput()
	m := osslSigningTime.FindSubmatch(out)
	if m == nil {
		t.Fatalf("no signing time in osslsigncode's output:\n%s", out)
	}
	return strings.TrimSpace(string(m[1]))
}

// The same unified image, key and signing time must give the same signed
// file, so a release's Authenticode digest (and PCR 4) can be rebuilt and
// checked: the signature carries Signer.Time, not the time of the build,
// and the PE header carries no build time.
func TestSignedUKIIsReproducible(t *testing.T) {
	needTools(t, DefaultObjcopy, "osslsigncode", "sbverify")
	dir := t.TempDir()
	initrd := filepath.Join(dir, "initrd")
	if err := os.WriteFile(initrd, bytes.Repeat([]byte("initramfs"), 1000), 0o644); err != nil {
		t.Fatal(err)
	}
	s, der := testSigner(t, "test db")
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	// Within the certificate's validity (it began an hour ago).
	at := cert.NotBefore.Add(17 * time.Minute)
	s.Time = at.Unix()
	ctx := context.Background()
	unsigned := filepath.Join(dir, "uki.unsigned")
	build := func(name string) []byte {
		t.Helper()
		signed := filepath.Join(dir, name+".efi")
		u := UKI{Kernel: DefaultStub, Initrd: initrd, Cmdline: "console=ttyAMA0 quiet", OSRelease: "ID=zmonitor\n"}
		if err := BuildUKI(ctx, u, unsigned); err != nil {
			t.Fatal(err)
		}
		f, err := pe.Open(unsigned)
		if err != nil {
			t.Fatal(err)
		}
		if f.TimeDateStamp != 0 {
			t.Errorf("%s: PE TimeDateStamp %d, want 0 (a build time changes the digest)", name, f.TimeDateStamp)
		}
		f.Close()
		if err := s.Sign(ctx, unsigned, signed); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(signed)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	a, b := build("a"), build("b")
	if !bytes.Equal(a, b) {
		t.Error("two builds of the same inputs differ")
	}
	const osslTime = "Jan _2 15:04:05 2006 GMT"
	if got, want := signingTime(t, filepath.Join(dir, "a.efi")), at.UTC().Format(osslTime); got != want {
		t.Errorf("signing time %q, want %q (Signer.Time)", got, want)
	}
	// A time before the certificate's validity (SOURCE_DATE_EPOCH unset
	// is 0) would make U-Boot refuse the signature: it becomes NotBefore.
	s.Time = 0
	if err := s.Sign(ctx, unsigned, filepath.Join(dir, "epoch0.efi")); err != nil {
		t.Fatal(err)
	}
	if got, want := signingTime(t, filepath.Join(dir, "epoch0.efi")), cert.NotBefore.UTC().Format(osslTime); got != want {
		t.Errorf("signing time for Time 0: %q, want the certificate's NotBefore %q", got, want)
	}
}
