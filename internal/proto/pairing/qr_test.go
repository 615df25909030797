package pairing

import (
	"errors"
	"strings"
	"testing"

	qrcode "github.com/skip2/go-qrcode"
)

// qrVersion encodes b at error correction M and returns the version and the
// side in modules (without quiet zone).
func qrVersion(t *testing.T, b []byte) (int, int) {
	t.Helper()
	c, err := qrcode.New(string(b), qrcode.Medium)
	if err != nil {
		t.Fatal(err)
	}
	c.DisableBorder = true
	return c.VersionNumber, len(c.Bitmap())
}

func TestMarshalCompactInSpecOrder(t *testing.T) {
	q := QRContent{"ZM-001", "SN-2024-001234", "192.168.1.100", "ABC-123-XYZ", "TOKEN", "2024-11-25T14:30:00Z", "1.2.3"}
	want := `{"deviceId":"ZM-001","deviceSerial":"SN-2024-001234","ipAddress":"192.168.1.100","pairingCode":"ABC-123-XYZ","pairingToken":"TOKEN","expiresAt":"2024-11-25T14:30:00Z","firmwareVersion":"1.2.3"}`
	if got := string(q.Marshal()); got != want {
		t.Errorf("Marshal =\n%s\nwant\n%s", got, want)
	}
}

// The QR sizes: the spec's example lengths with a real 98-character token
// make 286 bytes, within version 12's 287-byte limit at level M (65 modules:
// 3 px per module and a 4-module quiet zone take 219 px of a 240 px panel).
// Longer fields go to version 13; MaxQRBytes keeps every session at version
// 13 or below.
func TestQRVersion(t *testing.T) {
	k := newKey(t)
	code := validCode(t).Display()
	tests := []struct {
		name                   string
		id, serial, ip, fw     string
		wantBytes, wantVersion int
	}{
		{"spec example", "ZM-001", "SN-2024-001234", "192.168.1.100", "1.2.3", 286, 12},
		{"serial 24, IPv4 15", "ZM-001", "SN-2024-0012345678901234"[:24], "192.168.100.100", "1.2.3", 298, 13},
		{"largest: 20+24+15+24", "ZM-00000000000000001", strings.Repeat("S", 24), "192.168.100.100", "v1.2.3-45-gabcdef0-dirty", MaxQRBytes, 13},
		{"IPv6", "ZM-001", "SN-2024-001234", "fd00:1234:5678:9abc:def0:1234:5678:9abc", "1.2.3", 312, 13},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for i := 0; i < 5; i++ { // several tokens: the content varies
				q := signed(t, k, QRContent{DeviceID: tc.id, DeviceSerial: tc.serial, IPAddress: tc.ip, PairingCode: code, ExpiresAt: "2024-11-25T14:30:00Z", FirmwareVersion: tc.fw})
				b := q.Marshal()
				if len(b) != tc.wantBytes {
					t.Fatalf("%d bytes, want %d", len(b), tc.wantBytes)
				}
				v, side := qrVersion(t, b)
				if v != tc.wantVersion || side != 17+4*v {
					t.Fatalf("version %d (%d modules), want %d", v, side, tc.wantVersion)
				}
				if px := 3 * (side + 8); px > 240 {
					t.Errorf("%d px at 3 px per module with quiet zone: over 240", px)
				}
			}
		})
	}
	// Version 12 holds 287 bytes at level M.
	v, side := qrVersion(t, []byte(strings.Repeat("x", 287)))
	if v != 12 || side != 65 {
		t.Errorf("287 bytes: version %d, %d modules; want 12, 65", v, side)
	}
	v, _ = qrVersion(t, []byte(strings.Repeat("x", MaxQRBytes+1)))
	if v != 14 {
		t.Errorf("%d bytes: version %d, want 14 (MaxQRBytes is version 13's limit)", MaxQRBytes+1, v)
	}
}

func TestParseQRRoundTrip(t *testing.T) {
	q := signed(t, newKey(t), example(t))
	got, err := ParseQR(q.Marshal())
	if err != nil || got != q {
		t.Fatalf("ParseQR = %+v, %v", got, err)
	}
	// Member order, whitespace and JSON escapes do not matter.
	reordered := `{ "firmwareVersion":"1.2.3", "expiresAt":"2024-11-25T14:30:00Z", "pairingToken":"` + q.PairingToken +
		`", "pairingCode":"` + q.PairingCode + `", "ipAddress":"192.168.1.100", "deviceSerial":"SN-2024-001234", "deviceId":"ZM-\u0030\u00301" }` + "\n"
	got, err = ParseQR([]byte(reordered))
	if err != nil || got != q {
		t.Fatalf("reordered: %+v, %v", got, err)
	}
}

