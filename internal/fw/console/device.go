package console

import (
	"context"
	"io"
	"time"

	"github.com/zmonitor/firmware/internal/fw/conncheck"
	"github.com/zmonitor/firmware/internal/proto/failure"
	"github.com/zmonitor/firmware/internal/proto/state"
)

// Device is what the console needs from the firmware. The engine implements
// it; every method may be called from the console's goroutine while the
// engine runs, so implementations must be safe for that.
type Device interface {
	// Status is the provisioning state in short.
	Status() Status
	// QRText is the pairing QR's JSON while READY_TO_PAIR, nil otherwise.
	QRText() []byte
	// AuditTail returns the last n audit records, oldest first, one line
	// each (JSON Lines).
	AuditTail(n int) ([]string, error)
	// Config returns the current provisioning settings. It should hold no
	// secret; the console redacts anything that looks like one anyway.
	Config() ([]Setting, error)
	// PublicKeys returns the device's public keys (DevID, payload key,
	// client TLS key when there is one); the console prints fingerprints.
	PublicKeys() ([]PublicKey, error)
	// Enrollment returns the enrollment record JSON (deviceId, serial,
	// public keys, firmware version).
	Enrollment() ([]byte, error)
	// Net describes the network interfaces, one line each.
	Net() ([]string, error)
	// Version is the firmware version and build.
	Version() string
	// Provision starts provisioning as the button would. The console calls
	// it only when Options.AllowProvision is set; the device may refuse too.
	Provision() error
	// Reboot restarts the device.
	Reboot() error
	// FactoryReset waits, until ctx is done, for the physical Enable
	// Provisioning button to confirm, then erases the provisioning
	// (settings, client key and certificate) and returns to UNPROVISIONED.
	// It returns ctx.Err() (wrapped) when the button was not pressed in
	// time. The device audits the request and its outcome.
	FactoryReset(ctx context.Context) error
}

// Status is the device's provisioning status.
type Status struct {
	State state.State
	// SessionLeft is the pairing session's time left (READY_TO_PAIR).
	SessionLeft time.Duration
	// Locked is the time left of a wrong-code lockout, 0 when not locked.
	Locked time.Duration
	// LastError is the last provisioning failure (failure.None if none).
	LastError failure.Code
	// ConnCheck is the last connection test of the committed
	// configuration (Verdict NotChecked when there is none).
	ConnCheck conncheck.Last
	// Audit describes the audit log's tamper evidence, one line each
	// (damage found, the TPM anchor, the background check, the last
	// signed checkpoint); status prints them after "audit log: ".
	Audit []string
	// Lifecycle is what status shows of the committed client certificate
	// and its renewal, one line each, already worded ("certificate:
	// serial 3fa1…, key slot B, valid to …", "renewal: due …"); none
	// when unprovisioned.
	Lifecycle []string
}

// AuditExporter is a Device that can write its whole audit log (JSON
// Lines, as stored) for `audit export`.
type AuditExporter interface {
	AuditExport(w io.Writer) error
}

// Renewer is a Device that can renew its client certificate on request
// (console `renew`).
type Renewer interface {
	// Renew starts a renewal now; it returns once it has started (or was
	// refused), the outcome shows in status and the audit log.
	Renew() error
}

// Reprovisioner is a Device that can be paired again while its
// provisioning stays in force (console `reprovision`,
// docs/lifecycle.md).
type Reprovisioner interface {
	// Reprovision waits, until ctx is done, for the physical Enable
	// Provisioning button to confirm, then opens pairing; the committed
	// provisioning stays until a new one passes its connection test.
	Reprovision(ctx context.Context) error
}

// Setting is one configuration entry.
type Setting struct {
	Name, Value string
}

// PublicKey is a named public key as DER SubjectPublicKeyInfo.
type PublicKey struct {
	Name string
	SPKI []byte
}
