package payload

import (
	"crypto/rand"
	"testing"
)

// BenchmarkVerify is the device's work on a config request with software
// keys: open the envelope and run every check.
func BenchmarkVerify(b *testing.B) {
	f := newFixture(b)
	env := f.seal(b, nil, nil)
	e := f.expect()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Verify(env, f.payload, e); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSeal is the Central Station's encryption of one payload.
func BenchmarkSeal(b *testing.B) {
	f := newFixture(b)
	plain := must[[]byte](b)(f.signed(b, nil, nil).Marshal())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Seal(f.payload.PublicKey(), f.nonce, plain); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSignAndSeal is the Central Station's whole per-device payload
// work: sign, check, seal.
func BenchmarkSignAndSeal(b *testing.B) {
	f := newFixture(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := SignAndSeal(f.cfg, f.signer.Key, rand.Reader, f.payload.PublicKey(), f.nonce); err != nil {
			b.Fatal(err)
		}
	}
}
