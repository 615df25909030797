package job

import (
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"fmt"
	"time"

	"github.com/zmonitor/firmware/internal/proto/failure"
)

// Job is one validated request to provision one device.
type Job struct {
	// PairingID is the Central Station's identifier of this attempt (for
	// logs and the audit trail).
	PairingID string
	// DeviceID is the inventory's device identifier.
	DeviceID string
	// Address is the device's provisioning endpoint, "host:port".
	Address string
	// IdentityKey is the device identity key from the inventory: the
	// device's TLS certificate and its hello are pinned to it.
	IdentityKey *ecdsa.PublicKey
	// Token is the scanned pairing token, already verified and claimed; it
	// is empty on the manual path (typed pairing code).
	Token string
	// PairingCode is the pairing code, display form "AAA-999-AAA": from the
	// QR, or as typed (already syntax-checked). It goes into the payload.
	// It is a secret while the device's session lasts: never log it.
	PairingCode string
	// Label is the device label for the payload's deviceLabel (may be
	// empty).
	Label string
	// ExpiresAt is the QR's expiresAt (zero on the manual path): when the
	// device's port is closed and this has passed by the Central Station's
	// clock, the session expired (failure.SessionExpired).
	ExpiresAt time.Time
	// Issued, when set, is called by the Provisioner with the client
	// certificate it issued for the device, right after issuing it and
	// before the certificate leaves the Central Station (in the sealed
	// payload). The caller records it there, so that no certificate is
	// ever handed out without a trace. When Issued returns an error the
	// Provisioner must not deliver the certificate: it ends the job with
	// an error (Outcome.Fate NotDelivered).
	Issued func(ctx context.Context, cert *x509.Certificate) error
}

// Progress is one step reported while a job runs.
type Progress struct {
	// State is the device's state as it reported it (e.g.
	// "APPLYING_CONFIG"), or empty before the device was reached.
	State string
	// Step names what is happening, e.g. "hello", "issue certificate",
	// "push", "testing connection".
	Step string
}

// Outcome is how a job ended when the device was reached and answered.
type Outcome struct {
	// State is the device's final state: "PROVISIONED" or
	// "PROVISIONING_FAILED".
	State string
	// Code is the device's failure code (failure.None on success).
	Code failure.Code
	// Message is the device's explanation (never secret).
	Message string
	// CertificateDER is the client certificate issued to the device, when
	// one was issued, also when Provision returns an error.
	CertificateDER []byte
	// Fate is what became of that certificate (NoCertificate when none
	// was issued), also when Provision returns an error.
	Fate CertificateFate
	// Elapsed is how long the job took.
	Elapsed time.Duration
	// DeviceUntouched, with an error, says that the device never opened a
	// pairing exchange for this job: it could not be reached, refused the
	// TLS handshake, was not the enrolled device, or refused the hello.
	// Nothing was spent on the device (its token and code are as they
	// were), so the Central Station releases its claim on them and the
	// technician may scan the same QR again.
	DeviceUntouched bool
}

// CertificateFate is what became of the client certificate issued for a
// job: the Central Station keeps every certificate it issued, and revokes
// those no device uses.
type CertificateFate int

// Certificate fates.
const (
	// NoCertificate: the job ended before a certificate was issued.
	NoCertificate CertificateFate = iota
	// NotDelivered: issued, but the push did not complete (not sent, the
	// connection failed or the job was cancelled before the device gave
	// its final answer): the device does not use it, as far as the
	// Central Station knows.
	NotDelivered
	// DeviceRefused: the device received the payload and refused it
	// (validation failed: wrong code, expired, bad signature...).
	DeviceRefused
	// ConnectionTestFailed: the device applied the configuration, its
	// connection test to the monitoring server failed and it ended
	// PROVISIONING_FAILED.
	ConnectionTestFailed
	// InUse: the device reported PROVISIONED with it.
	InUse
	fateCount
)

var fateNames = [fateCount]string{
	NoCertificate:        "no certificate",
	NotDelivered:         "not delivered",
	DeviceRefused:        "device refused",
	ConnectionTestFailed: "connection test failed",
	InUse:                "in use",
}

func (f CertificateFate) String() string {
	if f < 0 || f >= fateCount {
		return fmt.Sprintf("CertificateFate(%d)", int(f))
	}
	return fateNames[f]
}

// Provisioner provisions one device. progress (never nil) may be called any
// number of times from the calling goroutine. A nil error with an Outcome
// means the device gave a final answer (which may be PROVISIONING_FAILED);
// an error means the job could not complete (connection, refusal, internal
// error): wrap it in a *failure.Error to give the tablet a precise code.
// With an error, the Outcome still reports the certificate issued, if any
// (CertificateDER and Fate); its other fields are meaningless.
type Provisioner interface {
	Provision(ctx context.Context, job Job, progress func(Progress)) (Outcome, error)
}
