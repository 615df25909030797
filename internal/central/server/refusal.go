package server

import (
	"fmt"
	"net/http"
)

// Refusal is why the Central Station refused a request before contacting
// the device.
type Refusal int

// Refusals.
const (
	RefusalNone Refusal = iota
	Unauthorized
	BadRequest
	DeviceUnknown
	DeviceRevoked
	QRInvalid
	TokenMalformed
	TokenSignatureInvalid
	QRExpired
	TokenAlreadyUsed
	CodeAlreadyUsed
	CodeInvalid
	AddressInvalid
	NotFound
	Busy
	Internal
	refusalCount
)

type refusalInfo struct {
	id     string
	status int
	title  string
	action string
}

var refusals = [refusalCount]refusalInfo{
	RefusalNone:           {"OK", http.StatusOK, "", ""},
	Unauthorized:          {"UNAUTHORIZED", http.StatusUnauthorized, "Tablet not authorized", "Ask IT for a technician token"},
	BadRequest:            {"BAD_REQUEST", http.StatusBadRequest, "Request not understood", "Update the tablet app"},
	DeviceUnknown:         {"DEVICE_UNKNOWN", http.StatusUnprocessableEntity, "Device not in the inventory", "Contact IT support (enroll the device)"},
	DeviceRevoked:         {"DEVICE_REVOKED", http.StatusForbidden, "Device revoked", "Contact IT support"},
	QRInvalid:             {"QR_INVALID", http.StatusUnprocessableEntity, "Not a Z Monitor pairing QR code", "Re-scan QR code"},
	TokenMalformed:        {"TOKEN_INVALID", http.StatusUnprocessableEntity, "QR code unreadable", "Re-scan QR code"},
	TokenSignatureInvalid: {"SIGNATURE_INVALID", http.StatusUnprocessableEntity, "QR code not signed by this device", "Contact IT support"},
	QRExpired:             {"QR_EXPIRED", http.StatusUnprocessableEntity, "QR code expired", "Request new provisioning"},
	TokenAlreadyUsed:      {"TOKEN_ALREADY_USED", http.StatusConflict, "QR code already used", "Re-scan QR code"},
	CodeAlreadyUsed:       {"PAIRING_CODE_ALREADY_USED", http.StatusConflict, "Pairing code already used", "Request new provisioning"},
	CodeInvalid:           {"PAIRING_CODE_INVALID", http.StatusUnprocessableEntity, "Pairing code mistyped", "Check the code on the monitor and type it again"},
	AddressInvalid:        {"ADDRESS_INVALID", http.StatusUnprocessableEntity, "Device address invalid", "Check the address on the monitor and type it again"},
	NotFound:              {"NOT_FOUND", http.StatusNotFound, "Not found", ""},
	Busy:                  {"BUSY", http.StatusServiceUnavailable, "Central Station busy", "Retry in a minute"},
	Internal:              {"INTERNAL", http.StatusInternalServerError, "Central Station error", "Contact IT support"},
}

func (r Refusal) info() refusalInfo {
	if r < 0 || r >= refusalCount {
		return refusalInfo{fmt.Sprintf("REFUSAL(%d)", int(r)), http.StatusInternalServerError, "Unknown error", "Contact IT support"}
	}
	return refusals[r]
}

// String is the stable identifier in the API, e.g. "TOKEN_ALREADY_USED".
func (r Refusal) String() string { return r.info().id }

// HTTPStatus is the status code of the refusal.
func (r Refusal) HTTPStatus() int { return r.info().status }

// Title is the short text the tablet shows.
func (r Refusal) Title() string { return r.info().title }

// UserAction is what the technician should do.
func (r Refusal) UserAction() string { return r.info().action }

// refusalError is a refusal with a specific message (never secret).
type refusalError struct {
	r   Refusal
	msg string
}

func (e *refusalError) Error() string { return e.r.String() + ": " + e.msg }

func refuse(r Refusal, format string, args ...any) *refusalError {
	return &refusalError{r: r, msg: fmt.Sprintf(format, args...)}
}
