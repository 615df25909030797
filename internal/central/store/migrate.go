package store

import (
	"context"
	"database/sql"
	"fmt"
)

// migration is one numbered schema step. Statements are expanded by the
// dialect; backend-specific statements are listed per backend.
type migration struct {
	version int
	name    string
	common  []string
	only    map[Backend][]string
}

// migrations are applied in order, each in its own transaction, and
// recorded in schema_migrations. Never edit a released migration: add one.
var migrations = []migration{
	{
		version: 1,
		name:    "inventory, technicians, pairings, one-time use, certificates, audit",
		common: []string{
			`CREATE TABLE devices (
				device_id TEXT PRIMARY KEY,
				device_serial TEXT NOT NULL,
				identity_spki {{BLOB}} NOT NULL UNIQUE,
				payload_spki {{BLOB}} NOT NULL UNIQUE,
				firmware_version TEXT NOT NULL,
				label TEXT NOT NULL DEFAULT '',
				imported_at {{TIME}} NOT NULL,
				revoked_at {{TIME}}
			)`,
			`CREATE TABLE technicians (
				id TEXT PRIMARY KEY,
				name TEXT NOT NULL,
				token_hash {{BLOB}} NOT NULL UNIQUE,
				created_at {{TIME}} NOT NULL,
				revoked_at {{TIME}}
			)`,
			`CREATE TABLE batches (
				id TEXT PRIMARY KEY,
				technician_id TEXT NOT NULL,
				size INTEGER NOT NULL,
				created_at {{TIME}} NOT NULL
			)`,
			`CREATE TABLE pairings (
				id TEXT PRIMARY KEY,
				batch_id TEXT NOT NULL DEFAULT '',
				device_id TEXT NOT NULL,
				technician_id TEXT NOT NULL,
				method TEXT NOT NULL,
				state TEXT NOT NULL,
				device_state TEXT NOT NULL DEFAULT '',
				step TEXT NOT NULL DEFAULT '',
				result_code TEXT NOT NULL DEFAULT '',
				detail TEXT NOT NULL DEFAULT '',
				token_nonce {{BLOB}},
				started_at {{TIME}} NOT NULL,
				updated_at {{TIME}} NOT NULL,
				finished_at {{TIME}}
			)`,
			`CREATE INDEX pairings_batch ON pairings (batch_id)`,
			`CREATE INDEX pairings_device ON pairings (device_id)`,
			// One-time use: the primary keys are the enforcement.
			`CREATE TABLE used_nonces (
				device_id TEXT NOT NULL REFERENCES devices (device_id),
				token_nonce {{BLOB}} NOT NULL,
				used_at {{TIME}} NOT NULL,
				PRIMARY KEY (device_id, token_nonce)
			)`,
			`CREATE TABLE used_codes (
				device_id TEXT NOT NULL REFERENCES devices (device_id),
				code_hash {{BLOB}} NOT NULL,
				used_at {{TIME}} NOT NULL,
				PRIMARY KEY (device_id, code_hash)
			)`,
			`CREATE TABLE issued_certificates (
				serial TEXT PRIMARY KEY,
				device_id TEXT NOT NULL REFERENCES devices (device_id),
				pairing_id TEXT NOT NULL DEFAULT '',
				not_after {{TIME}} NOT NULL,
				der {{BLOB}} NOT NULL,
				issued_at {{TIME}} NOT NULL
			)`,
			`CREATE INDEX issued_certificates_device ON issued_certificates (device_id)`,
			`CREATE TABLE audit (
				id {{SERIAL}},
				at {{TIME}} NOT NULL,
				actor TEXT NOT NULL,
				event TEXT NOT NULL,
				device_id TEXT NOT NULL DEFAULT '',
				detail TEXT NOT NULL DEFAULT ''
			)`,
		},
		only: map[Backend][]string{
			SQLite: {
				`CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END`,
				`CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END`,
			},
			PostgreSQL: {
				`CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'audit is append-only'; END $$`,
				`CREATE TRIGGER audit_no_change BEFORE UPDATE OR DELETE ON audit FOR EACH ROW EXECUTE FUNCTION audit_append_only()`,
				`CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only()`,
			},
		},
	},
	{
		version: 2,
		name:    "certificate state (issued, in use, revoked with a reason) and not-before; pairing label",
		common: []string{
			`ALTER TABLE issued_certificates ADD COLUMN not_before {{TIME}}`,
			// No usable default: every insert names the state.
			`ALTER TABLE issued_certificates ADD COLUMN state TEXT NOT NULL DEFAULT ''`,
			`ALTER TABLE issued_certificates ADD COLUMN revoked_at {{TIME}}`,
			`ALTER TABLE issued_certificates ADD COLUMN revocation_reason TEXT NOT NULL DEFAULT ''`,
			// Before version 2 a certificate was recorded only when the
			// device gave its final answer: in use, unless that pairing
			// failed (the device refused the payload, or its connection
			// test failed). not_before of those rows stays NULL; it is read
			// from the DER.
			`UPDATE issued_certificates SET state = 'in-use' WHERE state = ''`,
			`UPDATE issued_certificates SET state = 'revoked',
				revocation_reason = CASE
					WHEN (SELECT p.result_code FROM pairings p WHERE p.id = issued_certificates.pairing_id) = 'CONNECTION_FAILED' THEN 'connection-test-failed'
					ELSE 'device-refused' END,
				revoked_at = COALESCE((SELECT p.finished_at FROM pairings p WHERE p.id = issued_certificates.pairing_id), issued_at)
			WHERE EXISTS (SELECT 1 FROM pairings p WHERE p.id = issued_certificates.pairing_id AND p.state = 'failed')`,
			`CREATE INDEX issued_certificates_state ON issued_certificates (state)`,
			`CREATE INDEX issued_certificates_pairing ON issued_certificates (pairing_id)`,
			`ALTER TABLE pairings ADD COLUMN label TEXT NOT NULL DEFAULT ''`,
		},
	},
	{
		version: 3,
		name:    "pairing claims released after a push that never reached the device",
		common: []string{
			`ALTER TABLE pairings ADD COLUMN claims_released INTEGER NOT NULL DEFAULT 0`,
		},
	},
	{
		version: 4,
		name:    "keys of replaced devices (devices replace)",
		common: []string{
			`CREATE TABLE device_key_history (
				id {{SERIAL}},
				device_id TEXT NOT NULL REFERENCES devices (device_id),
				device_serial TEXT NOT NULL,
				identity_spki {{BLOB}} NOT NULL,
				payload_spki {{BLOB}} NOT NULL,
				firmware_version TEXT NOT NULL,
				imported_at {{TIME}} NOT NULL,
				revoked_at {{TIME}},
				replaced_at {{TIME}} NOT NULL,
				reason TEXT NOT NULL
			)`,
			`CREATE INDEX device_key_history_identity ON device_key_history (identity_spki)`,
			`CREATE INDEX device_key_history_payload ON device_key_history (payload_spki)`,
		},
	},
	{
		version: 5,
		name:    "web app: roles, passkeys, enrollment links, browser sessions, passkey ceremonies",
		common: []string{
			`ALTER TABLE technicians ADD COLUMN role TEXT NOT NULL DEFAULT 'technician'`,
			// A technician's passkeys, one per tablet. credential is the
			// WebAuthn credential record (JSON), rewritten after each
			// sign-in (signature counter, flags).
			`CREATE TABLE passkeys (
				id TEXT PRIMARY KEY,
				technician_id TEXT NOT NULL REFERENCES technicians (id),
				credential_id {{BLOB}} NOT NULL UNIQUE,
				credential {{BLOB}} NOT NULL,
				name TEXT NOT NULL DEFAULT '',
				created_at {{TIME}} NOT NULL,
				last_used_at {{TIME}},
				revoked_at {{TIME}}
			)`,
			`CREATE INDEX passkeys_technician ON passkeys (technician_id)`,
			// One-time enrollment links: only the SHA-256 of the link's
			// token is stored.
			`CREATE TABLE enrollment_links (
				id TEXT PRIMARY KEY,
				technician_id TEXT NOT NULL REFERENCES technicians (id),
				secret_hash {{BLOB}} NOT NULL,
				created_by TEXT NOT NULL DEFAULT '',
				created_at {{TIME}} NOT NULL,
				expires_at {{TIME}} NOT NULL,
				used_at {{TIME}},
				passkey_id TEXT NOT NULL DEFAULT ''
			)`,
			// Browser sessions, shared by every replica: only the SHA-256
			// of the cookie's token is stored.
			`CREATE TABLE web_sessions (
				id TEXT PRIMARY KEY,
				secret_hash {{BLOB}} NOT NULL,
				technician_id TEXT NOT NULL REFERENCES technicians (id),
				passkey_id TEXT NOT NULL REFERENCES passkeys (id),
				created_at {{TIME}} NOT NULL,
				last_seen_at {{TIME}} NOT NULL,
				ended_at {{TIME}}
			)`,
			`CREATE INDEX web_sessions_passkey ON web_sessions (passkey_id)`,
			// WebAuthn ceremonies between their begin and finish steps
			// (the challenge and its parameters), taken once.
			`CREATE TABLE webauthn_ceremonies (
				id TEXT PRIMARY KEY,
				kind TEXT NOT NULL,
				subject TEXT NOT NULL DEFAULT '',
				data {{BLOB}} NOT NULL,
				expires_at {{TIME}} NOT NULL
			)`,
			`CREATE INDEX pairings_technician ON pairings (technician_id, started_at)`,
		},
	},
	{
		version: 6,
		name:    "pairing steps: every change of a pairing with its time (the operator's timeline)",
		common: []string{
			// One row per change of a pairing, written with the change
			// (CreatePairing, UpdatePairing, FinishPairing) in its
			// transaction. Pairings older than this migration have none.
			`CREATE TABLE pairing_steps (
				id {{SERIAL}},
				pairing_id TEXT NOT NULL REFERENCES pairings (id),
				at {{TIME}} NOT NULL,
				state TEXT NOT NULL,
				device_state TEXT NOT NULL DEFAULT '',
				step TEXT NOT NULL DEFAULT '',
				result_code TEXT NOT NULL DEFAULT ''
			)`,
			`CREATE INDEX pairing_steps_pairing ON pairing_steps (pairing_id, id)`,
		},
	},
	{
		version: 7,
		name:    "firmware attestation: enrolled attestation keys, the firmware allow-list",
		common: []string{
			// The attestation key's TPMT_PUBLIC; NULL for a device
			// enrolled before attestation.
			`ALTER TABLE devices ADD COLUMN attestation_key {{BLOB}}`,
			// Released firmware images (zm-central firmware allow
			// MANIFEST), by Authenticode digest, with the PCR values the
			// manifest expects; denied_at set when withdrawn.
			`CREATE TABLE firmware (
				authenticode TEXT PRIMARY KEY,
				version TEXT NOT NULL,
				board TEXT NOT NULL,
				pcr4 TEXT NOT NULL,
				pcr7 TEXT NOT NULL,
				allowed_at {{TIME}} NOT NULL,
				denied_at {{TIME}}
			)`,
		},
	},
	{
		version: 8,
		name:    "device decommissioning (devices decommission)",
		common: []string{
			// When an operator decommissioned the device: its certificates
			// issued before then are revoked, and the EST server tells the
			// device to wipe itself (docs/lifecycle.md).
			`ALTER TABLE devices ADD COLUMN decommissioned_at {{TIME}}`,
		},
	},
}