func TestParseQRErrors(t *testing.T) {
	q := signed(t, newKey(t), example(t))
	good := string(q.Marshal())
	set := func(field, value string) string {
		c := q
		for _, f := range qrFields {
			if f.name == field {
				*f.ptr(&c) = value
			}
		}
		return string(c.Marshal())
	}
	tests := []struct{ name, in, want string }{
		{"too large", good + strings.Repeat(" ", MaxQRInput), "limit 1024"},
		{"empty", "", "not JSON"},
		{"array", "[]", "not a JSON object"},
		{"string", `"x"`, "not a JSON object"},
		{"unknown field", strings.Replace(good, `{`, `{"admin":"1",`, 1), `unknown field "admin"`},
		{"case-folded name", strings.Replace(good, `"deviceId"`, `"DeviceId"`, 1), "unknown field"},
		{"duplicate", strings.Replace(good, `{`, `{"deviceId":"ZM-9",`, 1), "deviceId appears twice"},
		{"number", strings.Replace(good, `"ZM-001"`, `1`, 1), "deviceId is not a string"},
		{"null", strings.Replace(good, `"ZM-001"`, `null`, 1), "deviceId is not a string"},
		{"object value", strings.Replace(good, `"ZM-001"`, `{}`, 1), "deviceId is not a string"},
		{"missing", strings.Replace(good, `"deviceId":"ZM-001",`, ``, 1), "field deviceId missing"},
		{"trailing", good + "{}", "data after"},
		{"truncated", good[:len(good)-1], "unexpected EOF"},
		{"empty deviceId", set("deviceId", ""), "deviceId: empty"},
		{"long deviceId", set("deviceId", strings.Repeat("A", 33)), "deviceId: 33 bytes, limit 32"},
		{"space in serial", set("deviceSerial", "SN 1"), `deviceSerial: character 3: ' '`},
		{"quote in serial", set("deviceSerial", `SN"1`), `deviceSerial: character 3`},
		{"bad ip", set("ipAddress", "192.168.1"), "ipAddress"},
		{"ip leading zero", set("ipAddress", "192.168.001.100"), "ipAddress"},
		{"ipv6 upper case", set("ipAddress", "FD00::1"), "ipAddress: not in canonical form"},
		{"ip zone", set("ipAddress", "fe80::1%eth0"), "ipAddress: zone"},
		{"ip unspecified", set("ipAddress", "0.0.0.0"), "ipAddress: unspecified"},
		{"host name", set("ipAddress", "zmonitor.local"), "ipAddress"},
		{"code lower case", set("pairingCode", strings.ToLower(q.PairingCode)), "pairingCode: not in the form"},
		{"code no dashes", set("pairingCode", strings.ReplaceAll(q.PairingCode, "-", "")), "pairingCode: not in the form"},
		{"code typo", set("pairingCode", "AAA-000-AAB"), "check character"},
		{"short token", set("pairingToken", q.PairingToken[:TokenChars-2]), "pairingToken"},
		{"padded token", set("pairingToken", q.PairingToken[:TokenChars-2]+"=="), "pairingToken"},
		{"token std alphabet", set("pairingToken", "+"+q.PairingToken[1:]), "pairingToken"},
		{"expires offset", set("expiresAt", "2024-11-25T15:30:00+01:00"), "expiresAt"},
		{"expires lower z", set("expiresAt", "2024-11-25T14:30:00z"), "expiresAt"},
		{"expires fraction", set("expiresAt", "2024-11-25T14:30:00.5Z"), "expiresAt"},
		{"expires no seconds", set("expiresAt", "2024-11-25T14:30Z"), "expiresAt"},
		{"expires date only", set("expiresAt", "2024-11-25"), "expiresAt"},
		{"firmware empty", set("firmwareVersion", ""), "firmwareVersion: empty"},
		{"firmware slash", set("firmwareVersion", "1.2/3"), "firmwareVersion: character 4"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseQR([]byte(tc.in))
			if !errors.Is(err, ErrQR) {
				t.Fatalf("ParseQR = %+v, %v; want an ErrQR error", got, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %q, want it to mention %q", err, tc.want)
			}
			if got != (QRContent{}) {
				t.Errorf("content returned with an error")
			}
		})
	}
	// A valid firmware version with '+' (semver build metadata).
	if _, err := ParseQR([]byte(set("firmwareVersion", "1.2.3+build.5"))); err != nil {
		t.Errorf("firmware with +: %v", err)
	}
}

func FuzzParseQR(f *testing.F) {
	q := signed(f, newKey(f), example(f))
	f.Add(q.Marshal())
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"deviceId":"ZM-001","deviceId":"x"}`))
	f.Add([]byte(`[1,2,3]`))
	f.Add([]byte(`{"deviceId":1}`))
	f.Add([]byte(`{"deviceId":"ZM-001"} x`))
	f.Add([]byte(``))
	f.Add([]byte("\xff\xfe"))
	f.Fuzz(func(t *testing.T, b []byte) {
		q, err := ParseQR(b)
		if err != nil {
			if !errors.Is(err, ErrQR) {
				t.Fatalf("error not ErrQR: %v", err)
			}
			return
		}
		again, err := ParseQR(q.Marshal())
		if err != nil || again != q {
			t.Fatalf("round trip: %+v, %v", again, err)
		}
		if len(q.Marshal()) > MaxQRInput {
			t.Fatalf("accepted content marshals to %d bytes", len(q.Marshal()))
		}
	})
}
