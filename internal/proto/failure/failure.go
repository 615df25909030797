package failure

import (
	"errors"
	"fmt"
)

// Code identifies a provisioning failure. The zero value means "no failure".
type Code int

// Codes. The first five are the spec's error table (DOC-PROC-001 section 6);
// the rest split the spec's wider "validation error" into causes a technician
// or an engineer can act on.
const (
	None Code = iota
	PairingCodeMismatch
	PayloadExpired
	SignatureInvalid
	CertificateInvalid
	ConnectionFailed
	DecryptFailed
	SignerUntrusted
	WrongDevice
	SessionMismatch
	TokenInvalid
	TooManyAttempts
	SessionExpired
	PayloadMalformed
	ApplyFailed
	Internal
	// The Central Station's findings when it could not open a pairing
	// exchange with the device (internal/central/pusher); the device never
	// reports them.
	IdentityMismatch
	DeviceNotListening
	// CertificateRevoked: the monitoring or EST server refused the
	// device's certificate as revoked (a PROVISIONED device's notice,
	// docs/lifecycle.md).
	CertificateRevoked
	// FirmwareNotTrusted: the Central Station could not show that the
	// device booted a released firmware image (measured boot, quote, event
	// log, allow-list: internal/central/attestation) and sent it nothing.
	FirmwareNotTrusted
	codeCount
)

type info struct {
	id     string // stable identifier used in the protocol, audit and logs
	title  string // short title for the screen
	action string // what the technician should do (spec section 6)
}

var infos = [codeCount]info{
	None:                {"OK", "No error", ""},
	PairingCodeMismatch: {"PAIRING_CODE_MISMATCH", "Pairing code mismatch", "Re-scan QR code"},
	PayloadExpired:      {"PAYLOAD_EXPIRED", "Payload expired", "Request new provisioning"},
	SignatureInvalid:    {"SIGNATURE_INVALID", "Signature invalid", "Contact IT support"},
	CertificateInvalid:  {"CERTIFICATE_INVALID", "Certificate invalid", "Contact IT support"},
	ConnectionFailed:    {"CONNECTION_FAILED", "Connection failed", "Check network, retry"},
	DecryptFailed:       {"DECRYPT_FAILED", "Configuration unreadable", "Contact IT support"},
	SignerUntrusted:     {"SIGNER_UNTRUSTED", "Signer not trusted", "Contact IT support"},
	WrongDevice:         {"WRONG_DEVICE", "Configuration for another device", "Re-scan QR code"},
	SessionMismatch:     {"SESSION_MISMATCH", "Stale configuration", "Re-scan QR code"},
	TokenInvalid:        {"TOKEN_INVALID", "QR code out of date", "Re-scan QR code"},
	TooManyAttempts:     {"TOO_MANY_ATTEMPTS", "Too many wrong codes", "Wait, then request new provisioning"},
	SessionExpired:      {"SESSION_EXPIRED", "Pairing time ran out", "Request new provisioning"},
	PayloadMalformed:    {"PAYLOAD_MALFORMED", "Configuration malformed", "Contact IT support"},
	ApplyFailed:         {"APPLY_FAILED", "Configuration not saved", "Contact IT support"},
	Internal:            {"INTERNAL", "Device error", "Contact IT support"},
	IdentityMismatch:    {"IDENTITY_MISMATCH", "Another device answered", "Check the monitor's address, then re-scan its QR code"},
	DeviceNotListening:  {"DEVICE_NOT_LISTENING", "Device not waiting for pairing", "Press the button on the monitor, then scan its new QR code"},
	CertificateRevoked:  {"CERTIFICATE_REVOKED", "Certificate revoked", "Contact biomedical engineering"},
	FirmwareNotTrusted:  {"FIRMWARE_NOT_TRUSTED", "Firmware not trusted", "Contact biomedical engineering"},
}

func (c Code) info() info {
	if c < 0 || c >= codeCount {
		return info{fmt.Sprintf("CODE(%d)", int(c)), "Unknown error", "Contact IT support"}
	}
	return infos[c]
}

// String returns the stable identifier, e.g. "PAIRING_CODE_MISMATCH".
func (c Code) String() string { return c.info().id }

// Title is the short error title the screen shows.
func (c Code) Title() string { return c.info().title }

// UserAction is what the technician should do next.
func (c Code) UserAction() string { return c.info().action }

// Parse returns the code whose identifier is s.
func Parse(s string) (Code, error) {
	for c := None; c < codeCount; c++ {
		if infos[c].id == s {
			return c, nil
		}
	}
	return Internal, fmt.Errorf("failure: unknown code %q", s)
}

// Error is a provisioning failure: a code, the step that failed and the cause.
type Error struct {
	Code Code
	Step string
	Err  error
}

// New wraps err as a failure of step with code.
func New(code Code, step string, err error) *Error {
	return &Error{Code: code, Step: step, Err: err}
}

// Errorf is New with a formatted cause.
func Errorf(code Code, step, format string, args ...any) *Error {
	return &Error{Code: code, Step: step, Err: fmt.Errorf(format, args...)}
}

func (e *Error) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("%s: %s", e.Step, e.Code)
	}
	return fmt.Sprintf("%s: %s: %v", e.Step, e.Code, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// CodeOf returns the code of the first *Error in err's chain, None for a nil
// error and Internal for any other error.
func CodeOf(err error) Code {
	if err == nil {
		return None
	}
	var fe *Error
	if errors.As(err, &fe) {
		return fe.Code
	}
	return Internal
}
