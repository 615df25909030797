package store

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/zmonitor/firmware/internal/proto/enroll"
)

func enrollmentJSONFor(t testing.TB, id string) (string, Enrollment) {
	e := newEnrollmentFor(t, id)
	b, _ := enroll.Record{DeviceID: e.DeviceID, DeviceSerial: e.DeviceSerial, IdentityKey: b64(e.IdentitySPKI), PayloadKey: b64(e.PayloadSPKI), FirmwareVersion: e.FirmwareVersion}.Marshal()
	return string(b), e
}

func TestParseEnrollmentsJSON(t *testing.T) {
	one, e1 := enrollmentJSONFor(t, "ZM-001")
	items, err := ParseEnrollments([]byte("  " + one + "\n"))
	if err != nil || len(items) != 1 || items[0].Err != nil {
		t.Fatalf("one object: %+v, %v", items, err)
	}
	if got := items[0].Enrollment; got.DeviceID != "ZM-001" || string(got.IdentitySPKI) != string(e1.IdentitySPKI) || string(got.PayloadSPKI) != string(e1.PayloadSPKI) {
		t.Errorf("record = %+v", got)
	}
	two, _ := enrollmentJSONFor(t, "ZM-002")
	bad := strings.Replace(two, `"deviceId":"ZM-002"`, `"deviceId":"ZM 002"`, 1)
	items, err = ParseEnrollments([]byte("[" + one + "," + bad + "," + two + "]"))
	if err != nil || len(items) != 3 {
		t.Fatalf("array: %v, %v", items, err)
	}
	if items[0].Err != nil || items[1].Err == nil || items[2].Err != nil || items[1].Index != 2 {
		t.Errorf("per-record results: %v / %v / %v", items[0].Err, items[1].Err, items[2].Err)
	}
	if !strings.Contains(items[1].Err.Error(), "deviceId") {
		t.Errorf("error does not name the field: %v", items[1].Err)
	}
}

func TestParseEnrollmentsCSV(t *testing.T) {
	_, e1 := enrollmentJSONFor(t, "ZM-001")
	_, e2 := enrollmentJSONFor(t, "ZM-002")
	csv := strings.Join(CSVHeader, ",") + "\n" +
		fmt.Sprintf("ZM-001,SN-1,%s,%s,1.2.3\n", b64(e1.IdentitySPKI), b64(e1.PayloadSPKI)) +
		"ZM-BAD,SN-2,AAAA\n" +
		fmt.Sprintf("ZM-002,SN-2,%s,%s,1.2.3+build.4\n", b64(e2.IdentitySPKI), b64(e2.PayloadSPKI))
	items, err := ParseEnrollments([]byte(csv))
	if err != nil || len(items) != 3 {
		t.Fatalf("CSV: %v, %v", items, err)
	}
	if items[0].Err != nil || items[1].Err == nil || items[2].Err != nil || items[2].Enrollment.FirmwareVersion != "1.2.3+build.4" {
		t.Errorf("CSV results: %+v", items)
	}
	if _, err := ParseEnrollments([]byte("id,serial,a,b,c\nx,y,z,w,v\n")); err == nil {
		t.Error("wrong CSV header accepted")
	}
}

