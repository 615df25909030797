package enroll

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/zmonitor/firmware/internal/proto/ident"
)

// newKeys returns the public halves of a fresh identity and payload key.
func newKeys(t testing.TB) (*ecdsa.PublicKey, *ecdh.PublicKey) {
	t.Helper()
	id, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pay, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &id.PublicKey, pay.PublicKey()
}

func sample(t testing.TB) Record {
	t.Helper()
	id, pay := newKeys(t)
	e, err := New(id, pay, "ZM-001", "SN-2024-001234", "1.2.3")
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestRoundTrip(t *testing.T) {
	id, pay := newKeys(t)
	e, err := New(id, pay, "ZM-001", "SN-2024-001234", "1.2.3")
	if err != nil {
		t.Fatal(err)
	}
	b, err := e.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{`"deviceId":"ZM-001"`, `"deviceSerial":`, `"identityPublicKey":`, `"payloadPublicKey":`, `"firmwareVersion":"1.2.3"`} {
		if !strings.Contains(string(b), f) {
			t.Errorf("%s lacks %s", b, f)
		}
	}
	got, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if got != e {
		t.Fatalf("round trip %+v != %+v", got, e)
	}
	gotID, gotPay, err := got.Keys()
	if err != nil {
		t.Fatal(err)
	}
	if !gotID.Equal(id) {
		t.Error("identity key differs")
	}
	if !gotPay.Equal(pay) {
		t.Error("payload key differs")
	}
}

func TestParseRejects(t *testing.T) {
	e := sample(t)
	good, _ := e.Marshal()
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	der384, _ := x509.MarshalPKIXPublicKey(&p384.PublicKey)
	with := func(f func(*Record)) string {
		c := e
		f(&c)
		b, _ := jsonOf(c)
		return b
	}
	for name, in := range map[string]string{
		"empty":          "",
		"array":          "[]",
		"trailing":       string(good) + "{}",
		"unknown field":  strings.Replace(string(good), `"deviceId"`, `"deviceID2"`, 1),
		"case folded":    strings.Replace(string(good), `"deviceId"`, `"DeviceId"`, 1),
		"duplicate":      strings.Replace(string(good), `{`, `{"deviceId":"X",`, 1),
		"number":         strings.Replace(string(good), `"ZM-001"`, `1`, 1),
		"missing field":  `{"deviceId":"ZM-001"}`,
		"bad base64":     with(func(c *Record) { c.IdentityKey = "!!" }),
		"not a key":      with(func(c *Record) { c.PayloadKey = base64.StdEncoding.EncodeToString([]byte("x")) }),
		"P-384":          with(func(c *Record) { c.IdentityKey = base64.StdEncoding.EncodeToString(der384) }),
		"same keys":      with(func(c *Record) { c.PayloadKey = c.IdentityKey }),
		"space in id":    with(func(c *Record) { c.DeviceID = "ZM 001" }),
		"long serial":    with(func(c *Record) { c.DeviceSerial = strings.Repeat("S", ident.MaxSerial+1) }),
		"too large":      strings.Repeat(" ", MaxRecordSize+1),
		"truncated":      string(good[:len(good)-1]),
		"nested":         strings.Replace(string(good), `"ZM-001"`, `{"a":1}`, 1),
		"empty firmware": with(func(c *Record) { c.FirmwareVersion = "" }),
	} {
		if _, err := Parse([]byte(in)); err == nil {
			t.Errorf("%s: accepted", name)
		} else if !errors.Is(err, ErrSyntax) && !errors.Is(err, ErrField) && !errors.Is(err, ErrTooLarge) {
			t.Errorf("%s: error %v is none of the package's", name, err)
		}
	}
}

func jsonOf(e Record) (string, error) {
	// Marshal validates; build the JSON by hand for invalid records.
	return `{"deviceId":"` + e.DeviceID + `","deviceSerial":"` + e.DeviceSerial +
		`","identityPublicKey":"` + e.IdentityKey + `","payloadPublicKey":"` + e.PayloadKey +
		`","firmwareVersion":"` + e.FirmwareVersion + `"}`, nil
}

func TestValidate(t *testing.T) {
	e := sample(t)
	e.DeviceID = ""
	if err := e.Validate(); !errors.Is(err, ErrField) {
		t.Fatalf("err = %v, want ErrField", err)
	}
}

func FuzzParse(f *testing.F) {
	e := sample(f)
	good, _ := e.Marshal()
	f.Add(good)
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"deviceId":"ZM-001","deviceId":"x"}`))
	f.Add([]byte(`[1,2]`))
	f.Add([]byte(`{"deviceId":"\u0000"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := Parse(b)
		if err != nil {
			return
		}
		// Whatever parses re-encodes and parses to the same record.
		if err := got.Validate(); err != nil {
			t.Fatalf("parsed record does not validate: %v", err)
		}
		out, err := got.Marshal()
		if err != nil {
			t.Fatalf("parsed record does not marshal: %v", err)
		}
		again, err := Parse(out)
		if err != nil || again != got {
			t.Fatalf("re-parse: %v %+v != %+v", err, again, got)
		}
	})
}

func BenchmarkParse(b *testing.B) {
	good, _ := sample(b).Marshal()
	for b.Loop() {
		if _, err := Parse(good); err != nil {
			b.Fatal(err)
		}
	}
}
