package pairing

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestCheckQRFitsAgreesWithSessions checks CheckQRFits against what a
// session really makes at the longest IPv4 address: every identity it
// accepts opens a session, and the first it refuses does not.
func TestCheckQRFitsAgreesWithSessions(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	const version = "1.4.0-rc2+g1234abc"
	// The names' budget at the longest IPv4 address: grow the serial one
	// byte at a time from a 32-byte device ID.
	id := strings.Repeat("D", 32)
	for n := 1; n <= 32; n++ {
		serial := strings.Repeat("S", n)
		fits := CheckQRFits(id, serial, version)
		_, serr := NewSession(time.Unix(0, 0), time.Unix(1700000000, 0), SessionOpts{
			DeviceID: id, DeviceSerial: serial, IPAddress: LongestIPv4, FirmwareVersion: version, Signer: key,
		})
		if (fits == nil) != (serr == nil) {
			t.Fatalf("serial of %d bytes: CheckQRFits says %v, a session says %v", n, fits, serr)
		}
		if fits != nil && !errors.Is(fits, ErrQRTooLong) {
			t.Fatalf("error does not wrap ErrQRTooLong: %v", fits)
		}
	}
}

func TestCheckQRFits(t *testing.T) {
	// The spec's example fits; three 32-byte names do not (each is valid
	// on its own).
	if err := CheckQRFits("ZM-001", "SN-2024-001234", "1.2.3"); err != nil {
		t.Fatalf("spec example refused: %v", err)
	}
	long := strings.Repeat("X", 32)
	err := CheckQRFits(long, long, long)
	if !errors.Is(err, ErrQRTooLong) {
		t.Fatalf("96 bytes of names accepted: %v", err)
	}
	// The message says what to change and by how much: 83 bytes are left
	// for the names and the address, 15 of them the address's.
	for _, want := range []string{"deviceId (32 bytes)", "255.255.255.255", "at most 68 bytes together"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if err := CheckQRFits(strings.Repeat("X", 30), strings.Repeat("Y", 30), "12345678"); err != nil {
		t.Errorf("68 bytes of names refused: %v", err)
	}
	if err := CheckQRFits(strings.Repeat("X", 30), strings.Repeat("Y", 30), "123456789"); err == nil {
		t.Error("69 bytes of names accepted")
	}
}