func TestParseEnrollmentsRefusals(t *testing.T) {
	one, e := enrollmentJSONFor(t, "ZM-001")
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p384DER, _ := x509.MarshalPKIXPublicKey(&p384.PublicKey)
	rec := func(field, value string) string {
		var m map[string]string
		json.Unmarshal([]byte(one), &m)
		m[field] = value
		b, _ := json.Marshal(m)
		return string(b)
	}
	fileErrs := map[string]string{
		"empty":          "   ",
		"empty array":    "[]",
		"trailing array": "[" + one + "] x",
		"CSV no records": strings.Join(CSVHeader, ",") + "\n",
	}
	for name, in := range fileErrs {
		if _, err := ParseEnrollments([]byte(in)); err == nil || !errors.Is(err, ErrEnrollment) {
			t.Errorf("%s: %v", name, err)
		}
	}
	recordErrs := map[string]string{
		"not JSON":           "{nope",
		"unknown field":      strings.Replace(one, `{`, `{"extra":"1",`, 1),
		"duplicate field":    strings.Replace(one, `{`, `{"deviceId":"ZM-009",`, 1),
		"missing serial":     rec("deviceSerial", ""),
		"P-384 identity":     rec("identityPublicKey", b64(p384DER)),
		"junk payload key":   rec("payloadPublicKey", "AAAA"),
		"not base64":         rec("identityPublicKey", "!!!"),
		"same keys":          rec("payloadPublicKey", b64(e.IdentitySPKI)),
		"bad version":        rec("firmwareVersion", "1.2 beta"),
		"long id":            rec("deviceId", strings.Repeat("A", 33)),
		"id starting with -": rec("deviceId", "-ZM-001"), // the device refuses it at manufacturing
		"serial of dots":     rec("deviceSerial", ".."),
		"number for string":  strings.Replace(one, `"deviceSerial":"SN-ZM-001"`, `"deviceSerial":5`, 1),
		"trailing object":    one + " {}",
		"folded name":        strings.Replace(one, `"deviceSerial"`, `"DeviceSerial"`, 1),
		"null member":        strings.Replace(one, `"deviceSerial":"SN-ZM-001"`, `"deviceSerial":null`, 1),
		"invalid UTF-8":      strings.Replace(one, `"deviceSerial":"SN-ZM-001"`, "\"deviceSerial\":\"SN-\xff\"", 1),
	}
	for name, in := range recordErrs {
		items, err := ParseEnrollments([]byte(in))
		if err != nil {
			continue // refused as a whole: fine too
		}
		if len(items) != 1 || items[0].Err == nil || !errors.Is(items[0].Err, ErrEnrollment) {
			t.Errorf("%s: accepted: %+v", name, items)
		}
	}
}

func FuzzParseEnrollments(f *testing.F) {
	one, e := enrollmentJSONFor(f, "ZM-001")
	f.Add([]byte(one))
	f.Add([]byte("[" + one + "," + one + "]"))
	f.Add([]byte(strings.Join(CSVHeader, ",") + "\nZM-001,SN-1," + b64(e.IdentitySPKI) + "," + b64(e.PayloadSPKI) + ",1.0\n"))
	f.Add([]byte(`[{"deviceId":1}]`))
	f.Add([]byte("\ufeffdeviceId,\"x"))
	f.Fuzz(func(t *testing.T, b []byte) {
		items, err := ParseEnrollments(b)
		if err != nil {
			return
		}
		for _, it := range items {
			if it.Err == nil {
				if err := it.Enrollment.Validate(); err != nil {
					t.Fatalf("accepted record fails Validate: %v", err)
				}
			}
		}
	})
}

func TestTechnicianToken(t *testing.T) {
	tok, err := NewTechnicianToken(nil)
	if err != nil {
		t.Fatal(err)
	}
	id, err := TechnicianIDOfToken(tok.Token)
	if err != nil || id != tok.ID {
		t.Fatalf("TechnicianIDOfToken = %q, %v; want %q", id, err, tok.ID)
	}
	if !TokenMatches(tok.Hash, tok.Token) || TokenMatches(tok.Hash, tok.Token+"x") {
		t.Error("TokenMatches wrong")
	}
	other, _ := NewTechnicianToken(nil)
	if other.Token == tok.Token || other.ID == tok.ID {
		t.Error("two tokens alike")
	}
	for _, bad := range []string{"", tok.ID, tok.ID + ".", "x-12345678." + strings.Repeat("A", 43), "t-1234567g." + strings.Repeat("A", 43), tok.Token + "A", strings.Replace(tok.Token, ".", ":", 1)} {
		if _, err := TechnicianIDOfToken(bad); !errors.Is(err, ErrTokenFormat) {
			t.Errorf("TechnicianIDOfToken(%q) = %v", bad, err)
		}
	}
}

func FuzzTechnicianIDOfToken(f *testing.F) {
	tok, _ := NewTechnicianToken(nil)
	f.Add(tok.Token)
	f.Add("t-00000000.")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		id, err := TechnicianIDOfToken(s)
		if err == nil && !strings.HasPrefix(s, id+".") {
			t.Fatalf("ID %q not the prefix of %q", id, s)
		}
	})
}
