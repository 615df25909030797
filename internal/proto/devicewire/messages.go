package devicewire

import (
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/zmonitor/firmware/internal/proto/canonjson"
	"github.com/zmonitor/firmware/internal/proto/strictjson"
)

// Protocol constants.
const (
	// HelloType is the domain-separation label inside a signed hello.
	HelloType = "zmonitor-hello-v1"
	// NonceSize is the length of a session nonce in bytes.
	NonceSize = 32
	// MaxHelloRequest, MaxEnvelope bound request bodies.
	MaxHelloRequest = 1 << 10
	MaxEnvelope     = 64 << 10
	// MaxResponse bounds what the client reads of one response or line.
	MaxResponse = 64 << 10
)

// HelloRequest opens a pairing exchange. PairingToken is the token from the
// scanned QR; it is empty when the technician typed the pairing code.
type HelloRequest struct {
	PairingToken string `json:"pairingToken"`
	// AttestationNonce is the Central Station's fresh nonce for the
	// device's quote (base64url, AttestationNonceSize bytes); empty from a
	// Central Station before attestation.
	AttestationNonce string `json:"attestationNonce,omitempty"`
}

// Nonce decodes AttestationNonce (nil when absent).
func (r HelloRequest) Nonce() ([]byte, error) {
	if r.AttestationNonce == "" {
		return nil, nil
	}
	n, err := base64.RawURLEncoding.Strict().DecodeString(r.AttestationNonce)
	if err != nil || len(n) != AttestationNonceSize {
		return nil, fmt.Errorf("attestation nonce is not %d base64url bytes", AttestationNonceSize)
	}
	return n, nil
}

// HelloResponse is the device's answer to hello, signed by its identity key.
type HelloResponse struct {
	Type             string `json:"type"`             // HelloType
	DeviceID         string `json:"deviceId"`         //
	SessionNonce     string `json:"sessionNonce"`     // base64url, no padding, NonceSize bytes
	PayloadPublicKey string `json:"payloadPublicKey"` // base64 of the uncompressed P-256 point
	CSR              string `json:"csr"`              // base64 DER PKCS#10 for the new client key
	// Attestation answers the request's attestation nonce (absent when the
	// request had none).
	Attestation *Attestation `json:"attestation,omitempty"`
	Signature   string       `json:"signature"` // base64 ASN.1 ECDSA over SHA-256 of the RFC 8785 form without signature
}

// ErrorBody is the JSON body of every refusal.
type ErrorBody struct {
	Code    string `json:"code"`    // failure.Code identifier
	Message string `json:"message"` // specific, never secret
}

// Progress is one step of a pushed configuration, and the status answer.
type Progress struct {
	State   string     `json:"state"`
	Step    string     `json:"step,omitempty"`
	Error   *ErrorBody `json:"error,omitempty"`
	Final   bool       `json:"final,omitempty"`
	Elapsed int64      `json:"elapsedMs,omitempty"`
}

// Status is the answer to GET /v1/status.
type Status = Progress

// unsignedHello is HelloResponse without the signature, for canonicalization.
type unsignedHello struct {
	Type             string       `json:"type"`
	DeviceID         string       `json:"deviceId"`
	SessionNonce     string       `json:"sessionNonce"`
	PayloadPublicKey string       `json:"payloadPublicKey"`
	CSR              string       `json:"csr"`
	Attestation      *Attestation `json:"attestation,omitempty"`
}

func helloDigest(h HelloResponse) ([]byte, error) {
	raw, err := json.Marshal(unsignedHello{h.Type, h.DeviceID, h.SessionNonce, h.PayloadPublicKey, h.CSR, h.Attestation})
	if err != nil {
		return nil, err
	}
	canon, err := canonjson.Canonicalize(raw)
	if err != nil {
		return nil, err
	}
	d := sha256.Sum256(canon)
	return d[:], nil
}

// NewHello builds and signs a hello response without attestation.
func NewHello(identity crypto.Signer, deviceID string, nonce []byte, payloadKey *ecdh.PublicKey, csrDER []byte) (HelloResponse, error) {
	return NewAttestedHello(identity, deviceID, nonce, payloadKey, csrDER, nil)
}

