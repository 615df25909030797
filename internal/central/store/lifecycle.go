package store

import (
	"context"
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
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("confirm certificate %s: %w", serial, err)
	}
	return older, nil
}

// notFound turns sql.ErrNoRows into ErrNotFound.
func notFound(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	return err
}
