package pairing

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/asn1"
	"encoding/base64"
	"errors"
	"io"
	"math/big"
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

// example is the spec's example content (with a valid code).
func example(t testing.TB) QRContent {
	return QRContent{
		DeviceID:        "ZM-001",
		DeviceSerial:    "SN-2024-001234",
		IPAddress:       "192.168.1.100",
		PairingCode:     validCode(t).Display(),
		ExpiresAt:       "2024-11-25T14:30:00Z",
		FirmwareVersion: "1.2.3",
	}
}

func signed(t testing.TB, k crypto.Signer, q QRContent) QRContent {
	tok, err := SignToken(k, rand.Reader, q)
	if err != nil {
		t.Fatal(err)
	}
	q.PairingToken = tok
	return q
}

func TestTokenRoundTrip(t *testing.T) {
	k := newKey(t)
	q := example(t)
	nonceSrc := bytes.NewReader(append(bytes.Repeat([]byte{7}, NonceBytes), make([]byte, 1024)...))
	tok, err := SignToken(k, nonceSrc, q)
	if err != nil {
		t.Fatal(err)
	}
	if len(tok) != TokenChars || strings.ContainsAny(tok, "+/=") {
		t.Fatalf("token %q is not %d characters of base64url", tok, TokenChars)
	}
	q.PairingToken = tok
	nonce, err := VerifyToken(&k.PublicKey, q)
	if err != nil {
		t.Fatal(err)
	}
	if nonce != [NonceBytes]byte(bytes.Repeat([]byte{7}, NonceBytes)) {
		t.Errorf("nonce = %x", nonce)
	}
	if err := q.Validate(); err != nil {
		t.Errorf("signed content does not validate: %v", err)
	}
}

// The digest is exactly the documented encoding (the protocol doc quotes it).
func TestTokenDigestEncoding(t *testing.T) {
	q := QRContent{DeviceID: "ZM-001", DeviceSerial: "SN-1", IPAddress: "10.0.2.15", PairingCode: "ABC-123-DEF", ExpiresAt: "2024-11-25T14:30:00Z", FirmwareVersion: "1.2.3"}
	var nonce [NonceBytes]byte
	for i := range nonce {
		nonce[i] = byte(i)
	}
	var m []byte
	m = append(m, 0, 25)
	m = append(m, "zmonitor-pairing-token-v1"...)
	m = append(m, 0, 6)
	m = append(m, "ZM-001"...)
	m = append(m, 0, 4)
	m = append(m, "SN-1"...)
	m = append(m, 0, 9)
	m = append(m, "10.0.2.15"...)
	m = append(m, 0, 11)
	m = append(m, "ABC-123-DEF"...)
	m = append(m, 0, 20)
	m = append(m, "2024-11-25T14:30:00Z"...)
	m = append(m, 0, 5)
	m = append(m, "1.2.3"...)
	m = append(m, 0, NonceBytes)
	m = append(m, nonce[:]...)
	want := sha256.Sum256(m)
	got, err := TokenDigest(q, nonce)
	if err != nil || !bytes.Equal(got, want[:]) {
		t.Fatalf("TokenDigest = %x, %v; want %x", got, err, want)
	}
	// Moving a byte from one field to the next changes the digest.
	q2 := q
	q2.DeviceID, q2.DeviceSerial = "ZM-00", "1SN-1"
	got2, _ := TokenDigest(q2, nonce)
	if bytes.Equal(got, got2) {
		t.Error("field boundaries are ambiguous")
	}
	q3 := q
	q3.DeviceID = strings.Repeat("x", 70000)
	if _, err := TokenDigest(q3, nonce); !errors.Is(err, ErrTokenMalformed) {
		t.Errorf("oversized field: err = %v", err)
	}
}

