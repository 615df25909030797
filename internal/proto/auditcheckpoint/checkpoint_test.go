package auditcheckpoint

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

func newKey(t testing.TB) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func hashOf(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }

func TestSignVerifyAndWhatBreaksIt(t *testing.T) {
	k := newKey(t)
	c, err := Sign(k, rand.Reader, "ZM-001", 1234, hashOf("record 1234"))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Signature) != SignatureHexLen {
		t.Fatalf("signature of %d characters", len(c.Signature))
	}
	if err := c.Verify(&k.PublicKey); err != nil {
		t.Fatalf("fresh checkpoint: %v", err)
	}
	back, err := Parse(c.Marshal())
	if err != nil || back != c {
		t.Fatalf("round trip: %+v %v", back, err)
	}
	for name, edit := range map[string]func(*Checkpoint){
		"another record": func(c *Checkpoint) { c.Seq++ },
		"another hash":   func(c *Checkpoint) { c.Hash = hashOf("edited record") },
		"another device": func(c *Checkpoint) { c.DeviceID = "ZM-002" },
		"another signature": func(c *Checkpoint) {
			b := []byte(c.Signature)
			b[10] ^= 1
			c.Signature = string(b)
		},
	} {
		e := c
		edit(&e)
		if err := e.Verify(&k.PublicKey); !errors.Is(err, ErrSignature) && !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if err := c.Verify(&newKey(t).PublicKey); !errors.Is(err, ErrSignature) {
		t.Errorf("another device's key: %v", err)
	}
}

// The signed message is fixed (docs and the Central Station depend on it):
// a vector checked against an independent computation.
func TestDigestVector(t *testing.T) {
	h := hashOf("x")
	got, err := Digest("ZM-001", 7, h)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := hex.DecodeString(h)
	msg := append([]byte{0, byte(len(Label))}, Label...)
	msg = append(msg, 0, 6)
	msg = append(msg, "ZM-001"...)
	msg = append(msg, 0, 0, 0, 0, 0, 0, 0, 7)
	msg = append(msg, raw...)
	want := sha256.Sum256(msg)
	if hex.EncodeToString(got) != hex.EncodeToString(want[:]) {
		t.Fatalf("digest %x, want %x", got, want)
	}
}

func TestParseIsStrict(t *testing.T) {
	good := Checkpoint{DeviceID: "ZM-001", Seq: 5, Hash: hashOf("5"), Signature: strings.Repeat("ab", 64)}
	g := string(good.Marshal())
	for name, in := range map[string]string{
		"case-folded member": strings.Replace(g, `"seq"`, `"SEQ"`, 1),
		"duplicate member":   strings.Replace(g, `"seq":5`, `"seq":5,"seq":6`, 1),
		"unknown member":     strings.Replace(g, `{`, `{"x":1,`, 1),
		"trailing data":      g + "{}",
		"upper-case hex":     strings.Replace(g, good.Hash, strings.ToUpper(good.Hash), 1),
		"short signature":    strings.Replace(g, good.Signature, good.Signature[2:], 1),
		"bad device id":      strings.Replace(g, "ZM-001", "-ZM", 1),
		"negative seq":       strings.Replace(g, `"seq":5`, `"seq":-5`, 1),
		"too long":           g + strings.Repeat(" ", MaxJSON),
		"not JSON":           "checkpoint",
	} {
		if _, err := Parse([]byte(in)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: Parse(%q) = %v", name, in, err)
		}
	}
	if _, err := Parse([]byte(g + "\n")); err != nil {
		t.Errorf("a line with its newline: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	good := Checkpoint{DeviceID: "ZM-001", Seq: 5, Hash: hashOf("5"), Signature: strings.Repeat("ab", 64)}
	f.Add(good.Marshal())
	f.Add([]byte(`{"deviceId":"ZM-001"}`))
	f.Add([]byte(`[]`))
	k := newKey(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Parse(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error without ErrMalformed: %v", err)
			}
			return
		}
		if back, err := Parse(c.Marshal()); err != nil || back != c {
			t.Fatalf("accepted %q but not its own form: %v", b, err)
		}
		if err := c.Verify(&k.PublicKey); err == nil {
			t.Fatalf("a random checkpoint verified: %q", b)
		}
	})
}
