package store

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// querier is what both *sql.DB and *sql.Tx offer.
type querier interface {
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
}

// replacedKeyOwner returns the device whose replaced keys include one of
// e's, or "".
func (s *sqlStore) replacedKeyOwner(ctx context.Context, q querier, e Enrollment) (string, error) {
	var owner string
	err := q.QueryRowContext(ctx, s.d.rebind(`SELECT device_id FROM device_key_history
		WHERE identity_spki IN (?, ?) OR payload_spki IN (?, ?) LIMIT 1`),
		e.IdentitySPKI, e.PayloadSPKI, e.IdentitySPKI, e.PayloadSPKI).Scan(&owner)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read key history: %w", err)
	}
	return owner, nil
}

func (s *sqlStore) ReplaceDevice(ctx context.Context, e Enrollment, reason string) (Replacement, error) {
	var r Replacement
	fail := func(err error) (Replacement, error) {
		return Replacement{}, fmt.Errorf("replace %s: %w", e.DeviceID, err)
	}
	if err := e.Validate(); err != nil {
		return fail(err)
	}
	reason = strings.TrimSpace(reason)
	if reason == "" || len(reason) > 500 || !storableText(reason) {
		return fail(errors.New("a reason of 1-500 characters is required (it is audited)"))
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fail(err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	old, err := scanDevice(tx.QueryRowContext(ctx, s.d.rebind(`SELECT `+deviceColumns+` FROM devices WHERE device_id = ?`), e.DeviceID))
	if errors.Is(err, sql.ErrNoRows) {
		return fail(fmt.Errorf("%w: not in the inventory (import it with devices import)", ErrNotFound))
	}
	if err != nil {
		return fail(err)
	}
	if bytes.Equal(old.IdentitySPKI, e.IdentitySPKI) || bytes.Equal(old.PayloadSPKI, e.PayloadSPKI) {
		return fail(fmt.Errorf("%w: a key of the record is the one enrolled: nothing to replace (both keys change with a TPM or board)", ErrConflict))
	}
	if owner, err := s.replacedKeyOwner(ctx, tx, e); err != nil {
		return fail(err)
	} else if owner != "" {
		return fail(fmt.Errorf("%w: a key of the record was %s's before it was replaced: an old key never comes back", ErrConflict, owner))
	}
	now := s.nowMicros()
	var revoked sql.NullInt64
	if old.Revoked() {
		revoked = sql.NullInt64{Int64: toMicros(old.RevokedAt), Valid: true}
	}
	if _, err := tx.ExecContext(ctx, s.d.rebind(`INSERT INTO device_key_history (device_id, device_serial, identity_spki, payload_spki, firmware_version, imported_at, revoked_at, replaced_at, reason)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		old.ID, old.Serial, old.IdentitySPKI, old.PayloadSPKI, old.FirmwareVersion, toMicros(old.ImportedAt), revoked, now, reason); err != nil {
		return fail(fmt.Errorf("keep the old keys: %w", err))
	}
	if _, err := tx.ExecContext(ctx, s.d.rebind(`UPDATE devices SET device_serial = ?, identity_spki = ?, payload_spki = ?, firmware_version = ?, imported_at = ?, revoked_at = NULL WHERE device_id = ?`),
		e.DeviceSerial, e.IdentitySPKI, e.PayloadSPKI, e.FirmwareVersion, now, e.DeviceID); err != nil {
		if s.d.isUniqueViolation(err) {
			return fail(fmt.Errorf("%w: a key of the record is enrolled for another device", ErrConflict))
		}
		return fail(err)
	}
	rows, err := tx.QueryContext(ctx, s.d.rebind(`SELECT serial FROM issued_certificates WHERE device_id = ? AND state <> ? ORDER BY issued_at, serial`), e.DeviceID, CertificateRevoked.String())
	if err != nil {
		return fail(err)
	}
	for rows.Next() {
		var serial string
		if err := rows.Scan(&serial); err != nil {
			rows.Close()
			return fail(err)
		}
		r.RevokedCertificates = append(r.RevokedCertificates, serial)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fail(err)
	}
	for _, serial := range r.RevokedCertificates {
		if _, err := tx.ExecContext(ctx, s.d.rebind(`UPDATE issued_certificates SET state = ?, revoked_at = ?, revocation_reason = ? WHERE serial = ?`),
			CertificateRevoked.String(), now, ReasonDeviceReplaced.String(), serial); err != nil {
			return fail(fmt.Errorf("revoke certificate %s: %w", serial, err))
		}
	}
	if err := tx.Commit(); err != nil {
		return fail(err)
	}
	r.Old = old
	if r.New, err = s.Device(ctx, e.DeviceID); err != nil {
		return fail(err)
	}
	return r, nil
}

func (s *sqlStore) KeyHistory(ctx context.Context, id string) ([]ReplacedKeys, error) {
	if !storableText(id) {
		return nil, nil
	}
	rows, err := s.db.QueryContext(ctx, s.d.rebind(`SELECT device_id, device_serial, identity_spki, payload_spki, firmware_version, imported_at, revoked_at, replaced_at, reason
		FROM device_key_history WHERE device_id = ? ORDER BY id`), id)
	if err != nil {
		return nil, fmt.Errorf("key history of %s: %w", id, err)
	}
	defer rows.Close()
	var out []ReplacedKeys
	for rows.Next() {
		var k ReplacedKeys
		var imported, replaced int64
		var revoked sql.NullInt64
		if err := rows.Scan(&k.DeviceID, &k.Serial, &k.IdentitySPKI, &k.PayloadSPKI, &k.FirmwareVersion, &imported, &revoked, &replaced, &k.Reason); err != nil {
			return nil, fmt.Errorf("key history of %s: %w", id, err)
		}
		k.ImportedAt, k.RevokedAt, k.ReplacedAt = fromMicros(imported), fromNullMicros(revoked), fromMicros(replaced)
		out = append(out, k)
	}
	return out, rows.Err()
}
