package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/zmonitor/firmware/internal/base/clock"
	"github.com/zmonitor/firmware/internal/proto/ident"
)

// sqlStore is Store over database/sql, for both backends.
type sqlStore struct {
	db    *sql.DB
	d     *dialect
	clock clock.Clock
}

var _ Store = (*sqlStore)(nil)

// Times are stored as microseconds since the epoch, UTC.
func toMicros(t time.Time) int64 { return t.UTC().UnixMicro() }

func fromMicros(v int64) time.Time { return time.UnixMicro(v).UTC() }

func fromNullMicros(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return fromMicros(v.Int64)
}

func (s *sqlStore) nowMicros() int64 { return toMicros(s.clock.Now()) }

func (s *sqlStore) exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	if err := checkArgs(args); err != nil {
		return nil, err
	}
	return s.db.ExecContext(ctx, s.d.rebind(q), args...)
}

func (s *sqlStore) queryRow(ctx context.Context, q string, args ...any) *sql.Row {
	return s.db.QueryRowContext(ctx, s.d.rebind(q), args...)
}

func (s *sqlStore) Close() error { return s.db.Close() }

func (s *sqlStore) Ping(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return fmt.Errorf("ping %s: %w", s.d.backend, err)
	}
	return nil
}

// mustAffect turns "no row changed" into ErrNotFound.
func mustAffect(res sql.Result, err error) error {
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}

// --- devices

const deviceColumns = `device_id, device_serial, identity_spki, payload_spki, firmware_version, label, imported_at, revoked_at, attestation_key, decommissioned_at`

type scanner interface{ Scan(dest ...any) error }

func scanDevice(r scanner) (Device, error) {
	var d Device
	var imported int64
	var revoked, decommissioned sql.NullInt64
	if err := r.Scan(&d.ID, &d.Serial, &d.IdentitySPKI, &d.PayloadSPKI, &d.FirmwareVersion, &d.Label, &imported, &revoked, &d.AttestationKey, &decommissioned); err != nil {
		return Device{}, err
	}
	d.ImportedAt = fromMicros(imported)
	d.RevokedAt = fromNullMicros(revoked)
	d.DecommissionedAt = fromNullMicros(decommissioned)
	return d, nil
}