func TestVerifyTokenRefusesTampering(t *testing.T) {
	k := newKey(t)
	q := signed(t, k, example(t))
	code2, _ := NewCode(seeded(99))
	if code2.Display() == q.PairingCode {
		t.Fatal("need a different code")
	}
	mutations := map[string]func(*QRContent){
		"deviceId":        func(q *QRContent) { q.DeviceID = "ZM-002" },
		"deviceSerial":    func(q *QRContent) { q.DeviceSerial = "SN-2024-001235" },
		"ipAddress":       func(q *QRContent) { q.IPAddress = "192.168.1.101" },
		"pairingCode":     func(q *QRContent) { q.PairingCode = code2.Display() },
		"expiresAt":       func(q *QRContent) { q.ExpiresAt = "2024-11-25T14:31:00Z" },
		"firmwareVersion": func(q *QRContent) { q.FirmwareVersion = "1.2.4" },
		"nonce": func(q *QRContent) {
			raw, _ := base64.RawURLEncoding.DecodeString(q.PairingToken)
			raw[0] ^= 1
			q.PairingToken = base64.RawURLEncoding.EncodeToString(raw)
		},
		"signature": func(q *QRContent) {
			raw, _ := base64.RawURLEncoding.DecodeString(q.PairingToken)
			raw[TokenBytes-1] ^= 1
			q.PairingToken = base64.RawURLEncoding.EncodeToString(raw)
		},
		"r zero": func(q *QRContent) {
			raw, _ := base64.RawURLEncoding.DecodeString(q.PairingToken)
			clear(raw[NonceBytes : NonceBytes+32])
			q.PairingToken = base64.RawURLEncoding.EncodeToString(raw)
		},
		"s above n": func(q *QRContent) {
			raw, _ := base64.RawURLEncoding.DecodeString(q.PairingToken)
			s := new(big.Int).SetBytes(raw[NonceBytes+32:])
			s.Add(s, elliptic.P256().Params().N)
			if s.BitLen() <= 256 {
				s.FillBytes(raw[NonceBytes+32:])
			} else {
				copy(raw[NonceBytes+32:], bytes.Repeat([]byte{0xff}, 32))
			}
			q.PairingToken = base64.RawURLEncoding.EncodeToString(raw)
		},
	}
	for name, mut := range mutations {
		c := q
		mut(&c)
		if _, err := VerifyToken(&k.PublicKey, c); !errors.Is(err, ErrTokenSignature) {
			t.Errorf("%s changed: err = %v, want ErrTokenSignature", name, err)
		}
	}
	if _, err := VerifyToken(&newKey(t).PublicKey, q); !errors.Is(err, ErrTokenSignature) {
		t.Errorf("other key: err = %v", err)
	}
}

func TestVerifyTokenMalformed(t *testing.T) {
	k := newKey(t)
	q := signed(t, k, example(t))
	tok := q.PairingToken
	for name, bad := range map[string]string{
		"empty":        "",
		"short":        tok[:TokenChars-1],
		"long":         tok + "A",
		"padded":       tok[:TokenChars-2] + "==",
		"std alphabet": "+" + tok[1:],
		"slash":        tok[:50] + "/" + tok[51:],
		"space":        tok[:50] + " " + tok[51:],
		"non-zero pad bits": func() string {
			// The last character carries 2 bits of data and 4 zero bits.
			last := strings.IndexByte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", tok[TokenChars-1])
			return tok[:TokenChars-1] + string("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[last|1])
		}(),
	} {
		c := q
		c.PairingToken = bad
		if _, err := VerifyToken(&k.PublicKey, c); !errors.Is(err, ErrTokenMalformed) {
			t.Errorf("%s: err = %v, want ErrTokenMalformed", name, err)
		}
	}
	if _, err := VerifyToken(nil, q); !errors.Is(err, ErrTokenKey) {
		t.Errorf("nil key: err = %v", err)
	}
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if _, err := VerifyToken(&p384.PublicKey, q); !errors.Is(err, ErrTokenKey) {
		t.Errorf("P-384 key: err = %v", err)
	}
}

// r and s are fixed width: a signature whose r has a leading zero byte still
// makes a TokenBytes-long token that verifies.
func TestTokenFixedWidth(t *testing.T) {
	k := newKey(t)
	q := example(t)
	for i := 0; i < 20000; i++ {
		var nonce [NonceBytes]byte
		rand.Read(nonce[:])
		d, _ := TokenDigest(q, nonce)
		der, err := k.Sign(rand.Reader, d, crypto.SHA256)
		if err != nil {
			t.Fatal(err)
		}
		r, s, err := parseDERSignature(der)
		if err != nil {
			t.Fatal(err)
		}
		if r.BitLen() > 248 && s.BitLen() > 248 {
			continue
		}
		// Found a short value: replay this signer output through SignToken.
		fixed := &fixedSigner{pub: &k.PublicKey, der: der}
		tok, err := SignToken(fixed, bytes.NewReader(nonce[:]), q)
		if err != nil {
			t.Fatal(err)
		}
		q.PairingToken = tok
		if _, err := VerifyToken(&k.PublicKey, q); err != nil {
			t.Fatalf("short r/s: %v", err)
		}
		return
	}
	t.Skip("no signature with a short r or s in 20000 tries")
}

// fixedSigner returns a prepared signature or error.
type fixedSigner struct {
	pub crypto.PublicKey
	der []byte
	err error
}

func (f *fixedSigner) Public() crypto.PublicKey { return f.pub }
func (f *fixedSigner) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	return f.der, f.err
}

