package enroll

import (
	"bytes"
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/zmonitor/firmware/internal/proto/ident"
)

// Record is one device's enrollment record.
type Record struct {
	DeviceID     string `json:"deviceId"`
	DeviceSerial string `json:"deviceSerial"`
	// IdentityKey and PayloadKey are standard base64 of DER
	// SubjectPublicKeyInfo (id-ecPublicKey, P-256).
	IdentityKey     string `json:"identityPublicKey"`
	PayloadKey      string `json:"payloadPublicKey"`
	FirmwareVersion string `json:"firmwareVersion"`
	// The attestation key (attestation.go): standard base64 of its
	// TPMT_PUBLIC, and of the identity key's TPM2_Certify of it
	// (TPMS_ATTEST and TPMT_SIGNATURE). All three or none: records made
	// before attestation have none.
	AttestationKey              string `json:"attestationKey,omitempty"`
	AttestationCertifyInfo      string `json:"attestationKeyCertifyInfo,omitempty"`
	AttestationCertifySignature string `json:"attestationKeyCertifySignature,omitempty"`
}

// Enrollment is another name for Record.
type Enrollment = Record

// Limits of what Parse accepts. deviceId, deviceSerial and firmwareVersion
// follow internal/proto/ident.
const (
	MaxRecord     = 4 << 10 // bytes of JSON
	MaxRecordSize = MaxRecord
)

// Errors Parse (and New) return, wrapped with the field at fault.
var (
	ErrSyntax   = errors.New("enrollment: malformed JSON")
	ErrField    = errors.New("enrollment: bad field")
	ErrTooLarge = errors.New("enrollment: record too large")
)

// New builds the record of a device from the public halves of its identity
// (DevID) and payload keys.
func New(identity crypto.PublicKey, payloadKey *ecdh.PublicKey, deviceID, deviceSerial, firmwareVersion string) (Record, error) {
	idDER, err := x509.MarshalPKIXPublicKey(identity)
	if err != nil {
		return Record{}, fmt.Errorf("enrollment: identity key: %w", err)
	}
	payDER, err := x509.MarshalPKIXPublicKey(payloadKey)
	if err != nil {
		return Record{}, fmt.Errorf("enrollment: payload key: %w", err)
	}
	e := Record{
		DeviceID:        deviceID,
		DeviceSerial:    deviceSerial,
		IdentityKey:     base64.StdEncoding.EncodeToString(idDER),
		PayloadKey:      base64.StdEncoding.EncodeToString(payDER),
		FirmwareVersion: firmwareVersion,
	}
	if err := e.Validate(); err != nil {
		return Record{}, err
	}
	return e, nil
}

// Marshal encodes the record as compact JSON. It does not validate (New
// and Parse do; call Validate when the record was built by hand), so tests
// and tools can produce invalid records on purpose.
func (e Record) Marshal() ([]byte, error) {
	b, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("enrollment: encode: %w", err)
	}
	return b, nil
}

// Parse decodes and validates a record.
func Parse(b []byte) (Record, error) {
	if len(b) > MaxRecordSize {
		return Record{}, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(b), MaxRecordSize)
	}
	if err := checkObject(b); err != nil {
		return Record{}, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var e Record
	if err := dec.Decode(&e); err != nil {
		return Record{}, fmt.Errorf("%w: %w", ErrSyntax, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Record{}, fmt.Errorf("%w: data after the record", ErrSyntax)
	}
	if err := e.Validate(); err != nil {
		return Record{}, err
	}
	return e, nil
}

// ParseEnrollment is Parse (the name the Central Station's importer uses).
func ParseEnrollment(b []byte) (Record, error) { return Parse(b) }

var fieldNames = map[string]bool{
	"deviceId": true, "deviceSerial": true, "identityPublicKey": true,
	"payloadPublicKey": true, "firmwareVersion": true,
	"attestationKey": true, "attestationKeyCertifyInfo": true, "attestationKeyCertifySignature": true,
}

// checkObject requires one flat JSON object whose keys are the record's
// fields, each at most once, with string values. (encoding/json alone keeps
// the last of duplicate keys and matches names case-insensitively.)
func checkObject(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrSyntax, err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return fmt.Errorf("%w: not a JSON object", ErrSyntax)
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return fmt.Errorf("%w: %w", ErrSyntax, err)
		}
		k, _ := tok.(string)
		if !fieldNames[k] {
			return fmt.Errorf("%w: unknown field %q", ErrField, k)
		}
		if seen[k] {
			return fmt.Errorf("%w: duplicate field %q", ErrField, k)
		}
		seen[k] = true
		v, err := dec.Token()
		if err != nil {
			return fmt.Errorf("%w: %w", ErrSyntax, err)
		}
		if _, ok := v.(string); !ok {
			return fmt.Errorf("%w: %s is not a string", ErrField, k)
		}
	}
	if _, err := dec.Token(); err != nil {
		return fmt.Errorf("%w: %w", ErrSyntax, err)
	}
	return nil
}

// Validate checks every field: deviceId, deviceSerial and firmwareVersion
// by the rule of internal/proto/ident; both keys are P-256 SPKIs and differ.
func (e Record) Validate() error {
	for _, f := range []struct {
		name, v string
		check   func(string) error
	}{
		{"deviceId", e.DeviceID, ident.CheckDeviceID},
		{"deviceSerial", e.DeviceSerial, ident.CheckSerial},
		{"firmwareVersion", e.FirmwareVersion, ident.CheckFirmwareVersion},
	} {
		if err := f.check(f.v); err != nil {
			return fmt.Errorf("%w: %s: %w", ErrField, f.name, err)
		}
	}
	id, pay, err := e.Keys()
	if err != nil {
		return err
	}
	idECDH, err := id.ECDH()
	if err != nil {
		return fmt.Errorf("%w: identityPublicKey: %w", ErrField, err)
	}
	if idECDH.Equal(pay) {
		return fmt.Errorf("%w: identity and payload keys are the same key", ErrField)
	}
	if _, err := e.CheckedAttestationKey(); err != nil {
		return err
	}
	return nil
}

// Keys decodes the identity key and the payload key (the HPKE recipient
// key).
func (e Record) Keys() (*ecdsa.PublicKey, *ecdh.PublicKey, error) {
	id, err := parseP256(e.IdentityKey)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: identityPublicKey: %w", ErrField, err)
	}
	k, err := parseP256(e.PayloadKey)
	if err == nil {
		var pay *ecdh.PublicKey
		if pay, err = k.ECDH(); err == nil {
			return id, pay, nil
		}
	}
	return nil, nil, fmt.Errorf("%w: payloadPublicKey: %w", ErrField, err)
}

func parseP256(b64 string) (*ecdsa.PublicKey, error) {
	der, err := base64.StdEncoding.Strict().DecodeString(b64)
	if err != nil {
		return nil, fmt.Errorf("base64: %w", err)
	}
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, err
	}
	k, ok := pub.(*ecdsa.PublicKey)
	if !ok || k.Curve != elliptic.P256() {
		return nil, fmt.Errorf("key is %T, not ECDSA P-256", pub)
	}
	return k, nil
}