func (s *sqlStore) ImportDevice(ctx context.Context, e Enrollment) (ImportResult, error) {
	if err := e.Validate(); err != nil {
		return 0, fmt.Errorf("import %s: %w", e.DeviceID, err)
	}
	if owner, err := s.replacedKeyOwner(ctx, s.db, e); err != nil {
		return 0, fmt.Errorf("import %s: %w", e.DeviceID, err)
	} else if owner != "" {
		return 0, fmt.Errorf("import %s: %w: a key of this record was %s's before it was replaced", e.DeviceID, ErrConflict, owner)
	}
	res, err := s.exec(ctx, `INSERT INTO devices (device_id, device_serial, identity_spki, payload_spki, firmware_version, imported_at, attestation_key)
		VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (device_id) DO NOTHING`,
		e.DeviceID, e.DeviceSerial, e.IdentitySPKI, e.PayloadSPKI, e.FirmwareVersion, s.nowMicros(), nullBytes(e.AttestationKey))
	if err != nil {
		if s.d.isUniqueViolation(err) {
			return 0, fmt.Errorf("import %s: %w: a key of this record is enrolled for another device", e.DeviceID, ErrConflict)
		}
		return 0, fmt.Errorf("import %s: %w", e.DeviceID, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return 0, fmt.Errorf("import %s: %w", e.DeviceID, err)
	} else if n == 1 {
		return ImportAdded, nil
	}
	old, err := s.Device(ctx, e.DeviceID)
	if err != nil {
		return 0, fmt.Errorf("import %s: %w", e.DeviceID, err)
	}
	switch {
	case !bytes.Equal(old.IdentitySPKI, e.IdentitySPKI):
		return 0, fmt.Errorf("import %s: %w: a different identity key is enrolled", e.DeviceID, ErrConflict)
	case !bytes.Equal(old.PayloadSPKI, e.PayloadSPKI):
		return 0, fmt.Errorf("import %s: %w: a different payload key is enrolled", e.DeviceID, ErrConflict)
	case old.Serial != e.DeviceSerial:
		return 0, fmt.Errorf("import %s: %w: enrolled with serial %s", e.DeviceID, ErrConflict, old.Serial)
	case old.AttestationKey != nil && e.AttestationKey != nil && !bytes.Equal(old.AttestationKey, e.AttestationKey):
		return 0, fmt.Errorf("import %s: %w: a different attestation key is enrolled", e.DeviceID, ErrConflict)
	case old.AttestationKey == nil && e.AttestationKey != nil:
		// A device enrolled before attestation, re-exported with its
		// attestation key (certified by the enrolled identity key).
		if _, err := s.exec(ctx, `UPDATE devices SET attestation_key = ?, firmware_version = ? WHERE device_id = ? AND identity_spki = ?`,
			e.AttestationKey, e.FirmwareVersion, e.DeviceID, e.IdentitySPKI); err != nil {
			return 0, fmt.Errorf("import %s: add attestation key: %w", e.DeviceID, err)
		}
		return ImportUpdated, nil
	case old.FirmwareVersion == e.FirmwareVersion:
		return ImportUnchanged, nil
	}
	if _, err := s.exec(ctx, `UPDATE devices SET firmware_version = ? WHERE device_id = ? AND identity_spki = ?`,
		e.FirmwareVersion, e.DeviceID, e.IdentitySPKI); err != nil {
		return 0, fmt.Errorf("import %s: update firmware version: %w", e.DeviceID, err)
	}
	return ImportUpdated, nil
}

func (s *sqlStore) Device(ctx context.Context, id string) (Device, error) {
	if err := lookupKey("device", id); err != nil {
		return Device{}, err
	}
	d, err := scanDevice(s.queryRow(ctx, `SELECT `+deviceColumns+` FROM devices WHERE device_id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Device{}, fmt.Errorf("device %q: %w", id, ErrNotFound)
	}
	if err != nil {
		return Device{}, fmt.Errorf("device %q: %w", id, err)
	}
	return d, nil
}

func (s *sqlStore) Devices(ctx context.Context) ([]Device, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+deviceColumns+` FROM devices ORDER BY device_id`)
	if err != nil {
		return nil, fmt.Errorf("list devices: %w", err)
	}
	defer rows.Close()
	var out []Device
	for rows.Next() {
		d, err := scanDevice(rows)
		if err != nil {
			return nil, fmt.Errorf("list devices: %w", err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list devices: %w", err)
	}
	return out, nil
}

func (s *sqlStore) RevokeDevice(ctx context.Context, id string) error {
	err := mustAffect(s.exec(ctx, `UPDATE devices SET revoked_at = COALESCE(revoked_at, ?) WHERE device_id = ?`, s.nowMicros(), id))
	if err != nil {
		return fmt.Errorf("revoke device %q: %w", id, err)
	}
	return nil
}

func (s *sqlStore) DecommissionDevice(ctx context.Context, id string) (time.Time, error) {
	if err := mustAffect(s.exec(ctx, `UPDATE devices SET decommissioned_at = COALESCE(decommissioned_at, ?) WHERE device_id = ?`, s.nowMicros(), id)); err != nil {
		return time.Time{}, fmt.Errorf("decommission device %q: %w", id, err)
	}
	d, err := s.Device(ctx, id)
	if err != nil {
		return time.Time{}, fmt.Errorf("decommission device %q: %w", id, err)
	}
	return d.DecommissionedAt, nil
}

func (s *sqlStore) SetDeviceLabel(ctx context.Context, id, label string) error {
	if err := ident.CheckLabel(label); err != nil {
		return fmt.Errorf("label device %q: label: %w", id, err)
	}
	if err := mustAffect(s.exec(ctx, `UPDATE devices SET label = ? WHERE device_id = ?`, label, id)); err != nil {
		return fmt.Errorf("label device %q: %w", id, err)
	}
	return nil
}

// --- technicians

const technicianColumns = `id, name, token_hash, role, created_at, revoked_at`

func scanTechnician(r scanner) (Technician, error) {
	var t Technician
	var created int64
	var revoked sql.NullInt64
	var role string
	if err := r.Scan(&t.ID, &t.Name, &t.TokenHash, &role, &created, &revoked); err != nil {
		return Technician{}, err
	}
	var err error
	if t.Role, err = ParseRole(role); err != nil {
		return Technician{}, fmt.Errorf("technician %s: %w", t.ID, err)
	}
	t.CreatedAt = fromMicros(created)
	t.RevokedAt = fromNullMicros(revoked)
	return t, nil
}

func (s *sqlStore) AddTechnician(ctx context.Context, id, name string, tokenHash []byte) (Technician, error) {
	if name == "" || len(name) > 128 {
		return Technician{}, fmt.Errorf("add technician: name must be 1-128 bytes")
	}
	if len(tokenHash) != sha256.Size {
		return Technician{}, fmt.Errorf("add technician: token hash of %d bytes", len(tokenHash))
	}
	t := Technician{ID: id, Name: name, TokenHash: tokenHash, Role: RoleTechnician, CreatedAt: fromMicros(s.nowMicros())}
	_, err := s.exec(ctx, `INSERT INTO technicians (id, name, token_hash, created_at) VALUES (?, ?, ?, ?)`,
		t.ID, t.Name, t.TokenHash, toMicros(t.CreatedAt))
	if err != nil {
		if s.d.isUniqueViolation(err) {
			return Technician{}, fmt.Errorf("add technician: %w: ID or token exists", ErrConflict)
		}
		return Technician{}, fmt.Errorf("add technician: %w", err)
	}
	return t, nil
}

func (s *sqlStore) Technician(ctx context.Context, id string) (Technician, error) {
	if err := lookupKey("technician", id); err != nil {
		return Technician{}, err
	}
	t, err := scanTechnician(s.queryRow(ctx, `SELECT `+technicianColumns+` FROM technicians WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Technician{}, fmt.Errorf("technician %q: %w", id, ErrNotFound)
	}
	if err != nil {
		return Technician{}, fmt.Errorf("technician %q: %w", id, err)
	}
	return t, nil
}

func (s *sqlStore) Technicians(ctx context.Context) ([]Technician, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+technicianColumns+` FROM technicians ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("list technicians: %w", err)
	}
	defer rows.Close()
	var out []Technician
	for rows.Next() {
		t, err := scanTechnician(rows)
		if err != nil {
			return nil, fmt.Errorf("list technicians: %w", err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list technicians: %w", err)
	}
	return out, nil
}

func (s *sqlStore) RevokeTechnician(ctx context.Context, id string) error {
	now := s.nowMicros()
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if err := mustAffect(tx.ExecContext(ctx, s.d.rebind(`UPDATE technicians SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?`), now, id)); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.d.rebind(`UPDATE passkeys SET revoked_at = COALESCE(revoked_at, ?) WHERE technician_id = ?`), now, id); err != nil {
			return fmt.Errorf("revoke passkeys: %w", err)
		}
		if _, err := tx.ExecContext(ctx, s.d.rebind(`UPDATE web_sessions SET ended_at = COALESCE(ended_at, ?) WHERE technician_id = ?`), now, id); err != nil {
			return fmt.Errorf("end sessions: %w", err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("revoke technician %q: %w", id, err)
	}
	return nil
}

func (s *sqlStore) SetTechnicianRole(ctx context.Context, id string, role Role) error {
	if role != RoleTechnician && role != RoleOperator {
		return fmt.Errorf("set role of technician %q: %v is not a role", id, role)
	}
	if err := mustAffect(s.exec(ctx, `UPDATE technicians SET role = ? WHERE id = ?`, role.String(), id)); err != nil {
		return fmt.Errorf("set role of technician %q: %w", id, err)
	}
	return nil
}

// inTx runs fn in one transaction, committed when fn returns nil.
func (s *sqlStore) inTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}

// --- one-time use

func (s *sqlStore) ClaimToken(ctx context.Context, deviceID string, nonce []byte) error {
	if len(nonce) == 0 {
		return errors.New("claim token: empty nonce")
	}
	_, err := s.exec(ctx, `INSERT INTO used_nonces (device_id, token_nonce, used_at) VALUES (?, ?, ?)`, deviceID, nonce, s.nowMicros())
	if err != nil {
		if s.d.isUniqueViolation(err) {
			return fmt.Errorf("claim token for %s: %w", deviceID, ErrAlreadyUsed)
		}
		return fmt.Errorf("claim token for %s: %w", deviceID, err)
	}
	return nil
}

// codeHash binds a pairing code to its device; the code itself is never
// stored.
func codeHash(deviceID, code string) []byte {
	h := sha256.New()
	h.Write([]byte("zmonitor-central-used-code-v1\x00"))
	h.Write([]byte(deviceID))
	h.Write([]byte{0})
	h.Write([]byte(code))
	return h.Sum(nil)
}

func (s *sqlStore) ClaimCode(ctx context.Context, deviceID, code string) error {
	if code == "" {
		return errors.New("claim pairing code: empty code")
	}
	_, err := s.exec(ctx, `INSERT INTO used_codes (device_id, code_hash, used_at) VALUES (?, ?, ?)`, deviceID, codeHash(deviceID, code), s.nowMicros())
	if err != nil {
		if s.d.isUniqueViolation(err) {
			return fmt.Errorf("claim pairing code for %s: %w", deviceID, ErrAlreadyUsed)
		}
		return fmt.Errorf("claim pairing code for %s: %w", deviceID, err)
	}
	return nil
}

func (s *sqlStore) ReleaseClaims(ctx context.Context, pairingID, code string) error {
	p, err := s.Pairing(ctx, pairingID)
	if err != nil {
		return fmt.Errorf("release claims: %w", err)
	}
	if !p.State.Final() {
		return fmt.Errorf("release claims of %s: the pairing is %s", pairingID, p.State)
	}
	if err := checkArgs([]any{code}); err != nil {
		return fmt.Errorf("release claims of %s: %w", pairingID, err)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("release claims of %s: %w", pairingID, err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	if len(p.TokenNonce) > 0 {
		if _, err := tx.ExecContext(ctx, s.d.rebind(`DELETE FROM used_nonces WHERE device_id = ? AND token_nonce = ?`), p.DeviceID, p.TokenNonce); err != nil {
			return fmt.Errorf("release token of %s: %w", pairingID, err)
		}
	}
	if _, err := tx.ExecContext(ctx, s.d.rebind(`DELETE FROM used_codes WHERE device_id = ? AND code_hash = ?`), p.DeviceID, codeHash(p.DeviceID, code)); err != nil {
		return fmt.Errorf("release code of %s: %w", pairingID, err)
	}
	if _, err := tx.ExecContext(ctx, s.d.rebind(`UPDATE pairings SET claims_released = 1 WHERE id = ?`), pairingID); err != nil {
		return fmt.Errorf("release claims of %s: %w", pairingID, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("release claims of %s: %w", pairingID, err)
	}
	return nil
}

// --- batches and pairings

func (s *sqlStore) CreateBatch(ctx context.Context, b Batch) error {
	if b.CreatedAt.IsZero() {
		b.CreatedAt = s.clock.Now()
	}
	if _, err := s.exec(ctx, `INSERT INTO batches (id, technician_id, size, created_at) VALUES (?, ?, ?, ?)`,
		b.ID, b.TechnicianID, b.Size, toMicros(b.CreatedAt)); err != nil {
		return fmt.Errorf("create batch: %w", err)
	}
	return nil
}

func (s *sqlStore) Batch(ctx context.Context, id string) (Batch, []Pairing, error) {
	if err := lookupKey("batch", id); err != nil {
		return Batch{}, nil, err
	}
	var b Batch
	var created int64
	err := s.queryRow(ctx, `SELECT id, technician_id, size, created_at FROM batches WHERE id = ?`, id).Scan(&b.ID, &b.TechnicianID, &b.Size, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return Batch{}, nil, fmt.Errorf("batch %q: %w", id, ErrNotFound)
	}
	if err != nil {
		return Batch{}, nil, fmt.Errorf("batch %q: %w", id, err)
	}
	b.CreatedAt = fromMicros(created)
	rows, err := s.db.QueryContext(ctx, s.d.rebind(`SELECT `+pairingColumns+` FROM pairings WHERE batch_id = ? ORDER BY started_at, id`), id)
	if err != nil {
		return Batch{}, nil, fmt.Errorf("batch %q: pairings: %w", id, err)
	}
	defer rows.Close()
	var ps []Pairing
	for rows.Next() {
		p, err := scanPairing(rows)
		if err != nil {
			return Batch{}, nil, fmt.Errorf("batch %q: pairings: %w", id, err)
		}
		ps = append(ps, p)
	}
	if err := rows.Err(); err != nil {
		return Batch{}, nil, fmt.Errorf("batch %q: pairings: %w", id, err)
	}
	return b, ps, nil
}

const pairingColumns = `id, batch_id, device_id, technician_id, method, state, device_state, step, result_code, detail, token_nonce, label, started_at, updated_at, finished_at, claims_released`

func scanPairing(r scanner) (Pairing, error) {
	var p Pairing
	var method, state string
	var started, updated int64
	var finished sql.NullInt64
	var released int64
	if err := r.Scan(&p.ID, &p.BatchID, &p.DeviceID, &p.TechnicianID, &method, &state, &p.DeviceState, &p.Step,
		&p.ResultCode, &p.Detail, &p.TokenNonce, &p.Label, &started, &updated, &finished, &released); err != nil {
		return Pairing{}, err
	}
	p.ClaimsReleased = released != 0
	var err error
	if p.Method, err = ParseMethod(method); err != nil {
		return Pairing{}, err
	}
	if p.State, err = ParsePairingState(state); err != nil {
		return Pairing{}, err
	}
	p.StartedAt, p.UpdatedAt, p.FinishedAt = fromMicros(started), fromMicros(updated), fromNullMicros(finished)
	return p, nil
}

func (s *sqlStore) CreatePairing(ctx context.Context, p Pairing) error {
	now := s.nowMicros()
	var finished sql.NullInt64
	if p.State.Final() {
		finished = sql.NullInt64{Int64: now, Valid: true}
	}
	var nonce any
	if len(p.TokenNonce) > 0 {
		nonce = p.TokenNonce
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := s.txExec(ctx, tx, `INSERT INTO pairings (id, batch_id, device_id, technician_id, method, state, device_state, step, result_code, detail, token_nonce, label, started_at, updated_at, finished_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			p.ID, p.BatchID, p.DeviceID, p.TechnicianID, p.Method.String(), p.State.String(), cleanText(p.DeviceState), cleanText(p.Step), p.ResultCode, cleanText(p.Detail), nonce, p.Label, now, now, finished); err != nil {
			return err
		}
		return s.recordStep(ctx, tx, p.ID, now, p.State, p.DeviceState, p.Step, p.ResultCode)
	})
	if err != nil {
		return fmt.Errorf("create pairing: %w", err)
	}
	return nil
}

