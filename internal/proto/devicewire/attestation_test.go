package devicewire

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
)

func attestedHello(t *testing.T, att *Attestation) (HelloResponse, *ecdsa.PublicKey) {
	t.Helper()
	id, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pk, _ := ecdh.P256().GenerateKey(rand.Reader)
	ck, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "ZM-001"}}, ck)
	h, err := NewAttestedHello(id, "ZM-001", make([]byte, NonceSize), pk.PublicKey(), csr, att)
	if err != nil {
		t.Fatal(err)
	}
	return h, &id.PublicKey
}

func TestHelloCarriesSignedAttestation(t *testing.T) {
	ev := Evidence{Quote: []byte("quote"), QuoteSignature: []byte("sig"), PCR4: bytes.Repeat([]byte{4}, 32), PCR7: bytes.Repeat([]byte{7}, 32), EventLog: []byte("log")}
	h, id := attestedHello(t, NewAttestation(ev))
	v, err := h.Verify(id, "ZM-001")
	if err != nil {
		t.Fatal(err)
	}
	if v.Evidence == nil || !bytes.Equal(v.Evidence.PCR4, ev.PCR4) || !bytes.Equal(v.Evidence.EventLog, ev.EventLog) || v.Unmeasured != "" {
		t.Fatalf("verified evidence %+v, unmeasured %q", v.Evidence, v.Unmeasured)
	}
	// The identity signature covers the attestation: a swapped event log
	// is refused.
	m := h
	a := *h.Attestation
	a.EventLog = base64.StdEncoding.EncodeToString([]byte("other log"))
	m.Attestation = &a
	if _, err := m.Verify(id, "ZM-001"); err == nil {
		t.Error("hello with a swapped event log verified")
	}
	// Through the wire and back.
	b, _ := json.Marshal(h)
	p, err := ParseHelloResponse(b)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Verify(id, "ZM-001"); err != nil {
		t.Fatalf("parsed hello: %v", err)
	}
}

func TestHelloAttestationRefusals(t *testing.T) {
	good := NewAttestation(Evidence{Quote: []byte("q"), QuoteSignature: []byte("s"), PCR4: make([]byte, 32), PCR7: make([]byte, 32), EventLog: []byte("l")})
	for name, c := range map[string]struct {
		att  *Attestation
		want string
	}{
		"quote and reason": {&Attestation{Quote: good.Quote, Unmeasured: "x"}, "both"},
		"no quote":         {&Attestation{PCR4: good.PCR4}, "quote missing"},
		"short PCR":        {&Attestation{Quote: good.Quote, QuoteSignature: good.QuoteSignature, EventLog: good.EventLog, PCR4: "00", PCR7: good.PCR7}, "pcr4"},
		"huge log":         {&Attestation{Quote: good.Quote, QuoteSignature: good.QuoteSignature, PCR4: good.PCR4, PCR7: good.PCR7, EventLog: base64.StdEncoding.EncodeToString(make([]byte, MaxEventLog+1))}, "eventLog longer"},
	} {
		h, id := attestedHello(t, c.att)
		if _, err := h.Verify(id, "ZM-001"); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error containing %q", name, err, c.want)
		}
	}
	h, id := attestedHello(t, Unmeasured("no event log at /sys/kernel/security/tpm0/binary_bios_measurements"))
	v, err := h.Verify(id, "ZM-001")
	if err != nil || v.Evidence != nil || !strings.Contains(v.Unmeasured, "no event log") {
		t.Errorf("unmeasured hello: %+v, %v", v, err)
	}
	h, id = attestedHello(t, nil)
	if v, err := h.Verify(id, "ZM-001"); err != nil || v.Evidence != nil || v.Unmeasured == "" {
		t.Errorf("hello without attestation: %+v, %v", v, err)
	}
}

func TestHelloRequestAttestationNonce(t *testing.T) {
	n := base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{1}, AttestationNonceSize))
	req, err := ParseHelloRequest([]byte(`{"pairingToken":"","attestationNonce":"` + n + `"}`))
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := req.Nonce(); !bytes.Equal(got, bytes.Repeat([]byte{1}, AttestationNonceSize)) {
		t.Errorf("nonce %x", got)
	}
	if _, err := ParseHelloRequest([]byte(`{"pairingToken":"","attestationNonce":"AAAA"}`)); err == nil {
		t.Error("a 3-byte attestation nonce was accepted")
	}
}
