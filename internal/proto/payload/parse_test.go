package payload

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/zmonitor/firmware/internal/proto/ident"
)

func TestParseStrict(t *testing.T) {
	f := newFixture(t)
	c := f.signed(t, nil, nil)
	good := must[[]byte](t)(c.Marshal())
	got, err := Parse(good)
	if err != nil {
		t.Fatal(err)
	}
	if got.DeviceID != c.DeviceID || got.ConfigVersion != 1 || len(got.SignerChain) != 1 || got.Signature != c.Signature {
		t.Errorf("parsed %v", got)
	}
	s := string(good)
	rep := func(old, new string) string {
		if !strings.Contains(s, old) {
			t.Fatalf("fixture JSON lacks %s", old)
		}
		return strings.Replace(s, old, new, 1)
	}
	bad := map[string]string{
		"duplicate member":           rep(`"deviceId":"ZM-001"`, `"deviceId":"ZM-001","deviceId":"ZM-002"`),
		"duplicate via escape":       rep(`"deviceId":"ZM-001"`, `"deviceId":"ZM-001","device\u0049d":"ZM-002"`),
		"case-folded member":         rep(`"deviceId"`, `"DeviceID"`),
		"unknown member":             rep(`{`, `{"admin":true,`),
		"missing member":             rep(`"deviceLabel":"ICU-MON-04",`, ``),
		"null member":                rep(`"deviceLabel":"ICU-MON-04"`, `"deviceLabel":null`),
		"empty optional member":      rep(`{`, `{"clientPrivateKey":"",`),
		"trailing data":              s + `{}`,
		"version 0":                  rep(`"configVersion":1`, `"configVersion":0`),
		"version 1.0":                rep(`"configVersion":1`, `"configVersion":1.0`),
		"version as string":          rep(`"configVersion":1`, `"configVersion":"1"`),
		"not an object":              `[1,2]`,
		"too large":                  `{"serverUrl":"` + strings.Repeat("a", MaxPayload) + `"}`,
		"empty chain":                rep(fmt.Sprintf(`"signerChain":[%q]`, c.SignerChain[0]), `"signerChain":[]`),
		"chain too long":             rep(fmt.Sprintf(`"signerChain":[%q]`, c.SignerChain[0]), `"signerChain":["a","a","a","a","a"]`),
		"timestamp with offset":      rep(c.Timestamp, "2026-11-27T10:59:00+01:00"),
		"timestamp with fraction":    rep(c.Timestamp, "2026-11-27T09:59:00.5Z"),
		"timestamp not a time":       rep(c.Timestamp, "yesterday"),
		"lone surrogate":             rep(`"ICU-MON-04"`, `"ICU\ud800"`),
		"invalid UTF-8":              rep(`"ICU-MON-04"`, "\"ICU\xff\""),
		"control character in label": rep(`"ICU-MON-04"`, `"ICU\u0007"`),
		"empty device id":            rep(`"deviceId":"ZM-001"`, `"deviceId":""`),
		"device id with space":       rep(`"deviceId":"ZM-001"`, `"deviceId":"ZM 001"`),
		"device id of 33 bytes":      rep(`"deviceId":"ZM-001"`, `"deviceId":"`+strings.Repeat("Z", ident.MaxDeviceID+1)+`"`),
		"C1 control in label":        rep(`"ICU-MON-04"`, `"ICU\u0085"`),
		"label of 66 bytes":          rep(`"ICU-MON-04"`, `"`+strings.Repeat("é", 33)+`"`),
		"long label":                 rep(`"ICU-MON-04"`, `"`+strings.Repeat("x", ident.MaxLabel+1)+`"`),
		"http server":                rep(`"https://monitoring`, `"http://monitoring`),
		"server without host":        rep(`"https://monitoring.hospital.test:8443"`, `"https:///path"`),
		"server with user":           rep(`"https://monitoring`, `"https://admin@monitoring`),
		"server with fragment":       rep(`:8443"`, `:8443#x"`),
		"empty signature":            rep(fmt.Sprintf(`"signature":%q`, c.Signature), `"signature":""`),
		"member name not a string":   `{1:2}`,
		"chain of numbers":           rep(fmt.Sprintf(`"signerChain":[%q]`, c.SignerChain[0]), `"signerChain":[1]`),
	}
	for name, b := range bad {
		if _, err := Parse([]byte(b)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestParseAcceptsAnyMemberOrderAndWhitespace: the signature is over the
// canonical form, so a reordered, indented payload still verifies.
func TestParseAcceptsAnyMemberOrderAndWhitespace(t *testing.T) {
	f := newFixture(t)
	c := f.signed(t, nil, nil)
	var m map[string]any
	if err := json.Unmarshal(must[[]byte](t)(c.Marshal()), &m); err != nil {
		t.Fatal(err)
	}
	pretty := must[[]byte](t)(json.MarshalIndent(m, "", "   "))  // sorted keys, indented
	pretty = bytes.ReplaceAll(pretty, []byte("/"), []byte(`\/`)) // a legal escape
	got, err := Parse(pretty)
	if err != nil {
		t.Fatal(err)
	}
	pub := f.signer.Key.Public().(*ecdsa.PublicKey)
	if err := VerifySignature(got, pub); err != nil {
		t.Fatalf("reordered, indented payload: %v", err)
	}
	in := must[[]byte](t)(SigningInput(pretty))
	if want := must[[]byte](t)(c.CanonicalForSigning()); !bytes.Equal(in, want) {
		t.Errorf("SigningInput of the received bytes\n%s\ndiffers from CanonicalForSigning\n%s", in, want)
	}
	got.DeviceLabel = "EVIL"
	if err := VerifySignature(got, pub); !errors.Is(err, ErrBadSignature) {
		t.Errorf("altered: %v", err)
	}
}

func TestCanonicalForm(t *testing.T) {
	c := Config{ServerURL: "https://a.test/<x>&", DeviceID: "é", ConfigVersion: 3, SignerChain: []string{"QQ=="}, Signature: "sig", Timestamp: "2026-01-01T00:00:00Z"}
	got := string(must[[]byte](t)(c.CanonicalForSigning()))
	want := `{"caCertificate":"","clientCertificate":"","configVersion":3,"deviceId":"é","deviceLabel":"","pairingCode":"","serverUrl":"https://a.test/<x>&","sessionNonce":"","signerChain":["QQ=="],"timestamp":"2026-01-01T00:00:00Z"}`
	if got != want {
		t.Errorf("canonical form\n got %s\nwant %s", got, want)
	}
}

func TestSignRefusesNonP256Keys(t *testing.T) {
	f := newFixture(t)
	c := f.cfg
	if err := Sign(&c, ed25519Signer{}, rand.Reader); err == nil {
		t.Fatal("signed with a non-ECDSA key")
	}
}

func TestEnvelopeStrict(t *testing.T) {
	f := newFixture(t)
	good := string(f.seal(t, nil, nil))
	if _, _, err := ParseEnvelope([]byte(good)); err != nil {
		t.Fatal(err)
	}
	var e envelope
	if err := json.Unmarshal([]byte(good), &e); err != nil {
		t.Fatal(err)
	}
	bad := map[string]string{
		"duplicate version":  strings.Replace(good, `{`, `{"version":2,`, 1),
		"duplicate enc":      strings.Replace(good, `{`, `{"enc":"`+e.Enc+`",`, 1),
		"case-folded member": strings.Replace(good, `"enc"`, `"ENC"`, 1),
		"unknown member":     strings.Replace(good, `{`, `{"x":1,`, 1),
		"version 2":          strings.Replace(good, `"version":1`, `"version":2`, 1),
		"version 1.0":        strings.Replace(good, `"version":1`, `"version":1.0`, 1),
		"missing version":    strings.Replace(good, `"version":1,`, ``, 1),
		"padded base64":      strings.Replace(good, e.Enc, e.Enc+"=", 1),
		"standard base64":    strings.Replace(good, `"ciphertext":"`, `"ciphertext":"+/`, 1),
		"compressed point":   strings.Replace(good, e.Enc, EncodeNonce(make([]byte, 33)), 1),
		"short ciphertext":   strings.Replace(good, e.Ciphertext, "AAAA", 1),
		"trailing data":      good + " {}",
		"too large":          good[:len(good)-1] + strings.Repeat(" ", MaxEnvelope) + "}",
	}
	for name, b := range bad {
		if _, _, err := ParseEnvelope([]byte(b)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestSealOpen(t *testing.T) {
	f := newFixture(t)
	plain := []byte("any plaintext")
	env := must[[]byte](t)(Seal(f.payload.PublicKey(), f.nonce, plain))
	if got := must[[]byte](t)(Open(f.payload, f.nonce, env)); !bytes.Equal(got, plain) {
		t.Errorf("opened %q", got)
	}
	if _, err := Seal(f.payload.PublicKey(), f.nonce[:31], plain); err == nil {
		t.Error("sealed with a short nonce")
	}
	if _, err := Seal(f.payload.PublicKey(), f.nonce, make([]byte, MaxPayload+1)); err == nil {
		t.Error("sealed an oversized payload")
	}
	x := must[*ecdh.PrivateKey](t)(ecdh.X25519().GenerateKey(rand.Reader))
	if _, err := Seal(x.PublicKey(), f.nonce, plain); err == nil {
		t.Error("sealed to an X25519 key")
	}
	// The largest payload still fits the largest envelope.
	big := must[[]byte](t)(Seal(f.payload.PublicKey(), f.nonce, make([]byte, MaxPayload)))
	if len(big) > MaxEnvelope {
		t.Errorf("a %d-byte payload seals to %d bytes, over MaxEnvelope", MaxPayload, len(big))
	}
	if _, err := Open(f.payload, f.nonce, big); err != nil {
		t.Error(err)
	}
}

// TestOpenUsesOnlyECDH verifies with a key exchanger that has only ECDH,
// Curve and PublicKey (no private bytes), as a TPM-held key.
func TestOpenUsesOnlyECDH(t *testing.T) {
	f := newFixture(t)
	env := f.seal(t, nil, nil)
	if _, err := Verify(env, tpmLike{f.payload}, f.expect()); err != nil {
		t.Fatal(err)
	}
}

type tpmLike struct{ k *ecdh.PrivateKey }

func (t tpmLike) ECDH(pub *ecdh.PublicKey) ([]byte, error) { return t.k.ECDH(pub) }
func (t tpmLike) Curve() ecdh.Curve                        { return t.k.Curve() }
func (t tpmLike) PublicKey() *ecdh.PublicKey               { return t.k.PublicKey() }

func TestSignAndSeal(t *testing.T) {
	f := newFixture(t)
	env, err := SignAndSeal(f.cfg, f.signer.Key, rand.Reader, f.payload.PublicKey(), f.nonce)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(env, f.payload, f.expect()); err != nil {
		t.Fatal(err)
	}
	c := f.cfg
	c.Timestamp = "2026-11-27T10:00:00.123Z"
	if _, err := SignAndSeal(c, f.signer.Key, rand.Reader, f.payload.PublicKey(), f.nonce); !errors.Is(err, ErrMalformed) {
		t.Errorf("a payload the device would refuse was sealed: %v", err)
	}
}

func TestConfigRedacts(t *testing.T) {
	f := newFixture(t)
	c := f.signed(t, func(c *Config) { c.ClientPrivateKey = "c2VjcmV0LWtleS1ieXRlcw==" }, nil)
	v := &Verified{Config: c}
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("payload", "config", c, "verified", v)
	for _, s := range []string{c.String(), fmt.Sprint(c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c), fmt.Sprint(v), fmt.Sprintf("%+v", v), logged.String()} {
		if strings.Contains(s, testCode) || strings.Contains(s, c.ClientPrivateKey) || strings.Contains(s, c.SessionNonce) {
			t.Errorf("secret in %q", s)
		}
		if !strings.Contains(s, "ZM-001") {
			t.Errorf("device id missing from %q", s)
		}
	}
}

// Version 2: payloadVersion 2 with an optional estUrl; version 1 is
// written by leaving payloadVersion out, and an estUrl needs version 2.
func TestParseVersions(t *testing.T) {
	f := newFixture(t)
	c := f.signed(t, nil, nil)
	v1 := string(must[[]byte](t)(c.Marshal()))
	if strings.Contains(v1, "payloadVersion") {
		t.Fatal("a version 1 payload spells its version")
	}
	est := `"estUrl":"https://central.example:9445/.well-known/est"`
	for name, body := range map[string]string{
		"version 2 without estUrl": strings.Replace(v1, `{`, `{"payloadVersion":2,`, 1),
		"version 2 with estUrl":    strings.Replace(v1, `{`, `{"payloadVersion":2,`+est+`,`, 1),
		"estUrl with a label":      strings.Replace(v1, `{`, `{"payloadVersion":2,"estUrl":"https://ca.example/.well-known/est/monitors",`, 1),
	} {
		got, err := Parse([]byte(body))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if got.PayloadVersion != 2 {
			t.Errorf("%s: version %d", name, got.PayloadVersion)
		}
	}
	for name, body := range map[string]string{
		"version 1 spelt out": strings.Replace(v1, `{`, `{"payloadVersion":1,`, 1),
		"version 3":           strings.Replace(v1, `{`, `{"payloadVersion":3,`, 1),
		"version 0":           strings.Replace(v1, `{`, `{"payloadVersion":0,`, 1),
		"estUrl in version 1": strings.Replace(v1, `{`, `{`+est+`,`, 1),
		"estUrl http":         strings.Replace(v1, `{`, `{"payloadVersion":2,"estUrl":"http://central.example/.well-known/est",`, 1),
		"estUrl other path":   strings.Replace(v1, `{`, `{"payloadVersion":2,"estUrl":"https://central.example/est",`, 1),
		"estUrl two labels":   strings.Replace(v1, `{`, `{"payloadVersion":2,"estUrl":"https://central.example/.well-known/est/a/b",`, 1),
		"estUrl query":        strings.Replace(v1, `{`, `{"payloadVersion":2,"estUrl":"https://central.example/.well-known/est?x=1",`, 1),
		"estUrl user":         strings.Replace(v1, `{`, `{"payloadVersion":2,"estUrl":"https://u@central.example/.well-known/est",`, 1),
		"estUrl prefix only":  strings.Replace(v1, `{`, `{"payloadVersion":2,"estUrl":"https://central.example/.well-known/estate",`, 1),
		"estUrl empty":        strings.Replace(v1, `{`, `{"payloadVersion":2,"estUrl":"",`, 1),
		"estUrl null":         strings.Replace(v1, `{`, `{"payloadVersion":2,"estUrl":null,`, 1),
		"payloadVersion 2.0":  strings.Replace(v1, `{`, `{"payloadVersion":2.0,`, 1),
	} {
		if _, err := Parse([]byte(body)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", name, err)
		}
	}
}
