package store

import (
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/x509"
	"errors"
	"fmt"
	"time"
)

// Errors callers test with errors.Is.
var (
	// ErrNotFound: no such device, technician, pairing or batch.
	ErrNotFound = errors.New("not found")
	// ErrAlreadyUsed: the pairing token nonce or pairing code was claimed
	// before (by this or another replica).
	ErrAlreadyUsed = errors.New("already used")
	// ErrConflict: an enrollment record contradicts the inventory (another
	// key or serial for an enrolled device, or a key enrolled for another
	// device). An enrolled identity is never replaced silently.
	ErrConflict = errors.New("conflicts with the inventory")
	// ErrRevoked: the device or technician is revoked.
	ErrRevoked = errors.New("revoked")
	// ErrExpired: an enrollment link or a WebAuthn ceremony is past its
	// time.
	ErrExpired = errors.New("expired")
)

// Store is the Central Station's persistent state. Implementations are safe
// for concurrent use, and several Stores (replicas) may share one database.
type Store interface {
	// ImportDevice adds an enrollment record to the inventory. Re-importing
	// an identical record is a no-op (ImportUnchanged); a newer firmware
	// version is recorded (ImportUpdated); anything else that differs is
	// refused with ErrConflict.
	ImportDevice(ctx context.Context, e Enrollment) (ImportResult, error)
	// Device returns one device, ErrNotFound if it is not in the inventory.
	Device(ctx context.Context, id string) (Device, error)
	// Devices lists the inventory ordered by device ID.
	Devices(ctx context.Context) ([]Device, error)
	// RevokeDevice marks a device revoked (idempotent).
	RevokeDevice(ctx context.Context, id string) error
	// DecommissionDevice records that an operator decommissioned the
	// device (idempotent: the first time stays) and returns that time.
	// The caller revokes its certificates; the EST server tells the
	// device at its next request authenticated by a certificate issued
	// before then.
	DecommissionDevice(ctx context.Context, id string) (time.Time, error)
	// ReplaceDevice gives an enrolled device new keys (and serial and
	// firmware version) from a new enrollment record: its TPM or board was
	// replaced. It is explicit and needs a reason: the old keys are kept
	// in the key history (and never accepted again, for any device), the
	// certificates issued to the device are revoked (ReasonDeviceReplaced),
	// and the device is active again (a revocation was of the old keys).
	// ErrNotFound for an unknown device; ErrConflict when the keys are the
	// enrolled ones, or belong (or belonged) to any device.
	ReplaceDevice(ctx context.Context, e Enrollment, reason string) (Replacement, error)
	// KeyHistory lists the keys a device had before ReplaceDevice, oldest
	// first.
	KeyHistory(ctx context.Context, id string) ([]ReplacedKeys, error)
	// SetDeviceLabel sets the label pushed as deviceLabel.
	SetDeviceLabel(ctx context.Context, id, label string) error

	// The firmware allow-list (firmware.go): AllowFirmware adds or
	// re-allows a released image, DenyFirmware withdraws one (ErrNotFound
	// if never allowed), FirmwareImage looks one up by Authenticode digest
	// (ErrNotFound), FirmwareImages lists them all.
	AllowFirmware(ctx context.Context, f Firmware) error
	DenyFirmware(ctx context.Context, authenticode string) error
	FirmwareImage(ctx context.Context, authenticode string) (Firmware, error)
	FirmwareImages(ctx context.Context) ([]Firmware, error)

	// AddTechnician records a technician and the SHA-256 hash of their
	// bearer token (see NewTechnicianToken).
	AddTechnician(ctx context.Context, id, name string, tokenHash []byte) (Technician, error)
	// Technician returns one technician, with the token hash.
	Technician(ctx context.Context, id string) (Technician, error)
	// Technicians lists technicians ordered by creation.
	Technicians(ctx context.Context) ([]Technician, error)
	// RevokeTechnician marks a technician revoked (idempotent), revokes
	// all their passkeys and ends their browser sessions, in one
	// transaction.
	RevokeTechnician(ctx context.Context, id string) error
	// SetTechnicianRole gives a technician a role (RoleTechnician or
	// RoleOperator).
	SetTechnicianRole(ctx context.Context, id string, role Role) error

	// The web app's records (web.go): passkeys, enrollment links, browser
	// sessions and WebAuthn ceremonies.

	// CreateEnrollmentLink records a one-time link for l.TechnicianID (only
	// its hash).
	CreateEnrollmentLink(ctx context.Context, l EnrollmentLink) error
	// EnrollmentLink returns one link, ErrNotFound if there is none.
	EnrollmentLink(ctx context.Context, id string) (EnrollmentLink, error)
	// RedeemEnrollmentLink uses the link and records the passkey it
	// registered, in one transaction: ErrAlreadyUsed when the link was
	// used before, ErrExpired when it expired (by the store's clock),
	// ErrRevoked when its technician was revoked.
	RedeemEnrollmentLink(ctx context.Context, linkID string, p Passkey) error
	// Passkeys lists a technician's passkeys ("" for everyone's), oldest
	// first, revoked ones included.
	Passkeys(ctx context.Context, technicianID string) ([]Passkey, error)
	// Passkey returns one passkey by its ID.
	Passkey(ctx context.Context, id string) (Passkey, error)
	// PasskeyByCredentialID returns the passkey of a WebAuthn credential
	// ID.
	PasskeyByCredentialID(ctx context.Context, credentialID []byte) (Passkey, error)
	// UsePasskey records a sign-in with the passkey: its updated
	// credential record and the time. A revoked passkey is refused with
	// ErrRevoked.
	UsePasskey(ctx context.Context, id string, credential []byte) error
	// RevokePasskey revokes one passkey (idempotent) and ends the browser
	// sessions signed in with it.
	RevokePasskey(ctx context.Context, id string) error
	// CreateWebSession records a browser session (only its hash).
	CreateWebSession(ctx context.Context, ws WebSession) error
	// WebSession returns a browser session.
	WebSession(ctx context.Context, id string) (WebSession, error)
	// TouchWebSession records activity on a session (its idle timeout
	// starts again).
	TouchWebSession(ctx context.Context, id string) error
	// EndWebSession ends a session (sign-out; idempotent).
	EndWebSession(ctx context.Context, id string) error
	// SaveCeremony records a WebAuthn ceremony between its two steps.
	SaveCeremony(ctx context.Context, c Ceremony) error
	// TakeCeremony returns a ceremony and deletes it: each is finished at
	// most once. ErrNotFound when there is none, ErrExpired when it
	// expired.
	TakeCeremony(ctx context.Context, id string) (Ceremony, error)
	// TechnicianPairings lists the pairings a technician requested, the
	// newest first, at most limit, started at or after since.
	TechnicianPairings(ctx context.Context, technicianID string, since time.Time, limit int) ([]Pairing, error)

	// ClaimToken records that the pairing token with this nonce was used
	// for deviceID. It returns ErrAlreadyUsed if it was claimed before.
	ClaimToken(ctx context.Context, deviceID string, nonce []byte) error
	// ClaimCode does the same for a pairing code (stored hashed).
	ClaimCode(ctx context.Context, deviceID, code string) error
	// ReleaseClaims gives back the token nonce (if any) and the code a
	// pairing claimed, once its push failed before the device opened a
	// pairing exchange (nothing was spent on the device), and marks the
	// pairing ClaimsReleased; all in one transaction. The pairing must
	// have ended.
	ReleaseClaims(ctx context.Context, pairingID, code string) error

	// CreateBatch records a batch; its pairings carry its ID.
	CreateBatch(ctx context.Context, b Batch) error
	// Batch returns a batch and its pairings.
	Batch(ctx context.Context, id string) (Batch, []Pairing, error)

	// CreatePairing records a pairing attempt (p.ID chosen by the caller).
	CreatePairing(ctx context.Context, p Pairing) error
	// UpdatePairing records progress of a running pairing.
	UpdatePairing(ctx context.Context, id string, state PairingState, deviceState, step string) error
	// FinishPairing records the end of a pairing.
	FinishPairing(ctx context.Context, id string, state PairingState, resultCode, detail string) error
	// Pairing returns one pairing attempt.
	Pairing(ctx context.Context, id string) (Pairing, error)
	// PairingSteps returns every recorded change of pairing id (created,
	// each progress report, the end), oldest first.
	PairingSteps(ctx context.Context, id string) ([]PairingStep, error)

	// RecordCertificate records a client certificate issued to a device,
	// in state CertificateIssued: it is called right after issuance, before
	// the certificate leaves the Central Station. Recording the same
	// certificate again is a no-op; another certificate with the same
	// serial is refused with ErrConflict.
	RecordCertificate(ctx context.Context, deviceID, pairingID string, der []byte) error
	// MarkCertificateInUse records that the device is provisioned with the
	// certificate (idempotent). A revoked certificate is refused with
	// ErrRevoked, an unknown serial with ErrNotFound.
	MarkCertificateInUse(ctx context.Context, serial string) error
	// RevokeCertificate marks a certificate revoked for reason. Revoking it
	// again keeps the first time and reason. ErrNotFound for an unknown
	// serial.
	RevokeCertificate(ctx context.Context, serial string, reason RevocationReason) error
	// Certificates lists the certificates issued to a device, oldest first.
	Certificates(ctx context.Context, deviceID string) ([]IssuedCertificate, error)
	// AllCertificates lists every certificate issued, oldest first.
	AllCertificates(ctx context.Context) ([]IssuedCertificate, error)
	// Certificate returns one certificate, ErrNotFound for an unknown
	// serial.
	Certificate(ctx context.Context, serial string) (IssuedCertificate, error)
	// ConfirmCertificate records that the device authenticated with the
	// certificate (an EST request): in one transaction it is marked in
	// use (if it was issued) and every other certificate of its device in
	// use is revoked as superseded. It returns the serials superseded. A
	// revoked certificate is refused with ErrRevoked, an unknown serial
	// with ErrNotFound.
	ConfirmCertificate(ctx context.Context, serial string) (superseded []string, err error)
	// ConfirmCertificateAudited is ConfirmCertificate with its audit
	// records (certificate.in_use, certificate.revoked per superseded
	// one, by actor) written in the same transaction.
	ConfirmCertificateAudited(ctx context.Context, serial, actor string) (superseded []string, err error)
	// RecordRenewal records a certificate issued by renewal (state
	// issued, no pairing) and its audit record a in one transaction: one
	// commit instead of two on the renewal's hot path.
	RecordRenewal(ctx context.Context, deviceID string, der []byte, a AuditRecord) error
	// ResolveUnconfirmed settles the certificates left `issued` before
	// `before` by a Central Station that stopped, by the evidence the
	// store holds (unconfirmed.go), audited.
	ResolveUnconfirmed(ctx context.Context, before time.Time) ([]Resolution, error)

	// Audit appends a record (ID and At are filled in).
	Audit(ctx context.Context, r AuditRecord) error
	// ExportAudit calls fn for every record in order.
	ExportAudit(ctx context.Context, fn func(AuditRecord) error) error
	// SearchAudit calls fn for the records f selects: in order, or the
	// newest first with f.NewestFirst.
	SearchAudit(ctx context.Context, f AuditFilter, fn func(AuditRecord) error) error
	// Pairings lists the pairings f selects, newest first (the operator's
	// list).
	Pairings(ctx context.Context, f PairingFilter) ([]Pairing, error)

	// Ping checks that the database answers (readiness).
	Ping(ctx context.Context) error

	// Close releases the database.
	Close() error
}

