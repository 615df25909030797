package enroll

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/zmonitor/firmware/internal/keys"
)

// Record is an enrollment record.
type Record struct {
	DeviceID        string `json:"deviceId"`
	DeviceSerial    string `json:"deviceSerial"`
	IdentityKey     string `json:"identityPublicKey"` // base64 DER SPKI, ECDSA P-256
	PayloadKey      string `json:"payloadPublicKey"`  // base64 DER SPKI, P-256 (ECDH)
	FirmwareVersion string `json:"firmwareVersion"`
}

// MaxRecord bounds a record.
const MaxRecord = 4 << 10

// New makes the record of the device whose keys are ks.
func New(ks keys.Store, deviceID, serial, firmware string) (Record, error) {
	id, err := x509.MarshalPKIXPublicKey(ks.Identity().Public())
	if err != nil {
		return Record{}, fmt.Errorf("enroll: identity key: %w", err)
	}
	pk, err := x509.MarshalPKIXPublicKey(ks.PayloadKey().PublicKey())
	if err != nil {
		return Record{}, fmt.Errorf("enroll: payload key: %w", err)
	}
	r := Record{DeviceID: deviceID, DeviceSerial: serial, IdentityKey: base64.StdEncoding.EncodeToString(id),
		PayloadKey: base64.StdEncoding.EncodeToString(pk), FirmwareVersion: firmware}
	if _, _, err := r.Keys(); err != nil {
		return Record{}, err
	}
	return r, nil
}

// Marshal encodes the record.
func (r Record) Marshal() ([]byte, error) { return json.Marshal(r) }

// Parse decodes a record strictly and checks its keys.
func Parse(b []byte) (Record, error) {
	if len(b) > MaxRecord {
		return Record{}, fmt.Errorf("enroll: record of %d bytes, limit %d", len(b), MaxRecord)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var r Record
	if err := dec.Decode(&r); err != nil {
		return Record{}, fmt.Errorf("enroll: %w", err)
	}
	if len(bytes.TrimSpace(b[dec.InputOffset():])) != 0 {
		return Record{}, errors.New("enroll: trailing data after the record")
	}
	if r.DeviceID == "" || r.DeviceSerial == "" || r.FirmwareVersion == "" {
		return Record{}, errors.New("enroll: deviceId, deviceSerial and firmwareVersion are required")
	}
	if _, _, err := r.Keys(); err != nil {
		return Record{}, err
	}
	return r, nil
}

// Keys parses the record's public keys.
func (r Record) Keys() (*ecdsa.PublicKey, *ecdh.PublicKey, error) {
	parse := func(name, s string) (any, error) {
		der, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, fmt.Errorf("enroll: %s is not base64", name)
		}
		k, err := x509.ParsePKIXPublicKey(der)
		if err != nil {
			return nil, fmt.Errorf("enroll: %s: %w", name, err)
		}
		return k, nil
	}
	ik, err := parse("identityPublicKey", r.IdentityKey)
	if err != nil {
		return nil, nil, err
	}
	id, ok := ik.(*ecdsa.PublicKey)
	if !ok || id.Curve != elliptic.P256() {
		return nil, nil, errors.New("enroll: identityPublicKey is not ECDSA P-256")
	}
	pk, err := parse("payloadPublicKey", r.PayloadKey)
	if err != nil {
		return nil, nil, err
	}
	var payload *ecdh.PublicKey
	switch k := pk.(type) {
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return nil, nil, errors.New("enroll: payloadPublicKey is not P-256")
		}
		payload, err = k.ECDH()
	case *ecdh.PublicKey:
		if k.Curve() != ecdh.P256() {
			return nil, nil, errors.New("enroll: payloadPublicKey is not P-256")
		}
		payload = k
	default:
		err = errors.New("enroll: payloadPublicKey is not a P-256 key")
	}
	if err != nil {
		return nil, nil, err
	}
	return id, payload, nil
}
