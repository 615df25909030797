package payload

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/zmonitor/firmware/internal/proto/canonjson"
	"github.com/zmonitor/firmware/internal/proto/ident"
)

// Limits of the payload format.
const (
	// MaxPayload bounds a decrypted payload. It is chosen so that a payload
	// of this size, sealed, still fits MaxEnvelope.
	MaxPayload = 47 << 10
	// MaxSignerChain bounds signerChain (signer, intermediates, and
	// optionally the anchor itself).
	MaxSignerChain = 4
	// MaxPairingCode bounds pairingCode, in characters. deviceId and
	// deviceLabel follow internal/proto/ident.
	MaxPairingCode = 64
	// MaxServerURL bounds serverUrl and estUrl, in bytes.
	MaxServerURL = 2048
	// Version is the newest payload format this package reads and
	// writes. Version 1 is the format without payloadVersion; version 2
	// adds the optional estUrl. A payload says 2 with "payloadVersion":2
	// and version 1 by leaving payloadVersion out (one spelling each).
	Version = 2
	// ESTPathPrefix is the path every estUrl starts with (RFC 7030
	// section 3.2.2), optionally followed by "/" and a label.
	ESTPathPrefix = "/.well-known/est"
)

// SignerEKU is the extended key usage a provisioning signer's certificate
// must carry: 2.25.273617457.466099624.777826626.742089350.900.
//
// Provisional: it is not a registered OID (a proper 2.25 OID is one 128-bit
// UUID arc, which Go's x509 cannot parse in an EKU; no Private Enterprise
// Number is assigned yet). Replace it with an OID under the manufacturer's
// IANA PEN before release; that means re-issuing the signer certificates.
var SignerEKU = asn1.ObjectIdentifier{2, 25, 273617457, 466099624, 777826626, 742089350, 900}

// Config is the configuration payload (DOC-PROC-001 section 4 and DESIGN.md
// section 5). Field names are the spec's, plus pairingCode, sessionNonce,
// configVersion and signerChain. The package's String, GoString and LogValue
// redact the pairing code, the session nonce and the private key.
type Config struct {
	ServerURL         string   `json:"serverUrl"`                  // https://host[:port][/path]
	CACertificate     string   `json:"caCertificate"`              // standard base64 of DER
	ClientCertificate string   `json:"clientCertificate"`          // standard base64 of DER
	ClientPrivateKey  string   `json:"clientPrivateKey,omitempty"` // optional: standard base64 of PKCS#8 or SEC 1 DER
	DeviceID          string   `json:"deviceId"`
	DeviceLabel       string   `json:"deviceLabel"`
	Timestamp         string   `json:"timestamp"`     // RFC 3339, UTC, whole seconds: 2026-11-27T11:55:00Z
	PairingCode       string   `json:"pairingCode"`   // as typed or scanned
	SessionNonce      string   `json:"sessionNonce"`  // base64url without padding of the 32-byte hello nonce
	ConfigVersion     int      `json:"configVersion"` // >= 1
	SignerChain       []string `json:"signerChain"`   // standard base64 of DER, the signer first
	Signature         string   `json:"signature"`     // standard base64 of the ASN.1 DER ECDSA P-256 SHA-256 signature
	// PayloadVersion is the format: omitted for version 1, 2 when a
	// version 2 member (estUrl) may follow.
	PayloadVersion int `json:"payloadVersion,omitempty"`
	// ESTURL is where the device renews its client certificate (EST
	// simple re-enrollment): https://host[:port]/.well-known/est[/label].
	// Optional; version 2.
	ESTURL string `json:"estUrl,omitempty"`
}

// String describes c without its secrets.
func (c Config) String() string {
	return fmt.Sprintf("payload{device %q, label %q, server %q, est %q, version %d, timestamp %q, pairingCode [redacted], sessionNonce [redacted], clientPrivateKey %s}",
		c.DeviceID, c.DeviceLabel, c.ServerURL, c.ESTURL, c.ConfigVersion, c.Timestamp, presence(c.ClientPrivateKey))
}

// GoString is String, so that %#v redacts too.
func (c Config) GoString() string { return c.String() }

// LogValue describes c for log/slog without its secrets.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("deviceId", c.DeviceID), slog.String("deviceLabel", c.DeviceLabel),
		slog.String("serverUrl", c.ServerURL), slog.String("estUrl", c.ESTURL), slog.Int("configVersion", c.ConfigVersion),
		slog.String("timestamp", c.Timestamp), slog.String("clientPrivateKey", presence(c.ClientPrivateKey)))
}

func presence(s string) string {
	if s == "" {
		return "absent"
	}
	return "[redacted]"
}

