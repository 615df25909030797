package store

import (
	"context"
	"crypto/x509"
	"database/sql"
	"errors"
	"fmt"
)

// Certificate implements Store.
func (s *sqlStore) Certificate(ctx context.Context, serial string) (IssuedCertificate, error) {
	return s.certificate(ctx, serial)
}

// ConfirmCertificate implements Store.
func (s *sqlStore) ConfirmCertificate(ctx context.Context, serial string) ([]string, error) {
	return s.confirmCertificate(ctx, serial, "")
}

// ConfirmCertificateAudited implements Store.
func (s *sqlStore) ConfirmCertificateAudited(ctx context.Context, serial, actor string) ([]string, error) {
	if actor == "" {
		return nil, fmt.Errorf("confirm certificate %s: an actor is required", serial)
	}
	return s.confirmCertificate(ctx, serial, actor)
}

// confirmCertificate confirms serial and, when actor is set, writes the
// audit records in the same transaction.
func (s *sqlStore) confirmCertificate(ctx context.Context, serial, actor string) ([]string, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("confirm certificate %s: %w", serial, err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it does nothing
	var device, state, reason string
	row := tx.QueryRowContext(ctx, s.d.rebind(`SELECT device_id, state, revocation_reason FROM issued_certificates WHERE serial = ?`), serial)
	if err := row.Scan(&device, &state, &reason); err != nil {
		return nil, fmt.Errorf("confirm certificate %s: %w", serial, notFound(err))
	}
	if state == CertificateRevoked.String() {
		return nil, fmt.Errorf("confirm certificate %s: revoked (%s): %w", serial, reason, ErrRevoked)
	}
	if state == CertificateIssued.String() {
		if _, err := tx.ExecContext(ctx, s.d.rebind(`UPDATE issued_certificates SET state = ? WHERE serial = ? AND state = ?`),
			CertificateInUse.String(), serial, CertificateIssued.String()); err != nil {
			return nil, fmt.Errorf("confirm certificate %s: %w", serial, err)
		}
		if err := s.auditTx(ctx, tx, actor, AuditRecord{Actor: actor, Event: "certificate.in_use", DeviceID: device,
			Detail: fmt.Sprintf("serial=%s confirmed by the device's EST request", serial)}); err != nil {
			return nil, fmt.Errorf("confirm certificate %s: %w", serial, err)
		}
	}
	rows, err := tx.QueryContext(ctx, s.d.rebind(`SELECT serial FROM issued_certificates WHERE device_id = ? AND state = ? AND serial <> ?`),
		device, CertificateInUse.String(), serial)
	if err != nil {
		return nil, fmt.Errorf("confirm certificate %s: %w", serial, err)
	}
	var older []string
	for rows.Next() {
		var o string
		if err := rows.Scan(&o); err != nil {
			rows.Close()
			return nil, fmt.Errorf("confirm certificate %s: %w", serial, err)
		}
		older = append(older, o)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("confirm certificate %s: %w", serial, err)
	}
	now := s.nowMicros()
	for _, o := range older {
		if _, err := tx.ExecContext(ctx, s.d.rebind(`UPDATE issued_certificates SET state = ?, revoked_at = ?, revocation_reason = ? WHERE serial = ? AND state = ?`),
			CertificateRevoked.String(), now, ReasonSuperseded.String(), o, CertificateInUse.String()); err != nil {
			return nil, fmt.Errorf("confirm certificate %s: supersede %s: %w", serial, o, err)
		}
		if err := s.auditTx(ctx, tx, actor, AuditRecord{Actor: actor, Event: "certificate.revoked", DeviceID: device,
			Detail: fmt.Sprintf("serial=%s reason=%s by=%s", o, ReasonSuperseded, serial)}); err != nil {
			return nil, fmt.Errorf("confirm certificate %s: %w", serial, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("confirm certificate %s: %w", serial, err)
	}
	return older, nil
}

// RecordRenewal implements Store.
func (s *sqlStore) RecordRenewal(ctx context.Context, deviceID string, der []byte, a AuditRecord) error {
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return fmt.Errorf("record renewal: %w", err)
	}
	if a.Actor == "" || a.Event == "" {
		return errors.New("record renewal: the audit record needs an actor and an event")
	}
	serial := CertificateSerial(c)
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("record renewal %s: %w", serial, err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it does nothing
	if _, err := tx.ExecContext(ctx, s.d.rebind(`INSERT INTO issued_certificates (serial, device_id, pairing_id, not_before, not_after, der, issued_at, state) VALUES (?, ?, '', ?, ?, ?, ?, ?)`),
		serial, deviceID, toMicros(c.NotBefore), toMicros(c.NotAfter), der, s.nowMicros(), CertificateIssued.String()); err != nil {
		return fmt.Errorf("record renewal %s: %w", serial, err)
	}
	if err := s.auditTx(ctx, tx, a.Actor, a); err != nil {
		return fmt.Errorf("record renewal %s: %w", serial, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("record renewal %s: %w", serial, err)
	}
	return nil
}

// auditTx appends r in tx when actor is set (else does nothing).
func (s *sqlStore) auditTx(ctx context.Context, tx *sql.Tx, actor string, r AuditRecord) error {
	if actor == "" {
		return nil
	}
	if _, err := tx.ExecContext(ctx, s.d.rebind(`INSERT INTO audit (at, actor, event, device_id, detail) VALUES (?, ?, ?, ?, ?)`),
		s.nowMicros(), cleanText(r.Actor), cleanText(r.Event), cleanText(r.DeviceID), cleanText(r.Detail)); err != nil {
		return fmt.Errorf("audit %s: %w", r.Event, err)
	}
	return nil
}

// notFound turns sql.ErrNoRows into ErrNotFound.
func notFound(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	return err
}
