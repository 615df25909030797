package tpm

import (
	"crypto"
	"crypto/ecdh"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"testing"

	"github.com/zmonitor/firmware/drivers/tpm/tpmcount"
)

// tokenRotations is how many pairing tokens a pairing session signs: the
// token rotates every 30 s over a 10-minute session (DESIGN.md 4).
const tokenRotations = 20

// onePairing does the TPM work of one pairing, in the order the device does
// it: the provisioning port's TLS handshake (identity), the QR token
// rotations (identity), the hello answer (identity), the payload's HPKE
// decapsulation (payload ECDH), a new client key and its CSR, the
// connection test's TLS handshake (client key) and the commit.
func onePairing(tb testing.TB, s *Store, peer *ecdh.PublicKey) {
	d := sha("pairing")
	for i := 0; i < 1+tokenRotations+1; i++ {
		if _, err := s.Identity().Sign(nil, d, crypto.SHA256); err != nil {
			tb.Fatal(err)
		}
	}
	if _, err := s.PayloadKey().ECDH(peer); err != nil {
		tb.Fatal(err)
	}
	ck, err := s.NewClientKey()
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "ZM-001"}}, ck); err != nil {
		tb.Fatal(err)
	}
	if _, err := ck.Sign(nil, d, crypto.SHA256); err != nil { // TLS 1.3 CertificateVerify
		tb.Fatal(err)
	}
	if err := ck.Commit(); err != nil {
		tb.Fatal(err)
	}
}

// BenchmarkPairingTPMWork runs one pairing's worth of TPM commands per
// iteration on swtpm (unix socket) and reports the commands per pairing and
// the mean time of each command kind (ns/<command>).
func BenchmarkPairingTPMWork(b *testing.B) {
	s, counter := countedSwtpm(b)
	eph, _ := ecdh.P256().GenerateKey(rand.Reader)
	onePairing(b, s, eph.PublicKey()) // steady state: a committed key exists
	counter.Reset()
	n := 0
	for b.Loop() {
		onePairing(b, s, eph.PublicKey())
		n++
	}
	b.ReportMetric(float64(counter.Total())/float64(n), "cmds/pairing")
	for _, st := range counter.Stats() {
		b.ReportMetric(float64(st.Mean().Nanoseconds()), "ns/"+tpmcount.Name(st.Code))
		b.Logf("%s: %.1f per pairing, %v each", tpmcount.Name(st.Code), float64(st.Count)/float64(n), st.Mean())
	}
	if hs, err := s.TransientHandles(); err != nil || len(hs) != 0 {
		b.Fatalf("transient handles after the benchmark: %v %v", hs, err)
	}
}

// TestPairingCommandCount pins the number of TPM commands one pairing costs,
// so a change that adds round trips is noticed.
func TestPairingCommandCount(t *testing.T) {
	s, counter := countedSwtpm(t)
	eph, _ := ecdh.P256().GenerateKey(rand.Reader)
	onePairing(t, s, eph.PublicKey())
	counter.Reset()
	onePairing(t, s, eph.PublicKey())
	// 22 identity signs + 1 ECDH + Create, Load + CSR sign + TLS sign +
	// Commit (ReadPublic, EvictControl old, EvictControl new, Flush,
	// ReadPublic) = 32.
	if got := counter.Total(); got != 32 {
		t.Errorf("one pairing = %d TPM commands, want 32:\n%s", got, counter)
	}
}

// countedSwtpm is a provisioned Store on a fresh swtpm (unix socket) whose
// TPM commands counter counts; it is closed when tb ends.
func countedSwtpm(tb testing.TB) (*Store, *tpmcount.Counter) {
	tb.Helper()
	be := startSwtpm(tb, false)
	counter := tpmcount.New(be.open(tb), nil)
	s, err := New(counter, provision)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s, counter
}