// Marshal encodes c as JSON, the plaintext the envelope carries. Member order
// and whitespace do not matter to the signature.
func (c Config) Marshal() ([]byte, error) { return json.Marshal(c) }

var (
	requiredMembers = []string{"serverUrl", "caCertificate", "clientCertificate", "deviceId", "deviceLabel", "timestamp", "pairingCode", "sessionNonce", "configVersion", "signerChain", "signature"}
	payloadMembers  = nameSet(append([]string{"clientPrivateKey", "payloadVersion", "estUrl"}, requiredMembers...)...)
)

// Parse decodes a payload strictly: at most MaxPayload bytes of UTF-8, one
// JSON object, no unknown, duplicate, case-folded or null members, every
// required member present, every member well-formed (see docs/protocol.md),
// and the decoded Config must re-encode to the same canonical form as the
// received bytes, so that what the signature covers and what the device acts
// on cannot differ. Every error wraps ErrMalformed.
//
// Parse checks syntax only: certificates are parsed, and the signature and
// the session are checked, by Verify.
func Parse(b []byte) (Config, error) {
	c, _, err := parse(b)
	return c, err
}

// parse is Parse that also returns the signing input: the canonical form of
// the received bytes without the signature member.
func parse(b []byte) (Config, []byte, error) {
	members, err := strictObject(b, MaxPayload, payloadMembers)
	if err != nil {
		return Config{}, nil, err
	}
	for _, k := range requiredMembers {
		if _, ok := members[k]; !ok {
			return Config{}, nil, fmt.Errorf("%w: member %q missing", ErrMalformed, k)
		}
	}
	var c Config
	if err := json.Unmarshal(b, &c); err != nil {
		return Config{}, nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if err := c.checkSyntax(); err != nil {
		return Config{}, nil, err
	}
	received, err := canonicalWithoutSignature(members)
	if err != nil {
		return Config{}, nil, err
	}
	decoded, err := c.CanonicalForSigning()
	if err != nil {
		return Config{}, nil, err
	}
	if !bytes.Equal(received, decoded) {
		return Config{}, nil, fmt.Errorf("%w: members do not decode to the values they encode (empty optional member, non-canonical number or string)", ErrMalformed)
	}
	return c, received, nil
}

// checkSyntax checks the members' formats.
func (c Config) checkSyntax() error {
	bad := func(member, format string, a ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrMalformed, member, fmt.Sprintf(format, a...))
	}
	if _, err := parseServerURL(c.ServerURL); err != nil {
		return bad("serverUrl", "%v", err)
	}
	switch {
	case c.PayloadVersion > Version:
		return bad("payloadVersion", "%d is newer than this firmware reads (%d)", c.PayloadVersion, Version)
	case c.PayloadVersion != 0 && c.PayloadVersion != Version:
		return bad("payloadVersion", "%d: version 1 is written by leaving payloadVersion out, later ones by their number", c.PayloadVersion)
	case c.ESTURL != "" && c.PayloadVersion < 2:
		return bad("estUrl", "needs payloadVersion 2")
	}
	if c.ESTURL != "" {
		if _, err := ParseESTURL(c.ESTURL); err != nil {
			return bad("estUrl", "%v", err)
		}
	}
	if err := ident.CheckDeviceID(c.DeviceID); err != nil {
		return bad("deviceId", "%v", err)
	}
	if err := ident.CheckLabel(c.DeviceLabel); err != nil {
		return bad("deviceLabel", "%v", err)
	}
	if c.PairingCode == "" {
		return bad("pairingCode", "empty")
	}
	if n := utf8.RuneCountInString(c.PairingCode); n > MaxPairingCode {
		return bad("pairingCode", "%d characters, limit %d", n, MaxPairingCode)
	}
	for _, r := range c.PairingCode {
		if !unicode.IsPrint(r) || r == utf8.RuneError {
			return bad("pairingCode", "contains a control or unprintable character")
		}
	}
	if _, err := ParseTimestamp(c.Timestamp); err != nil {
		return bad("timestamp", "%v", err)
	}
	if c.ConfigVersion < 1 {
		return bad("configVersion", "%d, must be >= 1", c.ConfigVersion)
	}
	if n := len(c.SignerChain); n == 0 || n > MaxSignerChain {
		return bad("signerChain", "%d certificates, want 1 to %d", n, MaxSignerChain)
	}
	for i, s := range c.SignerChain {
		if s == "" {
			return bad("signerChain", "entry %d is empty", i)
		}
	}
	if c.CACertificate == "" || c.ClientCertificate == "" {
		return bad("caCertificate/clientCertificate", "empty")
	}
	if c.Signature == "" {
		return bad("signature", "empty")
	}
	return nil
}