func TestSignTokenErrors(t *testing.T) {
	k := newKey(t)
	q := example(t)
	goodDER, _ := asn1.Marshal(struct{ R, S *big.Int }{big.NewInt(1), big.NewInt(2)})
	longDER, _ := asn1.Marshal(struct{ R, S *big.Int }{new(big.Int).Lsh(big.NewInt(1), 256), big.NewInt(2)})
	negDER, _ := asn1.Marshal(struct{ R, S *big.Int }{big.NewInt(-1), big.NewInt(2)})
	rsaKey, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	bad := q
	bad.IPAddress = "not an ip"
	tests := []struct {
		name   string
		signer crypto.Signer
		rand   io.Reader
		q      QRContent
		want   string
	}{
		{"nil signer", nil, rand.Reader, q, "no signer"},
		{"RSA", rsaKey, rand.Reader, q, "not ECDSA P-256"},
		{"P-384", p384, rand.Reader, q, "not ECDSA P-256"},
		{"invalid content", k, rand.Reader, bad, "ipAddress"},
		{"no randomness", k, bytes.NewReader(nil), q, "nonce"},
		{"signer fails", &fixedSigner{pub: &k.PublicKey, err: errors.New("tpm: busy")}, rand.Reader, q, "tpm: busy"},
		{"raw r||s instead of DER", &fixedSigner{pub: &k.PublicKey, der: make([]byte, 64)}, rand.Reader, q, "not an ASN.1"},
		{"trailing bytes", &fixedSigner{pub: &k.PublicKey, der: append(goodDER, 0)}, rand.Reader, q, "trailing"},
		{"r too long", &fixedSigner{pub: &k.PublicKey, der: longDER}, rand.Reader, q, "out of range"},
		{"negative r", &fixedSigner{pub: &k.PublicKey, der: negDER}, rand.Reader, q, "out of range"},
		{"wrong signature", &fixedSigner{pub: &k.PublicKey, der: goodDER}, rand.Reader, q, "does not verify"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := SignToken(tc.signer, tc.rand, tc.q)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("SignToken = %q, %v; want error with %q", tok, err, tc.want)
			}
		})
	}
}

func FuzzVerifyToken(f *testing.F) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	q := example(f)
	tok, err := SignToken(k, rand.Reader, q)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(tok, q.DeviceID)
	f.Add("", "")
	f.Add(tok[:TokenChars-1]+"=", q.DeviceID)
	f.Add(strings.Repeat("A", TokenChars), q.DeviceID)
	f.Add(strings.Repeat("_", TokenChars), "ZM-002")
	f.Fuzz(func(t *testing.T, token, deviceID string) {
		c := q
		c.PairingToken, c.DeviceID = token, deviceID
		nonce, err := VerifyToken(&k.PublicKey, c)
		if err != nil {
			if !errors.Is(err, ErrTokenMalformed) && !errors.Is(err, ErrTokenSignature) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		if deviceID != q.DeviceID {
			t.Fatalf("token verified for another deviceId")
		}
		raw, _ := base64.RawURLEncoding.DecodeString(token)
		if !bytes.Equal(raw[:NonceBytes], nonce[:]) {
			t.Fatalf("nonce %x not the token's", nonce)
		}
	})
}
