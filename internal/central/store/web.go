package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// The web app's records: passkeys (one per technician's tablet), one-time
// enrollment links, browser sessions and WebAuthn ceremonies. Secrets
// (link and session tokens) are stored as their SHA-256 only; the
// credential record of a passkey holds its public key, never a secret.

// Passkey is a WebAuthn credential registered by a technician on a tablet.
type Passkey struct {
	ID           string // "k-" and 16 hex digits
	TechnicianID string
	CredentialID []byte // the WebAuthn credential ID
	Credential   []byte // the WebAuthn credential record (JSON), opaque here
	Name         string // what the technician's browser said it is
	CreatedAt    time.Time
	LastUsedAt   time.Time // zero if never used to sign in
	RevokedAt    time.Time // zero if not revoked
}

// Revoked reports whether the passkey was revoked.
func (p Passkey) Revoked() bool { return !p.RevokedAt.IsZero() }

// EnrollmentLink is a one-time link with which a technician registers a
// passkey.
type EnrollmentLink struct {
	ID           string
	TechnicianID string
	Hash         []byte // SHA-256 of the link's token
	CreatedBy    string // the operator (or "cli") who made it
	CreatedAt    time.Time
	ExpiresAt    time.Time
	UsedAt       time.Time // zero while unused
	PasskeyID    string    // the passkey it registered
}

// WebSession is a browser signed in with a passkey.
type WebSession struct {
	ID           string
	Hash         []byte // SHA-256 of the cookie's token
	TechnicianID string
	PasskeyID    string
	CreatedAt    time.Time
	LastSeenAt   time.Time
	EndedAt      time.Time // zero while not ended (signed out, revoked)
}

// Ended reports whether the session was ended.
func (w WebSession) Ended() bool { return !w.EndedAt.IsZero() }

// Ceremony is a WebAuthn ceremony between its begin and finish steps.
type Ceremony struct {
	ID        string
	Kind      string // "register" or "sign-in"
	Subject   string // the enrollment link's ID for a registration
	Data      []byte // the WebAuthn session data (JSON), opaque here
	ExpiresAt time.Time
}

// maxCredential bounds a stored credential record.
const maxCredential = 16 << 10

const passkeyColumns = `id, technician_id, credential_id, credential, name, created_at, last_used_at, revoked_at`

func scanPasskey(r scanner) (Passkey, error) {
	var p Passkey
	var created int64
	var used, revoked sql.NullInt64
	if err := r.Scan(&p.ID, &p.TechnicianID, &p.CredentialID, &p.Credential, &p.Name, &created, &used, &revoked); err != nil {
		return Passkey{}, err
	}
	p.CreatedAt, p.LastUsedAt, p.RevokedAt = fromMicros(created), fromNullMicros(used), fromNullMicros(revoked)
	return p, nil
}

func (s *sqlStore) CreateEnrollmentLink(ctx context.Context, l EnrollmentLink) error {
	if l.ID == "" || len(l.Hash) != 32 || l.ExpiresAt.IsZero() {
		return errors.New("create enrollment link: ID, hash and expiry are required")
	}
	if _, err := s.exec(ctx, `INSERT INTO enrollment_links (id, technician_id, secret_hash, created_by, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)`,
		l.ID, l.TechnicianID, l.Hash, l.CreatedBy, s.nowMicros(), toMicros(l.ExpiresAt)); err != nil {
		if s.d.isUniqueViolation(err) {
			return fmt.Errorf("create enrollment link: %w", ErrConflict)
		}
		return fmt.Errorf("create enrollment link for %s: %w", l.TechnicianID, err)
	}
	return nil
}

