package job

import (
	"context"
	"crypto/ecdsa"
	"time"

	"github.com/zmonitor/firmware/internal/failure"
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
	// one was issued (it is recorded in the inventory).
	CertificateDER []byte
	// Elapsed is how long the job took.
	Elapsed time.Duration
}

// Provisioner provisions one device. progress (never nil) may be called any
// number of times from the calling goroutine. A nil error with an Outcome
// means the device gave a final answer (which may be PROVISIONING_FAILED);
// an error means the job could not complete (connection, refusal, internal
// error): wrap it in a *failure.Error to give the tablet a precise code.
type Provisioner interface {
	Provision(ctx context.Context, job Job, progress func(Progress)) (Outcome, error)
}