func (s *sqlStore) UpdatePairing(ctx context.Context, id string, state PairingState, deviceState, step string) error {
	if state.Final() {
		return fmt.Errorf("update pairing %s: %s is final: use FinishPairing", id, state)
	}
	now := s.nowMicros()
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if err := mustAffect(s.txExec(ctx, tx, `UPDATE pairings SET state = ?, device_state = ?, step = ?, updated_at = ? WHERE id = ? AND finished_at IS NULL`,
			state.String(), cleanText(deviceState), cleanText(step), now, id)); err != nil {
			return err
		}
		return s.recordStep(ctx, tx, id, now, state, deviceState, step, "")
	})
	if err != nil {
		return fmt.Errorf("update pairing %s: %w", id, err)
	}
	return nil
}

func (s *sqlStore) FinishPairing(ctx context.Context, id string, state PairingState, resultCode, detail string) error {
	if !state.Final() {
		return fmt.Errorf("finish pairing %s: %s is not final", id, state)
	}
	now := s.nowMicros()
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if err := mustAffect(s.txExec(ctx, tx, `UPDATE pairings SET state = ?, result_code = ?, detail = ?, updated_at = ?, finished_at = ? WHERE id = ? AND finished_at IS NULL`,
			state.String(), cleanText(resultCode), cleanText(detail), now, now, id)); err != nil {
			return err
		}
		return s.recordStep(ctx, tx, id, now, state, "", "", resultCode)
	})
	if err != nil {
		return fmt.Errorf("finish pairing %s: %w", id, err)
	}
	return nil
}