// Enrollment is a device's enrollment record, exported by the device at
// manufacturing (DESIGN.md section 3).
type Enrollment struct {
	DeviceID        string
	DeviceSerial    string
	IdentitySPKI    []byte // DER SubjectPublicKeyInfo, ECDSA P-256
	PayloadSPKI     []byte // DER SubjectPublicKeyInfo, P-256 (ECDH)
	FirmwareVersion string
	// AttestationKey is the TPMT_PUBLIC of the device's attestation key,
	// whose certification by the identity key the record carried (checked
	// on import); nil for a record made before attestation.
	AttestationKey []byte
}

// ImportResult says what ImportDevice did.
type ImportResult int

// Import results.
const (
	ImportAdded ImportResult = iota + 1
	ImportUnchanged
	ImportUpdated
)

func (r ImportResult) String() string {
	switch r {
	case ImportAdded:
		return "added"
	case ImportUnchanged:
		return "unchanged"
	case ImportUpdated:
		return "updated"
	}
	return fmt.Sprintf("ImportResult(%d)", int(r))
}

// Device is an inventory entry.
type Device struct {
	ID              string
	Serial          string
	IdentitySPKI    []byte
	PayloadSPKI     []byte
	FirmwareVersion string
	Label           string
	// AttestationKey is the enrolled attestation key (TPMT_PUBLIC); nil
	// when the device's record had none.
	AttestationKey []byte
	ImportedAt     time.Time
	RevokedAt      time.Time // zero if not revoked
	// DecommissionedAt is when an operator decommissioned the device
	// (zero if never). A pairing after it brings the device back into
	// service: its certificates are issued later.
	DecommissionedAt time.Time
}

