package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Certificates left `issued` by a Central Station that stopped (crash,
// kill -9) between issuing a certificate and learning its fate.

// Resolution says how ResolveUnconfirmed settled one certificate.
type Resolution struct {
	Serial, DeviceID, PairingID string
	// Delivered: marked in use; else revoked (ReasonNotDelivered).
	Delivered bool
	// Evidence is what the decision rests on (for the audit record).
	Evidence string
}

// Result codes and device state the resolution writes or reads in
// pairings (the names internal/proto/failure and internal/proto/state
// give them; the store does not import the protocol).
const (
	resultOK           = "OK"
	resultInternal     = "INTERNAL"
	deviceProvisioned  = "PROVISIONED"
	resolutionActor    = "central-station"
	interruptedPairing = "interrupted: the Central Station stopped during the pairing"
)

// ResolveUnconfirmed settles the certificates still `issued` that were
// issued before `before` (callers pass a time older than any pairing or
// renewal that may still be running, on this process or a replica), by
// the evidence the store holds:
//
//   - a pairing's certificate: delivered (in use) if the pairing
//     succeeded or the device reported PROVISIONED (it passed its
//     connection test with it); otherwise revoked, not-delivered (the
//     rule of a broken push). A pairing still `running` is finished
//     with it (succeeded, or failed INTERNAL "interrupted").
//   - a renewal's certificate (no pairing): revoked, not-delivered, when
//     the device was issued a later certificate (it renewed again, or was
//     paired again, without ever using this one: using it confirms it).
//     The newest one is left `issued`: the device may have switched to it
//     and lost its confirmation; its key never left that device's TPM,
//     and the device's next EST request settles it (confirms it, or
//     renews with the old one and a later sweep revokes it).
//
// Each certificate is settled in one transaction with its pairing and
// its audit record (certificate.in_use or certificate.revoked, actor
// central-station); one settled by another replica meanwhile is skipped.
func (s *sqlStore) ResolveUnconfirmed(ctx context.Context, before time.Time) ([]Resolution, error) {
	rows, err := s.db.QueryContext(ctx, s.d.rebind(`SELECT `+certificateColumns+` FROM issued_certificates WHERE state = ? AND issued_at < ? ORDER BY issued_at, serial`),
		CertificateIssued.String(), toMicros(before))
	if err != nil {
		return nil, fmt.Errorf("resolve unconfirmed certificates: %w", err)
	}
	var cs []IssuedCertificate
	for rows.Next() {
		c, err := scanCertificate(rows)
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("resolve unconfirmed certificates: %w", err)
		}
		cs = append(cs, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("resolve unconfirmed certificates: %w", err)
	}
	var out []Resolution
	for _, c := range cs {
		r, ok, err := s.resolveOne(ctx, c)
		if err != nil {
			return out, fmt.Errorf("resolve unconfirmed certificate %s: %w", c.Serial, err)
		}
		if ok {
			out = append(out, r)
		}
	}
	return out, nil
}

func (s *sqlStore) resolveOne(ctx context.Context, c IssuedCertificate) (Resolution, bool, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return Resolution{}, false, err
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it does nothing
	r := Resolution{Serial: c.Serial, DeviceID: c.DeviceID, PairingID: c.PairingID}
	pairingRunning := false
	if c.PairingID != "" {
		var state, deviceState string
		var finished sql.NullInt64
		err := tx.QueryRowContext(ctx, s.d.rebind(`SELECT state, device_state, finished_at FROM pairings WHERE id = ?`), c.PairingID).Scan(&state, &deviceState, &finished)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			r.Evidence = "its pairing " + c.PairingID + " is not recorded"
		case err != nil:
			return r, false, err
		case state == PairingSucceeded.String():
			r.Delivered, r.Evidence = true, "its pairing succeeded"
		case deviceState == deviceProvisioned:
			r.Delivered, r.Evidence = true, "the device reported PROVISIONED during the pairing (its connection test passed with it)"
		case !finished.Valid:
			r.Evidence = fmt.Sprintf("its pairing was interrupted, the device's last report %q: delivery not confirmed", deviceState)
		default:
			r.Evidence = fmt.Sprintf("its pairing ended %s, the device's last report %q: delivery not confirmed", state, deviceState)
		}
		pairingRunning = err == nil && !finished.Valid
	} else {
		var later string
		err := tx.QueryRowContext(ctx, s.d.rebind(`SELECT serial FROM issued_certificates WHERE device_id = ? AND issued_at > ? ORDER BY issued_at LIMIT 1`),
			c.DeviceID, toMicros(c.IssuedAt)).Scan(&later)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return r, false, nil // the newest: see ResolveUnconfirmed
		case err != nil:
			return r, false, err
		}
		r.Evidence = "renewal never used: the device was issued " + later + " later"
	}
	now := s.nowMicros()
	var res sql.Result
	if r.Delivered {
		res, err = tx.ExecContext(ctx, s.d.rebind(`UPDATE issued_certificates SET state = ? WHERE serial = ? AND state = ?`),
			CertificateInUse.String(), c.Serial, CertificateIssued.String())
	} else {
		res, err = tx.ExecContext(ctx, s.d.rebind(`UPDATE issued_certificates SET state = ?, revoked_at = ?, revocation_reason = ? WHERE serial = ? AND state = ?`),
			CertificateRevoked.String(), now, ReasonNotDelivered.String(), c.Serial, CertificateIssued.String())
	}
	if err != nil {
		return r, false, err
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return r, false, err // settled meanwhile (another replica, the device)
	}
	event, detail := "certificate.revoked", fmt.Sprintf("serial=%s reason=%s resolved at start: %s", c.Serial, ReasonNotDelivered, r.Evidence)
	if r.Delivered {
		event, detail = "certificate.in_use", fmt.Sprintf("serial=%s resolved at start: %s", c.Serial, r.Evidence)
	}
	if pairingRunning {
		state, code, pdetail := PairingFailed, resultInternal, interruptedPairing
		if r.Delivered {
			state, code, pdetail = PairingSucceeded, resultOK, deviceProvisioned+" (recorded at the next start: "+interruptedPairing+")"
		}
		if _, err := tx.ExecContext(ctx, s.d.rebind(`UPDATE pairings SET state = ?, result_code = ?, detail = ?, updated_at = ?, finished_at = ? WHERE id = ? AND finished_at IS NULL`),
			state.String(), code, pdetail, now, now, c.PairingID); err != nil {
			return r, false, err
		}
		detail += "; pairing " + c.PairingID + " finished " + state.String()
	}
	if _, err := tx.ExecContext(ctx, s.d.rebind(`INSERT INTO audit (at, actor, event, device_id, detail) VALUES (?, ?, ?, ?, ?)`),
		now, resolutionActor, event, cleanText(c.DeviceID), cleanText(detail)); err != nil {
		return r, false, err
	}
	return r, true, tx.Commit()
}
