package identity

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zmonitor/firmware/internal/fw/keys/softkeys"
	"github.com/zmonitor/firmware/internal/proto/enroll"
	"github.com/zmonitor/firmware/internal/proto/pairing"
)

func TestWriteFileIfChanged(t *testing.T) {
	path := filepath.Join(t.TempDir(), "enrollment.json")
	if err := writeFileIfChanged(path, []byte("one")); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(path, old, old); err != nil {
		t.Fatal(err)
	}
	if err := writeFileIfChanged(path, []byte("one")); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(path); !fi.ModTime().Equal(old) {
		t.Error("an unchanged record was written again")
	}
	if err := writeFileIfChanged(path, []byte("two")); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != "two" {
		t.Errorf("changed record not written: %q", b)
	}
	if _, err := os.Stat(path + ".tmp"); !os.IsNotExist(err) {
		t.Error("temporary file left behind")
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	given := Identity{DeviceID: "ZM-001", DeviceSerial: "SN-1"}
	id, first, err := Load(dir, given, "1.2.3")
	if err != nil || !first || id != given {
		t.Fatalf("first boot: %+v %v %v", id, first, err)
	}
	// Later boots keep the stored identity whatever the command line says.
	id, first, err = Load(dir, Identity{DeviceID: "ZM-999", DeviceSerial: "SN-9"}, "1.2.3")
	if err != nil || first || id != given {
		t.Fatalf("second boot: %+v %v %v", id, first, err)
	}
	if _, _, err := Load(t.TempDir(), Identity{DeviceID: "bad id!", DeviceSerial: "x"}, "1.2.3"); err == nil {
		t.Error("invalid identity stored")
	}
	if err := os.WriteFile(filepath.Join(dir, FileName), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Load(dir, given, "1.2.3"); err == nil {
		t.Error("corrupt identity file accepted")
	}
}

// TestFirstBootRefusesAnIdentityTooLongForTheQR: each name is valid on its
// own (32 bytes), but together with the firmware version and the longest
// IPv4 address the QR would not fit the panel. The first boot refuses it
// and stores nothing; the same names with a shorter serial are stored.
func TestFirstBootRefusesAnIdentityTooLongForTheQR(t *testing.T) {
	dir := t.TempDir()
	long := Identity{DeviceID: strings.Repeat("D", 32), DeviceSerial: strings.Repeat("S", 32)}
	if err := long.Validate(); err != nil {
		t.Fatalf("the names are not valid on their own: %v", err)
	}
	_, _, err := Load(dir, long, "1.4.0-rc2")
	if !errors.Is(err, ErrTooLongForQR) || !errors.Is(err, pairing.ErrQRTooLong) {
		t.Fatalf("first boot with a too-long identity: %v", err)
	}
	for _, want := range []string{"first boot: ", "deviceSerial (32)", "firmwareVersion (9)", "at most 68 bytes together"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, FileName)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the refused identity was stored: %v", err)
	}
	fits := Identity{DeviceID: long.DeviceID, DeviceSerial: strings.Repeat("S", 27)}
	if _, first, err := Load(dir, fits, "1.4.0-rc2"); err != nil || !first {
		t.Fatalf("an identity that fits: first %v, %v", first, err)
	}
	// A later boot keeps the stored identity whatever the firmware
	// version has grown to: a provisioned monitor keeps working.
	if id, _, err := Load(dir, long, strings.Repeat("9", 32)); err != nil || id != fits {
		t.Fatalf("later boot with a longer firmware version: %+v, %v", id, err)
	}
}

func TestWriteEnrollment(t *testing.T) {
	dir := t.TempDir()
	ks, err := softkeys.New(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id := Identity{DeviceID: "ZM-001", DeviceSerial: "SN-1"}
	b, err := WriteEnrollment(dir, id, ks, "1.2.3")
	if err != nil {
		t.Fatal(err)
	}
	onDisk, err := os.ReadFile(filepath.Join(dir, EnrollmentFileName))
	if err != nil || !bytes.Equal(onDisk, b) {
		t.Fatalf("enrollment file %q (%v), returned %q", onDisk, err, b)
	}
	rec, err := enroll.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	idKey, payloadKey, err := rec.Keys()
	if err != nil {
		t.Fatal(err)
	}
	if rec.DeviceID != id.DeviceID || rec.DeviceSerial != id.DeviceSerial || rec.FirmwareVersion != "1.2.3" ||
		!idKey.Equal(ks.Identity().Public()) || !payloadKey.Equal(ks.PayloadKey().PublicKey()) {
		t.Errorf("record %+v is not the device's", rec)
	}
	if _, err := WriteEnrollment(filepath.Join(dir, "missing"), id, ks, "1.2.3"); err == nil || !strings.HasPrefix(err.Error(), "enrollment record: ") {
		t.Errorf("WriteEnrollment into a missing directory = %v", err)
	}
}

// The identity file is on the data partition, which a technician with the
// board in hand can rewrite: whatever it holds, Load returns a valid
// identity or an error, and a stored file is never taken for a first boot.
func FuzzLoad(f *testing.F) {
	for _, s := range []string{`{"deviceId":"ZM-001","deviceSerial":"SN-1"}`, `{`, `{"deviceId":"-x","deviceSerial":"SN-1"}`, `null`, `[]`, ""} {
		f.Add([]byte(s))
	}
	dir := f.TempDir()
	given := Identity{DeviceID: "GIVEN", DeviceSerial: "GIVEN"}
	f.Fuzz(func(t *testing.T, b []byte) {
		if err := os.WriteFile(filepath.Join(dir, FileName), b, 0o600); err != nil {
			t.Fatal(err)
		}
		id, first, err := Load(dir, given, "1.0.0")
		if err != nil {
			return
		}
		if first {
			t.Errorf("a stored file %q was taken for a first boot (identity %+v)", b, id)
		}
		if err := id.Validate(); err != nil {
			t.Errorf("Load accepted %q: %v", b, err)
		}
	})
}
