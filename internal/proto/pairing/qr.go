package pairing

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"time"

	"github.com/zmonitor/firmware/internal/proto/ident"
)

// TimeLayout is the form of expiresAt: RFC 3339, UTC, whole seconds, "Z".
const TimeLayout = "2006-01-02T15:04:05Z"

// Field limits. Every field is checked against them by ParseQR and by
// NewSession; deviceId, deviceSerial and firmwareVersion follow the rule of
// internal/proto/ident (at most 32 bytes each).
const (
	MaxIPAddressLen = 39 // an IPv6 address without zone

	// MaxQRBytes bounds the whole compact JSON a Session shows: 331 bytes is
	// the byte-mode capacity of QR version 13 at error correction M (69
	// modules; 3 px per module plus a 4-module quiet zone is 231 px, so it
	// fits a 240 px panel). The fixed part (names, punctuation, code, token,
	// expiresAt) takes 248 bytes, which leaves 83 bytes for deviceId,
	// deviceSerial, ipAddress and firmwareVersion together: for example
	// 20 + 24 + 15 (IPv4) + 24. NewSession refuses content longer than this.
	MaxQRBytes = 331

	// MaxQRInput is the most ParseQR reads.
	MaxQRInput = 1024
)

// QRContent is what the pairing QR code carries: the spec's JSON object
// (DOC-PROC-001 section 3) with its field names, in its order.
type QRContent struct {
	DeviceID        string `json:"deviceId"`
	DeviceSerial    string `json:"deviceSerial"`
	IPAddress       string `json:"ipAddress"`
	PairingCode     string `json:"pairingCode"`
	PairingToken    string `json:"pairingToken"`
	ExpiresAt       string `json:"expiresAt"`
	FirmwareVersion string `json:"firmwareVersion"`
}

// Marshal returns the compact JSON (no spaces) in the spec's field order.
func (q QRContent) Marshal() []byte {
	// A struct of strings always marshals; HTML escaping is harmless because
	// valid content holds none of <, > or &.
	b, _ := json.Marshal(q)
	return b
}

// ErrQR is wrapped by every ParseQR and Validate error.
var ErrQR = errors.New("pairing QR")

// qrFields lists the JSON names in order, with the setter used by ParseQR.
var qrFields = []struct {
	name string
	ptr  func(*QRContent) *string
}{
	{"deviceId", func(q *QRContent) *string { return &q.DeviceID }},
	{"deviceSerial", func(q *QRContent) *string { return &q.DeviceSerial }},
	{"ipAddress", func(q *QRContent) *string { return &q.IPAddress }},
	{"pairingCode", func(q *QRContent) *string { return &q.PairingCode }},
	{"pairingToken", func(q *QRContent) *string { return &q.PairingToken }},
	{"expiresAt", func(q *QRContent) *string { return &q.ExpiresAt }},
	{"firmwareVersion", func(q *QRContent) *string { return &q.FirmwareVersion }},
}

// ParseQR reads the text of a scanned pairing QR code. It is strict: at most
// MaxQRInput bytes, one JSON object whose members are exactly the seven
// fields (names matched exactly, each once, each a string, in any order),
// nothing after it, and every field valid (see Validate). It does not verify
// the token's signature: that is VerifyToken, with the device's key from the
// inventory.
func ParseQR(b []byte) (QRContent, error) {
	q, err := parseQR(b)
	if err != nil {
		return QRContent{}, err
	}
	return q, nil
}