// NewAttestedHello builds and signs a hello response carrying att (nil:
// none); the identity key's signature covers it.
func NewAttestedHello(identity crypto.Signer, deviceID string, nonce []byte, payloadKey *ecdh.PublicKey, csrDER []byte, att *Attestation) (HelloResponse, error) {
	h := HelloResponse{
		Type:             HelloType,
		DeviceID:         deviceID,
		SessionNonce:     base64.RawURLEncoding.EncodeToString(nonce),
		PayloadPublicKey: base64.StdEncoding.EncodeToString(payloadKey.Bytes()),
		CSR:              base64.StdEncoding.EncodeToString(csrDER),
		Attestation:      att,
	}
	d, err := helloDigest(h)
	if err != nil {
		return HelloResponse{}, fmt.Errorf("sign hello: %w", err)
	}
	sig, err := identity.Sign(rand.Reader, d, crypto.SHA256)
	if err != nil {
		return HelloResponse{}, fmt.Errorf("sign hello: %w", err)
	}
	h.Signature = base64.StdEncoding.EncodeToString(sig)
	return h, nil
}

// VerifiedHello is a hello whose signature and contents checked out.
type VerifiedHello struct {
	DeviceID     string
	SessionNonce []byte
	PayloadKey   *ecdh.PublicKey
	CSR          *x509.CertificateRequest
	// Evidence is the device's quote and event log; nil when it sent none,
	// with its reason in Unmeasured.
	Evidence   *Evidence
	Unmeasured string
}

// Verify checks h against the device identity key and parses its parts.
func (h HelloResponse) Verify(identity *ecdsa.PublicKey, wantDeviceID string) (*VerifiedHello, error) {
	if h.Type != HelloType {
		return nil, fmt.Errorf("verify hello: type %q, want %q", h.Type, HelloType)
	}
	sig, err := base64.StdEncoding.DecodeString(h.Signature)
	if err != nil {
		return nil, fmt.Errorf("verify hello: signature encoding: %w", err)
	}
	d, err := helloDigest(h)
	if err != nil {
		return nil, fmt.Errorf("verify hello: %w", err)
	}
	if !ecdsa.VerifyASN1(identity, d, sig) {
		return nil, errors.New("verify hello: signature does not verify with the device identity key")
	}
	if h.DeviceID != wantDeviceID {
		return nil, fmt.Errorf("verify hello: device %q answered, want %q", h.DeviceID, wantDeviceID)
	}
	nonce, err := base64.RawURLEncoding.DecodeString(h.SessionNonce)
	if err != nil || len(nonce) != NonceSize {
		return nil, fmt.Errorf("verify hello: session nonce is not %d base64url bytes", NonceSize)
	}
	pkb, err := base64.StdEncoding.DecodeString(h.PayloadPublicKey)
	if err != nil {
		return nil, fmt.Errorf("verify hello: payload key encoding: %w", err)
	}
	pk, err := ecdh.P256().NewPublicKey(pkb)
	if err != nil {
		return nil, fmt.Errorf("verify hello: payload key: %w", err)
	}
	csrDER, err := base64.StdEncoding.DecodeString(h.CSR)
	if err != nil {
		return nil, fmt.Errorf("verify hello: CSR encoding: %w", err)
	}
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		return nil, fmt.Errorf("verify hello: CSR: %w", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("verify hello: CSR signature: %w", err)
	}
	if _, ok := csr.PublicKey.(*ecdsa.PublicKey); !ok {
		return nil, errors.New("verify hello: CSR key is not ECDSA")
	}
	ev, why, err := h.Attestation.decode()
	if err != nil {
		return nil, fmt.Errorf("verify hello: %w", err)
	}
	return &VerifiedHello{DeviceID: h.DeviceID, SessionNonce: nonce, PayloadKey: pk, CSR: csr, Evidence: ev, Unmeasured: why}, nil
}

// ParseHelloResponse parses the device's answer to hello (still to be
// verified with HelloResponse.Verify).
func ParseHelloResponse(b []byte) (HelloResponse, error) {
	if len(b) > MaxResponse {
		return HelloResponse{}, fmt.Errorf("hello answer: %d bytes, limit %d", len(b), MaxResponse)
	}
	var h HelloResponse
	if err := strictjson.Decode(b, &h); err != nil {
		return HelloResponse{}, fmt.Errorf("hello answer: %w", err)
	}
	return h, nil
}

// ParseHelloRequest parses a hello request body.
func ParseHelloRequest(b []byte) (HelloRequest, error) {
	if len(b) > MaxHelloRequest {
		return HelloRequest{}, fmt.Errorf("hello request: %d bytes, limit %d", len(b), MaxHelloRequest)
	}
	var req HelloRequest
	if err := strictjson.Decode(b, &req); err != nil {
		return HelloRequest{}, fmt.Errorf("hello request: %w", err)
	}
	if len(req.PairingToken) > 256 {
		return HelloRequest{}, errors.New("hello request: pairing token too long")
	}
	if _, err := req.Nonce(); err != nil {
		return HelloRequest{}, fmt.Errorf("hello request: %w", err)
	}
	return req, nil
}
