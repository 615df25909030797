package settings

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/zmonitor/firmware/internal/proto/ident"
)

// Provisioning is what a successful pairing leaves on the device.
type Provisioning struct {
	ServerURL     string    // https URL of the monitoring server
	DeviceLabel   string    // e.g. "ICU-MON-04"
	DeviceID      string    // e.g. "ZM-001"
	CACertDER     []byte    // the only CA the server certificate is checked against
	ClientCertDER []byte    // the device's client certificate
	ClientKeyRef  string    // opaque reference to the TPM-held client key; never key material
	ConfigVersion int       // the Central Station's configuration version
	ProvisionedAt time.Time // wall time of staging (UTC when read back)
	ClockTrusted  bool      // whether ProvisionedAt came from a trusted clock
	// ESTURL is the EST server the device renews its client certificate
	// at (https://host[:port]/.well-known/est[/label]); "" when the
	// payload named none: the device does not renew.
	ESTURL string
}

// ServerHost is the host (and port, if any) of ServerURL, as the
// PROVISIONED screen and the audit trail show it; "" when ServerURL does
// not parse.
func (p Provisioning) ServerHost() string {
	u, err := url.Parse(p.ServerURL)
	if err != nil {
		return ""
	}
	return u.Host
}

// Limits enforced by Validate. DeviceID and DeviceLabel follow
// internal/proto/ident.
const (
	MaxURLBytes    = 2048
	MaxCertBytes   = 16 << 10
	MaxKeyRefBytes = 128
	// maxKeyRefRun is the longest run of base64/hex characters accepted in
	// ClientKeyRef: a 32-byte P-256 scalar is 43 characters of base64.
	maxKeyRefRun = 32
)

// ErrInvalid is wrapped by every Validate error.
var ErrInvalid = errors.New("settings: invalid provisioning")

// Validate checks p before it is stored and after it is read back.
func (p Provisioning) Validate() error {
	if err := checkServerURL(p.ServerURL); err != nil {
		return fmt.Errorf("%w: serverUrl: %v", ErrInvalid, err)
	}
	if err := ident.CheckDeviceID(p.DeviceID); err != nil {
		return fmt.Errorf("%w: deviceId: %v", ErrInvalid, err)
	}
	if err := ident.CheckLabel(p.DeviceLabel); err != nil {
		return fmt.Errorf("%w: deviceLabel: %v", ErrInvalid, err)
	}
	if p.ESTURL != "" {
		if err := checkServerURL(p.ESTURL); err != nil {
			return fmt.Errorf("%w: estUrl: %v", ErrInvalid, err)
		}
	}
	if err := checkCert(p.CACertDER); err != nil {
		return fmt.Errorf("%w: CA certificate: %v", ErrInvalid, err)
	}
	if err := checkCert(p.ClientCertDER); err != nil {
		return fmt.Errorf("%w: client certificate: %v", ErrInvalid, err)
	}
	if err := checkKeyRef(p.ClientKeyRef); err != nil {
		return fmt.Errorf("%w: clientKeyRef: %v", ErrInvalid, err)
	}
	if p.ConfigVersion < 0 {
		return fmt.Errorf("%w: configVersion %d is negative", ErrInvalid, p.ConfigVersion)
	}
	if p.ProvisionedAt.IsZero() {
		return fmt.Errorf("%w: provisionedAt is not set", ErrInvalid)
	}
	return nil
}

func checkServerURL(s string) error {
	if len(s) > MaxURLBytes {
		return fmt.Errorf("longer than %d bytes", MaxURLBytes)
	}
	u, err := url.Parse(s)
	if err != nil {
		return errors.New("not a URL")
	}
	switch {
	case u.Scheme != "https":
		return fmt.Errorf("scheme %q, want https", u.Scheme)
	case u.Opaque != "" || u.Hostname() == "":
		return errors.New("no host")
	case u.User != nil:
		return errors.New("holds user information")
	case u.Fragment != "":
		return errors.New("holds a fragment")
	}
	return nil
}

