package payload

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/gowebpki/jcs"
)

// MaxPayload bounds a decrypted payload.
const MaxPayload = 48 << 10

// SignerEKU is the extended key usage a provisioning signer's certificate
// must carry (an OID under the self-assignable UUID arc, X.667).
var SignerEKU = asn1.ObjectIdentifier{2, 25, 273617457, 466099624, 777826626, 742089350, 900}

// Config is the configuration payload. Field names are the spec's, plus
// pairingCode, sessionNonce, configVersion and signerChain.
type Config struct {
	ServerURL         string   `json:"serverUrl"`
	CACertificate     string   `json:"caCertificate"`              // base64 DER
	ClientCertificate string   `json:"clientCertificate"`          // base64 DER
	ClientPrivateKey  string   `json:"clientPrivateKey,omitempty"` // base64 PKCS#8/SEC 1 DER, optional
	DeviceID          string   `json:"deviceId"`
	DeviceLabel       string   `json:"deviceLabel"`
	Timestamp         string   `json:"timestamp"` // RFC 3339 UTC
	PairingCode       string   `json:"pairingCode"`
	SessionNonce      string   `json:"sessionNonce"` // base64url, no padding, 32 bytes
	ConfigVersion     int      `json:"configVersion"`
	SignerChain       []string `json:"signerChain"` // base64 DER, signer first
	Signature         string   `json:"signature"`   // base64 ASN.1 ECDSA P-256 SHA-256
}

// String redacts the secrets (pairing code, session nonce, private key).
func (c Config) String() string {
	return fmt.Sprintf("payload{device %s, label %q, server %s, version %d, timestamp %s, pairingCode [redacted], clientPrivateKey %s}",
		c.DeviceID, c.DeviceLabel, c.ServerURL, c.ConfigVersion, c.Timestamp, presence(c.ClientPrivateKey))
}

// GoString is String, so %#v redacts too.
func (c Config) GoString() string { return c.String() }

// LogValue redacts for log/slog.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("deviceId", c.DeviceID), slog.String("deviceLabel", c.DeviceLabel),
		slog.String("serverUrl", c.ServerURL), slog.Int("configVersion", c.ConfigVersion),
		slog.String("timestamp", c.Timestamp), slog.String("clientPrivateKey", presence(c.ClientPrivateKey)))
}

func presence(s string) string {
	if s == "" {
		return "absent"
	}
	return "[redacted]"
}

// Marshal encodes c as JSON (what the envelope carries).
func (c Config) Marshal() ([]byte, error) { return json.Marshal(c) }

var required = []string{"serverUrl", "caCertificate", "clientCertificate", "deviceId", "deviceLabel", "timestamp", "pairingCode", "sessionNonce", "configVersion", "signerChain", "signature"}

// ErrMalformed is wrapped by every parse error.
var ErrMalformed = errors.New("payload malformed")

// Parse decodes a payload strictly: size-limited, one JSON object, no
// unknown or duplicate members, every required member present.
func Parse(b []byte) (Config, error) {
	members, err := members(b)
	if err != nil {
		return Config{}, err
	}
	for _, k := range required {
		if _, ok := members[k]; !ok {
			return Config{}, fmt.Errorf("%w: member %q missing", ErrMalformed, k)
		}
	}
	var c Config
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return Config{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if c.ConfigVersion < 1 {
		return Config{}, fmt.Errorf("%w: configVersion %d, must be >= 1", ErrMalformed, c.ConfigVersion)
	}
	if len(c.SignerChain) == 0 || len(c.SignerChain) > 4 {
		return Config{}, fmt.Errorf("%w: signerChain has %d certificates, want 1 to 4", ErrMalformed, len(c.SignerChain))
	}
	return c, nil
}

// members splits one JSON object into its members, refusing duplicates,
// unknown names (matched exactly, not case-insensitively as encoding/json
// would), nulls and trailing data.
func members(b []byte) (map[string]json.RawMessage, error) {
	if len(b) > MaxPayload {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrMalformed, len(b), MaxPayload)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil || tok != json.Delim('{') {
		return nil, fmt.Errorf("%w: not a JSON object", ErrMalformed)
	}
	known := map[string]bool{"clientPrivateKey": true}
	for _, k := range required {
		known[k] = true
	}
	out := map[string]json.RawMessage{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
		}
		name, _ := tok.(string)
		if !known[name] {
			return nil, fmt.Errorf("%w: unknown member %q", ErrMalformed, name)
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("%w: member %q appears twice", ErrMalformed, name)
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, fmt.Errorf("%w: member %q: %v", ErrMalformed, name, err)
		}
		if string(raw) == "null" {
			return nil, fmt.Errorf("%w: member %q is null", ErrMalformed, name)
		}
		out[name] = raw
	}
	if _, err := dec.Token(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: trailing data after the object", ErrMalformed)
	}
	return out, nil
}

// SigningInput is the RFC 8785 canonical form of the payload b (as
// received) without its signature member: what the signature covers.
func SigningInput(b []byte) ([]byte, error) {
	m, err := members(b)
	if err != nil {
		return nil, err
	}
	delete(m, "signature")
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	canon, err := jcs.Transform(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: canonicalize: %v", ErrMalformed, err)
	}
	return canon, nil
}

// Sign sets c.Signature: ECDSA P-256 over SHA-256 of the canonical form of c
// without its signature.
func Sign(c *Config, signer crypto.Signer, rand io.Reader) error {
	c.Signature = ""
	raw, err := c.Marshal()
	if err != nil {
		return fmt.Errorf("sign payload: %w", err)
	}
	in, err := SigningInput(raw)
	if err != nil {
		return fmt.Errorf("sign payload: %w", err)
	}
	d := sha256.Sum256(in)
	sig, err := signer.Sign(rand, d[:], crypto.SHA256)
	if err != nil {
		return fmt.Errorf("sign payload: %w", err)
	}
	c.Signature = base64.StdEncoding.EncodeToString(sig)
	return nil
}

// VerifySignature checks the signature of the payload b (as received).
func VerifySignature(b []byte, pub *ecdsa.PublicKey) error {
	c, err := Parse(b)
	if err != nil {
		return err
	}
	sig, err := base64.StdEncoding.DecodeString(c.Signature)
	if err != nil {
		return fmt.Errorf("signature is not base64: %w", err)
	}
	in, err := SigningInput(b)
	if err != nil {
		return err
	}
	d := sha256.Sum256(in)
	if !ecdsa.VerifyASN1(pub, d[:], sig) {
		return errors.New("signature does not verify with the signer's key")
	}
	return nil
}