// SchemaVersion is the version the migrations bring a database to.
func SchemaVersion() int { return migrations[len(migrations)-1].version }

// migrate applies the missing migrations, each in one transaction. Several
// processes may call it at once: the dialect's lock (or SQLite's immediate
// transaction) serializes them, and each re-reads the version under it.
func migrate(ctx context.Context, db *sql.DB, d *dialect, now func() int64) error {
	for _, m := range migrations {
		if err := applyOne(ctx, db, d, m, now); err != nil {
			return fmt.Errorf("migration %d (%s): %w", m.version, m.name, err)
		}
	}
	return nil
}

func applyOne(ctx context.Context, db *sql.DB, d *dialect, m migration, now func() int64) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	if d.migrationLock != "" {
		if _, err := tx.ExecContext(ctx, d.migrationLock); err != nil {
			return fmt.Errorf("lock: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, d.expand(`CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY,
		name TEXT NOT NULL,
		applied_at {{TIME}} NOT NULL
	)`)); err != nil {
		return fmt.Errorf("schema_migrations: %w", err)
	}
	var n int
	if err := tx.QueryRowContext(ctx, d.rebind(`SELECT COUNT(*) FROM schema_migrations WHERE version = ?`), m.version).Scan(&n); err != nil {
		return fmt.Errorf("read version: %w", err)
	}
	if n > 0 {
		return nil
	}
	stmts := append(append([]string{}, m.common...), m.only[d.backend]...)
	for i, s := range stmts {
		if _, err := tx.ExecContext(ctx, d.expand(s)); err != nil {
			return fmt.Errorf("statement %d: %w", i+1, err)
		}
	}
	if _, err := tx.ExecContext(ctx, d.rebind(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`), m.version, m.name, now()); err != nil {
		return fmt.Errorf("record version: %w", err)
	}
	return tx.Commit()
}