func parseQR(b []byte) (QRContent, error) {
	var q QRContent
	if len(b) > MaxQRInput {
		return q, fmt.Errorf("%w: %d bytes, limit %d", ErrQR, len(b), MaxQRInput)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	tok, err := dec.Token()
	if err != nil {
		return q, fmt.Errorf("%w: not JSON: %w", ErrQR, err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return q, fmt.Errorf("%w: not a JSON object", ErrQR)
	}
	seen := make(map[string]bool, len(qrFields))
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return q, fmt.Errorf("%w: %w", ErrQR, jsonErr(err))
		}
		name, ok := tok.(string)
		if !ok {
			return q, fmt.Errorf("%w: member name is not a string", ErrQR)
		}
		var dst *string
		for _, f := range qrFields {
			if f.name == name {
				dst = f.ptr(&q)
			}
		}
		if dst == nil {
			return q, fmt.Errorf("%w: unknown field %.40q", ErrQR, name)
		}
		if seen[name] {
			return q, fmt.Errorf("%w: field %s appears twice", ErrQR, name)
		}
		seen[name] = true
		tok, err = dec.Token()
		if err != nil {
			return q, fmt.Errorf("%w: %s: %w", ErrQR, name, jsonErr(err))
		}
		s, ok := tok.(string)
		if !ok {
			return q, fmt.Errorf("%w: %s is not a string", ErrQR, name)
		}
		*dst = s
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return q, fmt.Errorf("%w: %w", ErrQR, jsonErr(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return q, fmt.Errorf("%w: data after the JSON object", ErrQR)
	}
	for _, f := range qrFields {
		if !seen[f.name] {
			return q, fmt.Errorf("%w: field %s missing", ErrQR, f.name)
		}
	}
	return q, q.Validate()
}

// jsonErr names a premature end of the input.
func jsonErr(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// Validate checks every field against its format and limit:
//
//   - deviceId, deviceSerial: ident.CheckDeviceID, ident.CheckSerial (1-32
//     of A-Z a-z 0-9 . _ -, the first a letter or digit)
//   - ipAddress: an IPv4 or IPv6 address in canonical form (as
//     net/netip prints it), no zone, not unspecified
//   - pairingCode: a valid code (ParseCode) in display form AAA-999-AAA
//   - pairingToken: base64url without padding of exactly TokenBytes (73) bytes
//   - expiresAt: TimeLayout (RFC 3339, UTC, seconds, "Z")
//   - firmwareVersion: ident.CheckFirmwareVersion (as deviceId, and +)
func (q QRContent) Validate() error {
	if err := q.validateFields(); err != nil {
		return err
	}
	if err := checkTokenFormat(q.PairingToken); err != nil {
		return fmt.Errorf("%w: pairingToken: %w", ErrQR, err)
	}
	return nil
}

// validateFields checks everything but the token.
func (q QRContent) validateFields() error {
	if err := ident.CheckDeviceID(q.DeviceID); err != nil {
		return fmt.Errorf("%w: deviceId: %w", ErrQR, err)
	}
	if err := ident.CheckSerial(q.DeviceSerial); err != nil {
		return fmt.Errorf("%w: deviceSerial: %w", ErrQR, err)
	}
	if err := checkIP(q.IPAddress); err != nil {
		return fmt.Errorf("%w: ipAddress: %w", ErrQR, err)
	}
	c, err := ParseCode(q.PairingCode)
	if err != nil {
		return fmt.Errorf("%w: pairingCode: %w", ErrQR, err)
	}
	if string(c) != q.PairingCode {
		return fmt.Errorf("%w: pairingCode: not in the form AAA-999-AAA", ErrQR)
	}
	if err := checkTime(q.ExpiresAt); err != nil {
		return fmt.Errorf("%w: expiresAt: %w", ErrQR, err)
	}
	if err := ident.CheckFirmwareVersion(q.FirmwareVersion); err != nil {
		return fmt.Errorf("%w: firmwareVersion: %w", ErrQR, err)
	}
	return nil
}

func checkIP(s string) error {
	if len(s) > MaxIPAddressLen {
		return fmt.Errorf("%d bytes, limit %d", len(s), MaxIPAddressLen)
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return err
	}
	switch {
	case a.Zone() != "":
		return errors.New("zone not allowed")
	case a.IsUnspecified():
		return errors.New("unspecified address")
	case a.String() != s:
		return fmt.Errorf("not in canonical form (%s)", a)
	}
	return nil
}

func checkTime(s string) error {
	t, err := time.Parse(TimeLayout, s)
	if err != nil {
		return fmt.Errorf("not RFC 3339 UTC with seconds (%s)", TimeLayout)
	}
	if t.Format(TimeLayout) != s {
		return errors.New("not in canonical form")
	}
	return nil
}

// checkTokenFormat checks the token's encoding and length, not its signature.
func checkTokenFormat(s string) error {
	_, err := decodeToken(s)
	return err
}