// Decommissioned reports whether the certificate issued at issuedAt was
// issued before the device was decommissioned: the device must wipe
// itself.
func (d Device) Decommissioned(issuedAt time.Time) bool {
	return !d.DecommissionedAt.IsZero() && !issuedAt.After(d.DecommissionedAt)
}

// Revoked reports whether the device was revoked.
func (d Device) Revoked() bool { return !d.RevokedAt.IsZero() }

// IdentityKey parses the device identity key.
func (d Device) IdentityKey() (*ecdsa.PublicKey, error) {
	return parseIdentityKey(d.IdentitySPKI)
}

// PayloadKey parses the device payload (key agreement) key.
func (d Device) PayloadKey() (*ecdh.PublicKey, error) {
	return parsePayloadKey(d.PayloadSPKI)
}

// Replacement is what ReplaceDevice did.
type Replacement struct {
	Old, New            Device
	RevokedCertificates []string // serials
}

// ReplacedKeys are keys a device had before a ReplaceDevice.
type ReplacedKeys struct {
	DeviceID        string
	Serial          string
	IdentitySPKI    []byte
	PayloadSPKI     []byte
	FirmwareVersion string
	ImportedAt      time.Time
	RevokedAt       time.Time // zero if the device was not revoked then
	ReplacedAt      time.Time
	Reason          string
}

