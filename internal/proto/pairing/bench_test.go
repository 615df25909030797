package pairing

import (
	"crypto/rand"
	"testing"
)

// BenchmarkQRBuildWithToken is one rotation with a software key: new nonce,
// ECDSA P-256 signature, compact JSON. (A discrete TPM adds ~200 ms per
// signature; see FACTS.md.)
func BenchmarkQRBuildWithToken(b *testing.B) {
	k := newKey(b)
	q := example(b)
	b.ReportAllocs()
	for b.Loop() {
		tok, err := SignToken(k, rand.Reader, q)
		if err != nil {
			b.Fatal(err)
		}
		q.PairingToken = tok
		if len(q.Marshal()) == 0 {
			b.Fatal("empty")
		}
	}
}

func BenchmarkParseQR(b *testing.B) {
	q := signed(b, newKey(b), example(b))
	raw := q.Marshal()
	b.ReportAllocs()
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		if _, err := ParseQR(raw); err != nil {
			b.Fatal(err)
		}
	}
}