func (s *sqlStore) EnrollmentLink(ctx context.Context, id string) (EnrollmentLink, error) {
	if err := lookupKey("enrollment link", id); err != nil {
		return EnrollmentLink{}, err
	}
	var l EnrollmentLink
	var created, expires int64
	var used sql.NullInt64
	err := s.queryRow(ctx, `SELECT id, technician_id, secret_hash, created_by, created_at, expires_at, used_at, passkey_id FROM enrollment_links WHERE id = ?`, id).
		Scan(&l.ID, &l.TechnicianID, &l.Hash, &l.CreatedBy, &created, &expires, &used, &l.PasskeyID)
	if errors.Is(err, sql.ErrNoRows) {
		return EnrollmentLink{}, fmt.Errorf("enrollment link: %w", ErrNotFound)
	}
	if err != nil {
		return EnrollmentLink{}, fmt.Errorf("enrollment link: %w", err)
	}
	l.CreatedAt, l.ExpiresAt, l.UsedAt = fromMicros(created), fromMicros(expires), fromNullMicros(used)
	return l, nil
}

func (s *sqlStore) RedeemEnrollmentLink(ctx context.Context, linkID string, p Passkey) error {
	if p.ID == "" || len(p.CredentialID) == 0 || len(p.Credential) == 0 || len(p.Credential) > maxCredential || len(p.Name) > 128 {
		return errors.New("redeem enrollment link: passkey ID, credential ID and record (at most 16 KiB) are required, name at most 128 bytes")
	}
	if err := checkArgs([]any{linkID, p.ID, p.TechnicianID, p.Name}); err != nil {
		return fmt.Errorf("redeem enrollment link: %w", err)
	}
	now := s.nowMicros()
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var techID string
		var expires int64
		var used, revoked sql.NullInt64
		err := tx.QueryRowContext(ctx, s.d.rebind(`SELECT l.technician_id, l.expires_at, l.used_at, t.revoked_at FROM enrollment_links l JOIN technicians t ON t.id = l.technician_id WHERE l.id = ?`), linkID).
			Scan(&techID, &expires, &used, &revoked)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return ErrNotFound
		case err != nil:
			return err
		case used.Valid:
			return ErrAlreadyUsed
		case expires <= now:
			return ErrExpired
		case revoked.Valid:
			return fmt.Errorf("technician %s: %w", techID, ErrRevoked)
		case p.TechnicianID != techID:
			return fmt.Errorf("the passkey is for %s, the link for %s", p.TechnicianID, techID)
		}
		// The condition on used_at makes the use single even if two
		// redemptions read the link unused at once.
		if err := mustAffect(tx.ExecContext(ctx, s.d.rebind(`UPDATE enrollment_links SET used_at = ?, passkey_id = ? WHERE id = ? AND used_at IS NULL`), now, p.ID, linkID)); err != nil {
			if errors.Is(err, ErrNotFound) {
				return ErrAlreadyUsed
			}
			return err
		}
		if _, err := tx.ExecContext(ctx, s.d.rebind(`INSERT INTO passkeys (id, technician_id, credential_id, credential, name, created_at) VALUES (?, ?, ?, ?, ?, ?)`),
			p.ID, p.TechnicianID, p.CredentialID, p.Credential, p.Name, now); err != nil {
			if s.d.isUniqueViolation(err) {
				return fmt.Errorf("%w: this credential is registered already", ErrConflict)
			}
			return err
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("redeem enrollment link: %w", err)
	}
	return nil
}

