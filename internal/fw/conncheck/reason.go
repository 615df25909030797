package conncheck

import (
	"errors"
	"fmt"
)

// Reason says why a connection test failed.
type Reason int

// Reasons.
const (
	None               Reason = iota // no failure
	BadConfig                        // the configuration is unusable (URL, certificates, options)
	DNS                              // the server name does not resolve
	Refused                          // nothing listens at the server's port
	Unreachable                      // no route to the server's network or host
	Timeout                          // no answer within the attempt timeout
	TLSVersion                       // the server does not speak TLS 1.3
	TLSVerify                        // the server certificate is not trusted by caCertificate, or names another host
	ClientCertRejected               // the server refused the device's client certificate
	ClientKey                        // the device's client key (TPM) failed to sign
	BadStatus                        // the health request got a non-2xx status
	Protocol                         // anything else between TCP and HTTP
	Canceled                         // the caller stopped the test
	Revoked                          // the server refused the device certificate as revoked (403, problem certificate-revoked)
	reasonCount
)

var reasonNames = [reasonCount]string{
	None:               "OK",
	BadConfig:          "CONFIG",
	DNS:                "DNS",
	Refused:            "REFUSED",
	Unreachable:        "UNREACHABLE",
	Timeout:            "TIMEOUT",
	TLSVersion:         "TLS_VERSION",
	TLSVerify:          "TLS_VERIFY",
	ClientCertRejected: "CLIENT_CERT_REJECTED",
	ClientKey:          "CLIENT_KEY",
	BadStatus:          "BAD_STATUS",
	Protocol:           "PROTOCOL",
	Canceled:           "CANCELED",
	Revoked:            "REVOKED",
}

var reasonTexts = [reasonCount]string{
	None:               "connected",
	BadConfig:          "configuration unusable",
	DNS:                "server name does not resolve",
	Refused:            "server refused the connection",
	Unreachable:        "server network unreachable",
	Timeout:            "server did not answer in time",
	TLSVersion:         "server does not support TLS 1.3",
	TLSVerify:          "server certificate not trusted by the configured CA",
	ClientCertRejected: "server rejected the device certificate",
	ClientKey:          "device key failed",
	BadStatus:          "server health check failed",
	Protocol:           "unexpected answer from the server",
	Canceled:           "connection test stopped",
	Revoked:            "server refused the device certificate as revoked",
}

// String returns the stable identifier, e.g. "TLS_VERIFY".
func (r Reason) String() string {
	if r < 0 || r >= reasonCount {
		return fmt.Sprintf("REASON(%d)", int(r))
	}
	return reasonNames[r]
}

// Text is a short description for screens and logs.
func (r Reason) Text() string {
	if r < 0 || r >= reasonCount {
		return "unknown"
	}
	return reasonTexts[r]
}

// Transient reports whether an attempt that failed for r is always worth
// retrying: refused, unreachable, timeout. Run also retries a DNS failure
// that is itself temporary (timeout, SERVFAIL) and a 5xx status; a missing
// name, a certificate problem or a 4xx status will not change by waiting.
func (r Reason) Transient() bool {
	switch r {
	case Refused, Unreachable, Timeout:
		return true
	}
	return false
}

// Error is a failed connection test.
type Error struct {
	Reason   Reason
	Attempts int // attempts made, including the failed one
	Status   int // HTTP status for BadStatus
	Err      error

	transientDNS bool
}

func (e *Error) Error() string {
	s := e.Reason.Text()
	if e.Attempts > 1 {
		s += fmt.Sprintf(" (%d attempts)", e.Attempts)
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// retry reports whether the attempt that failed with e may be repeated.
func (e *Error) retry() bool {
	switch e.Reason {
	case DNS:
		return e.transientDNS
	case BadStatus:
		return e.Status >= 500
	}
	return e.Reason.Transient()
}

// ReasonOf returns the Reason of the first *Error in err's chain: None for
// nil, Protocol for an error from elsewhere.
func ReasonOf(err error) Reason {
	if err == nil {
		return None
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return Protocol
}