func checkCert(der []byte) error {
	if len(der) == 0 {
		return errors.New("missing")
	}
	if len(der) > MaxCertBytes {
		return fmt.Errorf("%d bytes, more than %d", len(der), MaxCertBytes)
	}
	if _, err := x509.ParseCertificate(der); err != nil {
		return fmt.Errorf("not a DER certificate: %w", err)
	}
	return nil
}

// checkKeyRef accepts a short printable-ASCII reference ("0x81000003",
// "keystore:committed-client-key") and refuses anything that looks like
// key material. The error never quotes the value.
func checkKeyRef(s string) error {
	if s == "" || len(s) > MaxKeyRefBytes {
		return fmt.Errorf("length %d, want 1 to %d", len(s), MaxKeyRefBytes)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return fmt.Errorf("byte %d is not printable ASCII (key material?)", i)
		}
	}
	if strings.Contains(s, "-----") {
		return errors.New("looks like a PEM block; store a reference to the key, not the key")
	}
	run := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '/' || c == '=' || c == '_' || c == '-' {
			run++
			if run > maxKeyRefRun {
				return fmt.Errorf("a run of more than %d base64/hex characters looks like key material; store a reference to the key", maxKeyRefRun)
			}
			continue
		}
		run = 0
	}
	return nil
}

// stored is the on-disk form (JSON). Changing it needs a schema migration.
type stored struct {
	ServerURL     string `json:"serverUrl"`
	DeviceLabel   string `json:"deviceLabel"`
	DeviceID      string `json:"deviceId"`
	CACertDER     []byte `json:"caCertificate"`
	ClientCertDER []byte `json:"clientCertificate"`
	ClientKeyRef  string `json:"clientKeyRef"`
	ConfigVersion int    `json:"configVersion"`
	ProvisionedAt string `json:"provisionedAt"`
	ClockTrusted  bool   `json:"clockTrusted"`
	ESTURL        string `json:"estUrl,omitempty"`
}

func encode(p Provisioning) ([]byte, error) {
	b, err := json.Marshal(stored{
		ServerURL: p.ServerURL, DeviceLabel: p.DeviceLabel, DeviceID: p.DeviceID,
		CACertDER: p.CACertDER, ClientCertDER: p.ClientCertDER, ClientKeyRef: p.ClientKeyRef,
		ConfigVersion: p.ConfigVersion, ProvisionedAt: p.ProvisionedAt.UTC().Format(time.RFC3339Nano),
		ClockTrusted: p.ClockTrusted, ESTURL: p.ESTURL,
	})
	if err != nil {
		return nil, fmt.Errorf("encode provisioning: %w", err)
	}
	return b, nil
}

// ErrCorrupt is wrapped by errors about stored data that does not read
// back as what this package writes.
var ErrCorrupt = errors.New("settings: stored record is corrupt")

// decode reads a stored record strictly and validates it. raw may point
// into the database's memory map: everything returned is copied.
func decode(raw []byte) (Provisioning, error) {
	var s stored
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return Provisioning{}, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if dec.More() {
		return Provisioning{}, fmt.Errorf("%w: data after the record", ErrCorrupt)
	}
	at, err := time.Parse(time.RFC3339Nano, s.ProvisionedAt)
	if err != nil {
		return Provisioning{}, fmt.Errorf("%w: provisionedAt: %v", ErrCorrupt, err)
	}
	p := Provisioning{
		ServerURL: s.ServerURL, DeviceLabel: s.DeviceLabel, DeviceID: s.DeviceID,
		CACertDER: s.CACertDER, ClientCertDER: s.ClientCertDER, ClientKeyRef: s.ClientKeyRef,
		ConfigVersion: s.ConfigVersion, ProvisionedAt: at.UTC(), ClockTrusted: s.ClockTrusted,
		ESTURL: s.ESTURL,
	}
	if err := p.Validate(); err != nil {
		return Provisioning{}, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return p, nil
}