// Technician is a person allowed to pair devices from a tablet, or an
// operator (Role).
type Technician struct {
	ID        string
	Name      string
	TokenHash []byte // SHA-256 of the bearer token
	Role      Role
	CreatedAt time.Time
	RevokedAt time.Time // zero if not revoked
}

// Role is what a technician may do.
type Role int

// Roles. A technician pairs devices and sees their own pairings; an
// operator may do everything.
const (
	RoleTechnician Role = iota + 1
	RoleOperator
)

func (r Role) String() string {
	switch r {
	case RoleTechnician:
		return "technician"
	case RoleOperator:
		return "operator"
	}
	return fmt.Sprintf("Role(%d)", int(r))
}

// ParseRole is the inverse of Role.String.
func ParseRole(s string) (Role, error) {
	for r := RoleTechnician; r <= RoleOperator; r++ {
		if r.String() == s {
			return r, nil
		}
	}
	return 0, fmt.Errorf("unknown role %.32q: technician or operator", s)
}

// Revoked reports whether the technician was revoked.
func (t Technician) Revoked() bool { return !t.RevokedAt.IsZero() }

// Method is how a pairing was requested.
type Method int

// Methods.
const (
	MethodQR     Method = iota + 1 // scanned QR with a signed token
	MethodManual                   // typed pairing code
)