func (s *sqlStore) Pairing(ctx context.Context, id string) (Pairing, error) {
	if err := lookupKey("pairing", id); err != nil {
		return Pairing{}, err
	}
	p, err := scanPairing(s.queryRow(ctx, `SELECT `+pairingColumns+` FROM pairings WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Pairing{}, fmt.Errorf("pairing %q: %w", id, ErrNotFound)
	}
	if err != nil {
		return Pairing{}, fmt.Errorf("pairing %q: %w", id, err)
	}
	return p, nil
}

// --- certificates

const certificateColumns = `serial, device_id, pairing_id, not_before, not_after, der, issued_at, state, revoked_at, revocation_reason`

func scanCertificate(r scanner) (IssuedCertificate, error) {
	var c IssuedCertificate
	var notBefore, revoked sql.NullInt64
	var notAfter, issued int64
	var state, reason string
	if err := r.Scan(&c.Serial, &c.DeviceID, &c.PairingID, &notBefore, &notAfter, &c.DER, &issued, &state, &revoked, &reason); err != nil {
		return IssuedCertificate{}, err
	}
	c.NotAfter, c.IssuedAt, c.RevokedAt = fromMicros(notAfter), fromMicros(issued), fromNullMicros(revoked)
	var err error
	if c.State, err = ParseCertificateState(state); err != nil {
		return IssuedCertificate{}, fmt.Errorf("certificate %s: %w", c.Serial, err)
	}
	if reason != "" {
		if c.Reason, err = ParseRevocationReason(reason); err != nil {
			return IssuedCertificate{}, fmt.Errorf("certificate %s: %w", c.Serial, err)
		}
	}
	if notBefore.Valid {
		c.NotBefore = fromMicros(notBefore.Int64)
	} else {
		// Recorded before schema version 2: the DER has it.
		x, err := x509.ParseCertificate(c.DER)
		if err != nil {
			return IssuedCertificate{}, fmt.Errorf("certificate %s: %w", c.Serial, err)
		}
		c.NotBefore = x.NotBefore.UTC()
	}
	return c, nil
}

func (s *sqlStore) RecordCertificate(ctx context.Context, deviceID, pairingID string, der []byte) error {
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return fmt.Errorf("record certificate: %w", err)
	}
	serial := CertificateSerial(c)
	res, err := s.exec(ctx, `INSERT INTO issued_certificates (serial, device_id, pairing_id, not_before, not_after, der, issued_at, state) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (serial) DO NOTHING`,
		serial, deviceID, pairingID, toMicros(c.NotBefore), toMicros(c.NotAfter), der, s.nowMicros(), CertificateIssued.String())
	if err != nil {
		return fmt.Errorf("record certificate %s: %w", serial, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("record certificate %s: %w", serial, err)
	} else if n == 1 {
		return nil
	}
	old, err := s.certificate(ctx, serial)
	if err != nil {
		return fmt.Errorf("record certificate %s: %w", serial, err)
	}
	if !bytes.Equal(old.DER, der) || old.DeviceID != deviceID || old.PairingID != pairingID {
		return fmt.Errorf("record certificate %s: %w: another certificate has this serial", serial, ErrConflict)
	}
	return nil
}

func (s *sqlStore) certificate(ctx context.Context, serial string) (IssuedCertificate, error) {
	if err := lookupKey("certificate", serial); err != nil {
		return IssuedCertificate{}, err
	}
	c, err := scanCertificate(s.queryRow(ctx, `SELECT `+certificateColumns+` FROM issued_certificates WHERE serial = ?`, serial))
	if errors.Is(err, sql.ErrNoRows) {
		return IssuedCertificate{}, fmt.Errorf("certificate %q: %w", serial, ErrNotFound)
	}
	return c, err
}

func (s *sqlStore) MarkCertificateInUse(ctx context.Context, serial string) error {
	err := mustAffect(s.exec(ctx, `UPDATE issued_certificates SET state = ? WHERE serial = ? AND state = ?`,
		CertificateInUse.String(), serial, CertificateIssued.String()))
	if errors.Is(err, ErrNotFound) {
		var c IssuedCertificate
		if c, err = s.certificate(ctx, serial); err == nil {
			switch c.State {
			case CertificateInUse:
				return nil
			case CertificateRevoked:
				err = fmt.Errorf("revoked on %s (%s): %w", c.RevokedAt.Format(time.RFC3339), c.Reason, ErrRevoked)
			}
		}
	}
	if err != nil {
		return fmt.Errorf("certificate %s in use: %w", serial, err)
	}
	return nil
}

func (s *sqlStore) RevokeCertificate(ctx context.Context, serial string, reason RevocationReason) error {
	if _, ok := revocationReasonNames[reason]; !ok {
		return fmt.Errorf("revoke certificate %s: unknown reason %v", serial, reason)
	}
	err := mustAffect(s.exec(ctx, `UPDATE issued_certificates SET state = ?, revoked_at = ?, revocation_reason = ? WHERE serial = ? AND state <> ?`,
		CertificateRevoked.String(), s.nowMicros(), reason.String(), serial, CertificateRevoked.String()))
	if errors.Is(err, ErrNotFound) {
		_, err = s.certificate(ctx, serial) // nil: revoked before
	}
	if err != nil {
		return fmt.Errorf("revoke certificate %s: %w", serial, err)
	}
	return nil
}

func (s *sqlStore) Certificates(ctx context.Context, deviceID string) ([]IssuedCertificate, error) {
	if !storableText(deviceID) {
		return nil, nil // no device has such an ID
	}
	out, err := s.certificates(ctx, `WHERE device_id = ?`, deviceID)
	if err != nil {
		return nil, fmt.Errorf("certificates of %s: %w", deviceID, err)
	}
	return out, nil
}

func (s *sqlStore) AllCertificates(ctx context.Context) ([]IssuedCertificate, error) {
	out, err := s.certificates(ctx, ``)
	if err != nil {
		return nil, fmt.Errorf("list certificates: %w", err)
	}
	return out, nil
}

func (s *sqlStore) certificates(ctx context.Context, where string, args ...any) ([]IssuedCertificate, error) {
	rows, err := s.db.QueryContext(ctx, s.d.rebind(`SELECT `+certificateColumns+` FROM issued_certificates `+where+` ORDER BY issued_at, serial`), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []IssuedCertificate
	for rows.Next() {
		c, err := scanCertificate(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// --- audit

func (s *sqlStore) Audit(ctx context.Context, r AuditRecord) error {
	if r.Actor == "" || r.Event == "" {
		return errors.New("audit: actor and event are required")
	}
	if _, err := s.exec(ctx, `INSERT INTO audit (at, actor, event, device_id, detail) VALUES (?, ?, ?, ?, ?)`,
		s.nowMicros(), cleanText(r.Actor), cleanText(r.Event), cleanText(r.DeviceID), cleanText(r.Detail)); err != nil {
		return fmt.Errorf("audit %s: %w", r.Event, err)
	}
	return nil
}

func (s *sqlStore) ExportAudit(ctx context.Context, fn func(AuditRecord) error) error {
	rows, err := s.db.QueryContext(ctx, `SELECT id, at, actor, event, device_id, detail FROM audit ORDER BY id`)
	if err != nil {
		return fmt.Errorf("export audit: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var r AuditRecord
		var at int64
		if err := rows.Scan(&r.ID, &at, &r.Actor, &r.Event, &r.DeviceID, &r.Detail); err != nil {
			return fmt.Errorf("export audit: %w", err)
		}
		r.At = fromMicros(at)
		if err := fn(r); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("export audit: %w", err)
	}
	return nil
}

// nullBytes stores an absent byte string as NULL.
func nullBytes(b []byte) any {
	if b == nil {
		return nil
	}
	return b
}
