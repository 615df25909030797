package devicewire

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"testing"
)

func TestHelloSignatureCoversEveryField(t *testing.T) {
	id, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pk, _ := ecdh.P256().GenerateKey(rand.Reader)
	ck, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "ZM-001"}}, ck)
	nonce := make([]byte, NonceSize)
	_, _ = rand.Read(nonce)
	h, err := NewHello(id, "ZM-001", nonce, pk.PublicKey(), csr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Verify(&id.PublicKey, "ZM-001"); err != nil {
		t.Fatalf("valid hello refused: %v", err)
	}
	other, _ := ecdh.P256().GenerateKey(rand.Reader)
	for name, mutate := range map[string]func(*HelloResponse){
		"deviceId": func(h *HelloResponse) { h.DeviceID = "ZM-002" },
		"sessionNonce": func(h *HelloResponse) {
			h.SessionNonce = base64.RawURLEncoding.EncodeToString(make([]byte, 31)) + "A"
		},
		"payloadPublicKey": func(h *HelloResponse) {
			h.PayloadPublicKey = base64.StdEncoding.EncodeToString(other.PublicKey().Bytes())
		},
		"csr":  func(h *HelloResponse) { h.CSR = h.CSR[:len(h.CSR)-4] + "AAAA" },
		"type": func(h *HelloResponse) { h.Type = "zmonitor-hello-v0" },
	} {
		m := h
		mutate(&m)
		if _, err := m.Verify(&id.PublicKey, m.DeviceID); err == nil {
			t.Errorf("tampered %s accepted", name)
		}
	}
	stranger, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if _, err := h.Verify(&stranger.PublicKey, "ZM-001"); err == nil {
		t.Error("hello verified with another identity key")
	}
	if _, err := h.Verify(&id.PublicKey, "ZM-002"); err == nil {
		t.Error("hello from ZM-001 accepted for ZM-002")
	}
}

func FuzzParseHelloRequest(f *testing.F) {
	f.Add([]byte(`{"pairingToken":"abc"}`))
	f.Add([]byte(`{"pairingToken":""}`))
	f.Add([]byte(`{"pairingToken":"a"} x`))
	f.Add([]byte(`{"pairingToken":1}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		req, err := ParseHelloRequest(b)
		if err == nil && len(req.PairingToken) > 256 {
			t.Fatalf("accepted a %d-byte token", len(req.PairingToken))
		}
	})
}

func FuzzHelloVerify(f *testing.F) {
	id, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pk, _ := ecdh.P256().GenerateKey(rand.Reader)
	ck, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, ck)
	h, _ := NewHello(id, "ZM-001", make([]byte, NonceSize), pk.PublicKey(), csr)
	f.Add(h.Type, h.DeviceID, h.SessionNonce, h.PayloadPublicKey, h.CSR, h.Signature)
	f.Add("", "", "", "", "", "")
	f.Fuzz(func(t *testing.T, typ, dev, nonce, pub, csr, sig string) {
		m := HelloResponse{Type: typ, DeviceID: dev, SessionNonce: nonce, PayloadPublicKey: pub, CSR: csr, Signature: sig}
		v, err := m.Verify(&id.PublicKey, dev)
		if err == nil && (len(v.SessionNonce) != NonceSize || v.CSR == nil || v.PayloadKey == nil) {
			t.Fatalf("accepted an incomplete hello: %+v", v)
		}
	})
}

// A request or answer is read as exactly what it says: a member whose name
// differs only in case, a member given twice, an unknown member or data
// after the object is refused, not folded or overwritten as encoding/json
// would.
func TestParseIsStrict(t *testing.T) {
	for _, b := range []string{
		`{"PairingToken":"abc"}`,
		`{"pairingtoken":"abc"}`,
		`{"pairingToken":"abc","pairingToken":"def"}`,
		`{"pairingToken":"abc","extra":1}`,
		`{"pairingToken":"abc"} {}`,
		"{\"pairingToken\":\"\xff\"}",
	} {
		if req, err := ParseHelloRequest([]byte(b)); err == nil {
			t.Errorf("hello request %q accepted as %+v", b, req)
		}
	}
	if _, err := ParseHelloRequest([]byte(`{"pairingToken":"abc"}`)); err != nil {
		t.Fatalf("a plain hello request refused: %v", err)
	}
	for _, b := range []string{
		`{"type":"zmonitor-hello-v1","Type":"x","deviceId":"a","sessionNonce":"","payloadPublicKey":"","csr":"","signature":""}`,
		`{"type":"zmonitor-hello-v1","deviceId":"a","deviceId":"b","sessionNonce":"","payloadPublicKey":"","csr":"","signature":""}`,
	} {
		if h, err := ParseHelloResponse([]byte(b)); err == nil {
			t.Errorf("hello answer %q accepted as %+v", b, h)
		}
	}
}