func (m Method) String() string {
	switch m {
	case MethodQR:
		return "qr"
	case MethodManual:
		return "manual"
	}
	return fmt.Sprintf("Method(%d)", int(m))
}

// ParseMethod is the inverse of Method.String.
func ParseMethod(s string) (Method, error) {
	for m := MethodQR; m <= MethodManual; m++ {
		if m.String() == s {
			return m, nil
		}
	}
	return 0, fmt.Errorf("unknown pairing method %q", s)
}

// PairingState is where a pairing attempt is.
type PairingState int

// Pairing states. Refused: the Central Station refused the request before
// contacting the device. Failed: the device was contacted and the attempt
// failed. Succeeded: the device reported PROVISIONED.
const (
	PairingQueued PairingState = iota + 1
	PairingRunning
	PairingSucceeded
	PairingFailed
	PairingRefused
)

var pairingStateNames = map[PairingState]string{
	PairingQueued:    "queued",
	PairingRunning:   "running",
	PairingSucceeded: "succeeded",
	PairingFailed:    "failed",
	PairingRefused:   "refused",
}

func (s PairingState) String() string {
	if n, ok := pairingStateNames[s]; ok {
		return n
	}
	return fmt.Sprintf("PairingState(%d)", int(s))
}

// Final reports whether the state is an end state.
func (s PairingState) Final() bool {
	return s == PairingSucceeded || s == PairingFailed || s == PairingRefused
}

// ParsePairingState is the inverse of PairingState.String.
func ParsePairingState(s string) (PairingState, error) {
	for k, v := range pairingStateNames {
		if v == s {
			return k, nil
		}
	}
	return 0, fmt.Errorf("unknown pairing state %q", s)
}

// Pairing is one pairing attempt.
type Pairing struct {
	ID           string
	BatchID      string // empty when not part of a batch
	DeviceID     string
	TechnicianID string
	Method       Method
	State        PairingState
	DeviceState  string // last state the device reported
	Step         string // last step reported
	ResultCode   string // failure code identifier when failed or refused
	Detail       string // explanation, never secret
	TokenNonce   []byte // QR path: the claimed token nonce
	Label        string // device label pushed (the request's, else the inventory's)
	// ClaimsReleased: the push never reached the device and its token and
	// code were given back (ReleaseClaims): the same QR may be scanned
	// again.
	ClaimsReleased bool
	StartedAt      time.Time
	UpdatedAt      time.Time
	FinishedAt     time.Time // zero while running
}

// Batch is a group of pairings requested together.
type Batch struct {
	ID           string
	TechnicianID string
	Size         int
	CreatedAt    time.Time
}

// CertificateState is where a certificate the Central Station issued
// stands.
type CertificateState int

// Certificate states. Issued: recorded right after issuance, before
// delivery; the pairing has not ended yet (or the Central Station stopped
// before it did: such a certificate needs the operator's attention).
// InUse: the device reported PROVISIONED with it. Revoked: no device is to
// be trusted with it (see RevocationReason); a CRL lists it.
const (
	CertificateIssued CertificateState = iota + 1
	CertificateInUse
	CertificateRevoked
)

var certificateStateNames = map[CertificateState]string{
	CertificateIssued:  "issued",
	CertificateInUse:   "in-use",
	CertificateRevoked: "revoked",
}

func (s CertificateState) String() string {
	if n, ok := certificateStateNames[s]; ok {
		return n
	}
	return fmt.Sprintf("CertificateState(%d)", int(s))
}

// ParseCertificateState is the inverse of CertificateState.String.
func ParseCertificateState(s string) (CertificateState, error) {
	for k, v := range certificateStateNames {
		if v == s {
			return k, nil
		}
	}
	return 0, fmt.Errorf("unknown certificate state %q", s)
}