func (s *sqlStore) passkeys(ctx context.Context, where string, args ...any) ([]Passkey, error) {
	rows, err := s.db.QueryContext(ctx, s.d.rebind(`SELECT `+passkeyColumns+` FROM passkeys `+where+` ORDER BY created_at, id`), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Passkey
	for rows.Next() {
		p, err := scanPasskey(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

func (s *sqlStore) Passkeys(ctx context.Context, technicianID string) ([]Passkey, error) {
	var out []Passkey
	var err error
	if technicianID == "" {
		out, err = s.passkeys(ctx, ``)
	} else {
		out, err = s.passkeys(ctx, `WHERE technician_id = ?`, technicianID)
	}
	if err != nil {
		return nil, fmt.Errorf("list passkeys: %w", err)
	}
	return out, nil
}

func (s *sqlStore) Passkey(ctx context.Context, id string) (Passkey, error) {
	if err := lookupKey("passkey", id); err != nil {
		return Passkey{}, err
	}
	p, err := scanPasskey(s.queryRow(ctx, `SELECT `+passkeyColumns+` FROM passkeys WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Passkey{}, fmt.Errorf("passkey %q: %w", id, ErrNotFound)
	}
	if err != nil {
		return Passkey{}, fmt.Errorf("passkey %q: %w", id, err)
	}
	return p, nil
}

func (s *sqlStore) PasskeyByCredentialID(ctx context.Context, credentialID []byte) (Passkey, error) {
	p, err := scanPasskey(s.queryRow(ctx, `SELECT `+passkeyColumns+` FROM passkeys WHERE credential_id = ?`, credentialID))
	if errors.Is(err, sql.ErrNoRows) {
		return Passkey{}, fmt.Errorf("passkey: %w", ErrNotFound)
	}
	if err != nil {
		return Passkey{}, fmt.Errorf("passkey: %w", err)
	}
	return p, nil
}

func (s *sqlStore) UsePasskey(ctx context.Context, id string, credential []byte) error {
	if len(credential) == 0 || len(credential) > maxCredential {
		return fmt.Errorf("use passkey %q: credential record of %d bytes", id, len(credential))
	}
	err := mustAffect(s.exec(ctx, `UPDATE passkeys SET credential = ?, last_used_at = ? WHERE id = ? AND revoked_at IS NULL`, credential, s.nowMicros(), id))
	if errors.Is(err, ErrNotFound) {
		if _, perr := s.Passkey(ctx, id); perr == nil {
			err = ErrRevoked
		}
	}
	if err != nil {
		return fmt.Errorf("use passkey %q: %w", id, err)
	}
	return nil
}

func (s *sqlStore) RevokePasskey(ctx context.Context, id string) error {
	if err := lookupKey("passkey", id); err != nil {
		return fmt.Errorf("revoke passkey: %w", err)
	}
	now := s.nowMicros()
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if err := mustAffect(tx.ExecContext(ctx, s.d.rebind(`UPDATE passkeys SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?`), now, id)); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, s.d.rebind(`UPDATE web_sessions SET ended_at = COALESCE(ended_at, ?) WHERE passkey_id = ?`), now, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("revoke passkey %q: %w", id, err)
	}
	return nil
}

func (s *sqlStore) CreateWebSession(ctx context.Context, ws WebSession) error {
	if ws.ID == "" || len(ws.Hash) != 32 || ws.TechnicianID == "" || ws.PasskeyID == "" {
		return errors.New("create session: ID, hash, technician and passkey are required")
	}
	now := s.nowMicros()
	if _, err := s.exec(ctx, `INSERT INTO web_sessions (id, secret_hash, technician_id, passkey_id, created_at, last_seen_at) VALUES (?, ?, ?, ?, ?, ?)`,
		ws.ID, ws.Hash, ws.TechnicianID, ws.PasskeyID, now, now); err != nil {
		return fmt.Errorf("create session: %w", err)
	}
	return nil
}

func (s *sqlStore) WebSession(ctx context.Context, id string) (WebSession, error) {
	if err := lookupKey("session", id); err != nil {
		return WebSession{}, err
	}
	var ws WebSession
	var created, seen int64
	var ended sql.NullInt64
	err := s.queryRow(ctx, `SELECT id, secret_hash, technician_id, passkey_id, created_at, last_seen_at, ended_at FROM web_sessions WHERE id = ?`, id).
		Scan(&ws.ID, &ws.Hash, &ws.TechnicianID, &ws.PasskeyID, &created, &seen, &ended)
	if errors.Is(err, sql.ErrNoRows) {
		return WebSession{}, fmt.Errorf("session: %w", ErrNotFound)
	}
	if err != nil {
		return WebSession{}, fmt.Errorf("session: %w", err)
	}
	ws.CreatedAt, ws.LastSeenAt, ws.EndedAt = fromMicros(created), fromMicros(seen), fromNullMicros(ended)
	return ws, nil
}

func (s *sqlStore) TouchWebSession(ctx context.Context, id string) error {
	if err := mustAffect(s.exec(ctx, `UPDATE web_sessions SET last_seen_at = ? WHERE id = ? AND ended_at IS NULL`, s.nowMicros(), id)); err != nil {
		return fmt.Errorf("touch session: %w", err)
	}
	return nil
}

func (s *sqlStore) EndWebSession(ctx context.Context, id string) error {
	if _, err := s.exec(ctx, `UPDATE web_sessions SET ended_at = COALESCE(ended_at, ?) WHERE id = ?`, s.nowMicros(), id); err != nil {
		return fmt.Errorf("end session: %w", err)
	}
	return nil
}

func (s *sqlStore) SaveCeremony(ctx context.Context, c Ceremony) error {
	if c.ID == "" || c.Kind == "" || len(c.Data) == 0 || len(c.Data) > maxCredential || c.ExpiresAt.IsZero() {
		return errors.New("save ceremony: ID, kind, data (at most 16 KiB) and expiry are required")
	}
	now := s.nowMicros()
	// Ceremonies nobody finished are forgotten here.
	if _, err := s.exec(ctx, `DELETE FROM webauthn_ceremonies WHERE expires_at <= ?`, now); err != nil {
		return fmt.Errorf("save ceremony: forget expired ones: %w", err)
	}
	if _, err := s.exec(ctx, `INSERT INTO webauthn_ceremonies (id, kind, subject, data, expires_at) VALUES (?, ?, ?, ?, ?)`,
		c.ID, c.Kind, c.Subject, c.Data, toMicros(c.ExpiresAt)); err != nil {
		return fmt.Errorf("save ceremony: %w", err)
	}
	return nil
}

func (s *sqlStore) TakeCeremony(ctx context.Context, id string) (Ceremony, error) {
	if err := lookupKey("ceremony", id); err != nil {
		return Ceremony{}, err
	}
	var c Ceremony
	var expires int64
	// DELETE ... RETURNING: of two requests finishing the same ceremony,
	// one gets it.
	err := s.queryRow(ctx, `DELETE FROM webauthn_ceremonies WHERE id = ? RETURNING id, kind, subject, data, expires_at`, id).
		Scan(&c.ID, &c.Kind, &c.Subject, &c.Data, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return Ceremony{}, fmt.Errorf("ceremony: %w", ErrNotFound)
	}
	if err != nil {
		return Ceremony{}, fmt.Errorf("ceremony: %w", err)
	}
	c.ExpiresAt = fromMicros(expires)
	if toMicros(c.ExpiresAt) <= s.nowMicros() {
		return Ceremony{}, fmt.Errorf("ceremony: %w", ErrExpired)
	}
	return c, nil
}

func (s *sqlStore) TechnicianPairings(ctx context.Context, technicianID string, since time.Time, limit int) ([]Pairing, error) {
	if limit <= 0 || limit > 1000 {
		limit = 1000
	}
	rows, err := s.db.QueryContext(ctx, s.d.rebind(`SELECT `+pairingColumns+` FROM pairings WHERE technician_id = ? AND started_at >= ? ORDER BY started_at DESC, id LIMIT ?`),
		technicianID, toMicros(since), limit)
	if err != nil {
		return nil, fmt.Errorf("pairings of %s: %w", technicianID, err)
	}
	defer rows.Close()
	var out []Pairing
	for rows.Next() {
		p, err := scanPairing(rows)
		if err != nil {
			return nil, fmt.Errorf("pairings of %s: %w", technicianID, err)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("pairings of %s: %w", technicianID, err)
	}
	return out, nil
}