// ParseTimestamp parses a payload timestamp: RFC 3339 in UTC with whole
// seconds ("2026-11-27T11:55:00Z"), the form time.RFC3339 formats a UTC time
// in. Offsets and fractions are refused so that one instant has one spelling.
func ParseTimestamp(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, err
	}
	if t.UTC().Format(time.RFC3339) != s {
		return time.Time{}, fmt.Errorf("%q is not UTC with whole seconds (YYYY-MM-DDThh:mm:ssZ)", s)
	}
	return t.UTC(), nil
}

// parseServerURL accepts https://host[:port][/path][?query].
func parseServerURL(s string) (*url.URL, error) {
	if len(s) > MaxServerURL {
		return nil, fmt.Errorf("%d bytes, limit %d", len(s), MaxServerURL)
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, errors.New("not a URL")
	}
	switch {
	case u.Scheme != "https":
		return nil, errors.New("scheme must be https")
	case u.Opaque != "" || u.Hostname() == "":
		return nil, errors.New("no host")
	case u.User != nil:
		return nil, errors.New("user information is not allowed")
	case u.Fragment != "" || u.RawFragment != "":
		return nil, errors.New("a fragment is not allowed")
	}
	return u, nil
}

// ParseESTURL accepts an EST server's base URL:
// https://host[:port]/.well-known/est or .../.well-known/est/label, with no
// user information, query or fragment (RFC 7030 section 3.2.2).
func ParseESTURL(s string) (*url.URL, error) {
	u, err := parseServerURL(s)
	if err != nil {
		return nil, err
	}
	if u.RawQuery != "" || u.ForceQuery {
		return nil, errors.New("a query is not allowed")
	}
	label, ok := strings.CutPrefix(u.Path, ESTPathPrefix)
	if !ok || label != "" && (label[0] != '/' || len(label) == 1 || strings.Contains(label[1:], "/")) {
		return nil, fmt.Errorf("path %q: want %s or %s/label", u.Path, ESTPathPrefix, ESTPathPrefix)
	}
	return u, nil
}

// SigningInput is what the signature covers: the RFC 8785 canonical form of
// the payload b, as received, without its signature member. b must pass the
// same member checks as Parse (one object, known members, no duplicates).
func SigningInput(b []byte) ([]byte, error) {
	m, err := strictObject(b, MaxPayload, payloadMembers)
	if err != nil {
		return nil, err
	}
	return canonicalWithoutSignature(m)
}

func canonicalWithoutSignature(m map[string]json.RawMessage) ([]byte, error) {
	delete(m, "signature")
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	canon, err := canonjson.Canonicalize(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: canonicalize: %v", ErrMalformed, err)
	}
	return canon, nil
}

// CanonicalForSigning is the RFC 8785 canonical form of c without its
// signature: what Sign signs. For a Config returned by Parse it equals
// SigningInput of the received bytes (Parse refuses a payload for which it
// does not).
func (c Config) CanonicalForSigning() ([]byte, error) {
	c.Signature = ""
	raw, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("encode payload: %w", err)
	}
	return SigningInput(raw)
}

// Sign sets c.Signature: ECDSA P-256 with SHA-256 by signer over
// c.CanonicalForSigning(), ASN.1 DER, standard base64. signer must hold a
// P-256 key (it may be a TPM or HSM key; rand is passed to it).
func Sign(c *Config, signer crypto.Signer, rand io.Reader) error {
	pub, ok := signer.Public().(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		return errors.New("sign payload: signer key is not ECDSA P-256")
	}
	in, err := c.CanonicalForSigning()
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

// VerifySignature checks c.Signature with pub over c.CanonicalForSigning().
// Use it on a Config returned by Parse: Parse guarantees that the Config
// re-encodes to the canonical form of the bytes received. (Verify itself
// canonicalizes the received bytes.)
func VerifySignature(c Config, pub *ecdsa.PublicKey) error {
	in, err := c.CanonicalForSigning()
	if err != nil {
		return fmt.Errorf("verify signature: %w", err)
	}
	return verifyDigest(in, c.Signature, pub)
}

// ErrBadSignature is wrapped when a signature does not verify.
var ErrBadSignature = errors.New("signature does not verify with the signer's key: payload altered or signed by another key")

func verifyDigest(in []byte, sigB64 string, pub *ecdsa.PublicKey) error {
	sig, err := base64.StdEncoding.Strict().DecodeString(sigB64)
	if err != nil {
		return errors.New("verify signature: signature is not standard base64")
	}
	d := sha256.Sum256(in)
	if pub == nil || !ecdsa.VerifyASN1(pub, d[:], sig) {
		return fmt.Errorf("verify signature: %w", ErrBadSignature)
	}
	return nil
}