// RevocationReason says why a certificate was revoked; CRLReason maps it
// to the CRL's reason code (RFC 5280 section 5.3.1).
type RevocationReason int

// Revocation reasons.
const (
	// ReasonNotDelivered: the push did not complete (not sent, connection
	// lost, job cancelled or timed out).
	ReasonNotDelivered RevocationReason = iota + 1
	// ReasonDeviceRefused: the device received the payload and refused it.
	ReasonDeviceRefused
	// ReasonConnectionTestFailed: the device applied the configuration and
	// its connection test failed.
	ReasonConnectionTestFailed
	// ReasonDeviceReplaced: the device's keys were replaced (ReplaceDevice):
	// the certificate's key is gone with the old TPM. CRL reason
	// superseded.
	ReasonDeviceReplaced
	// ReasonSuperseded: the device renewed it and now uses its successor
	// (CRL reason superseded).
	ReasonSuperseded
	// Reasons an operator gives (zm-central certificates revoke --reason):
	// the device's key may be known to someone else (CRL keyCompromise),
	// the device left service (cessationOfOperation), it moved to another
	// hospital or owner (affiliationChanged).
	ReasonKeyCompromise
	ReasonCessationOfOperation
	ReasonAffiliationChanged
)

// OperatorReasons are the reasons an operator may give.
var OperatorReasons = []RevocationReason{ReasonKeyCompromise, ReasonCessationOfOperation, ReasonAffiliationChanged}

// CRLReason is r's CRL reason code (RFC 5280 section 5.3.1).
func (r RevocationReason) CRLReason() int {
	switch r {
	case ReasonKeyCompromise:
		return 1
	case ReasonAffiliationChanged:
		return 3
	case ReasonSuperseded, ReasonDeviceReplaced:
		return 4
	}
	return 5 // cessationOfOperation: never put to use, or left service
}

var revocationReasonNames = map[RevocationReason]string{
	ReasonNotDelivered:         "not-delivered",
	ReasonDeviceRefused:        "device-refused",
	ReasonConnectionTestFailed: "connection-test-failed",
	ReasonDeviceReplaced:       "device-replaced",
	ReasonSuperseded:           "superseded",
	ReasonKeyCompromise:        "key-compromise",
	ReasonCessationOfOperation: "cessation-of-operation",
	ReasonAffiliationChanged:   "affiliation-changed",
}

func (r RevocationReason) String() string {
	if n, ok := revocationReasonNames[r]; ok {
		return n
	}
	return fmt.Sprintf("RevocationReason(%d)", int(r))
}

// ParseRevocationReason is the inverse of RevocationReason.String.
func ParseRevocationReason(s string) (RevocationReason, error) {
	for k, v := range revocationReasonNames {
		if v == s {
			return k, nil
		}
	}
	return 0, fmt.Errorf("unknown revocation reason %q", s)
}

// CertificateSerial is the store's key of a certificate: its serial number
// in lower-case hexadecimal.
func CertificateSerial(c *x509.Certificate) string { return c.SerialNumber.Text(16) }

// IssuedCertificate is a client certificate issued to a device.
type IssuedCertificate struct {
	Serial    string // CertificateSerial
	DeviceID  string
	PairingID string
	NotBefore time.Time
	NotAfter  time.Time
	DER       []byte
	IssuedAt  time.Time
	State     CertificateState
	RevokedAt time.Time        // zero unless revoked
	Reason    RevocationReason // zero unless revoked
}

// Certificate parses the DER.
func (c IssuedCertificate) Certificate() (*x509.Certificate, error) {
	return x509.ParseCertificate(c.DER)
}

// AuditRecord is one entry of the append-only audit trail. It never holds a
// secret (no token, no pairing code, no key).
type AuditRecord struct {
	ID       int64     `json:"id"`
	At       time.Time `json:"at"`
	Actor    string    `json:"actor"`
	Event    string    `json:"event"`
	DeviceID string    `json:"deviceId,omitempty"`
	Detail   string    `json:"detail,omitempty"`
}
