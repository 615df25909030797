package store

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// MaxListed bounds a list the operator's pages ask for.
const MaxListed = 1000

// PairingFilter selects pairings; a zero field selects all.
type PairingFilter struct {
	State        PairingState
	DeviceID     string
	TechnicianID string
	// Since and Until bound StartedAt: Since <= StartedAt < Until.
	Since, Until time.Time
	// Limit: at most this many, the newest (0 or more than MaxListed:
	// MaxListed).
	Limit int
}

// AuditFilter selects audit records; a zero field selects all.
type AuditFilter struct {
	Actor    string
	DeviceID string
	// Event: the record's event is Event, or starts with Event + "."
	// ("pairing" selects pairing.accepted, pairing.failed, ...).
	Event string
	// Contains: the detail contains this text ("pairing=p-…").
	Contains string
	// Since <= At < Until.
	Since, Until time.Time
	// NewestFirst reverses the order; Limit (0: none) keeps the first
	// Limit in that order.
	NewestFirst bool
	Limit       int
}

// where builds a WHERE clause of the conditions given (placeholders "?").
type where struct {
	conds []string
	args  []any
}

func (w *where) add(cond string, args ...any) {
	w.conds = append(w.conds, cond)
	w.args = append(w.args, args...)
}

func (w *where) String() string {
	if len(w.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(w.conds, " AND ")
}

// likeEscape escapes s for a LIKE pattern with ESCAPE '\'.
func likeEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

func (s *sqlStore) Pairings(ctx context.Context, f PairingFilter) ([]Pairing, error) {
	if f.Limit <= 0 || f.Limit > MaxListed {
		f.Limit = MaxListed
	}
	var w where
	if f.State != 0 {
		w.add("state = ?", f.State.String())
	}
	if f.DeviceID != "" {
		w.add("device_id = ?", f.DeviceID)
	}
	if f.TechnicianID != "" {
		w.add("technician_id = ?", f.TechnicianID)
	}
	if !f.Since.IsZero() {
		w.add("started_at >= ?", toMicros(f.Since))
	}
	if !f.Until.IsZero() {
		w.add("started_at < ?", toMicros(f.Until))
	}
	q := `SELECT ` + pairingColumns + ` FROM pairings` + w.String() + ` ORDER BY started_at DESC, id LIMIT ?`
	rows, err := s.db.QueryContext(ctx, s.d.rebind(q), append(w.args, f.Limit)...)
	if err != nil {
		return nil, fmt.Errorf("list pairings: %w", err)
	}
	defer rows.Close()
	var out []Pairing
	for rows.Next() {
		p, err := scanPairing(rows)
		if err != nil {
			return nil, fmt.Errorf("list pairings: %w", err)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list pairings: %w", err)
	}
	return out, nil
}

func (s *sqlStore) SearchAudit(ctx context.Context, f AuditFilter, fn func(AuditRecord) error) error {
	var w where
	if f.Actor != "" {
		w.add("actor = ?", f.Actor)
	}
	if f.DeviceID != "" {
		w.add("device_id = ?", f.DeviceID)
	}
	if f.Event != "" {
		w.add(`(event = ? OR event LIKE ? ESCAPE '\')`, f.Event, likeEscape(f.Event)+".%")
	}
	if f.Contains != "" {
		w.add(`detail LIKE ? ESCAPE '\'`, "%"+likeEscape(f.Contains)+"%")
	}
	if !f.Since.IsZero() {
		w.add("at >= ?", toMicros(f.Since))
	}
	if !f.Until.IsZero() {
		w.add("at < ?", toMicros(f.Until))
	}
	q := `SELECT id, at, actor, event, device_id, detail FROM audit` + w.String() + ` ORDER BY id`
	if f.NewestFirst {
		q += ` DESC`
	}
	args := w.args
	if f.Limit > 0 {
		q += ` LIMIT ?`
		args = append(args, f.Limit)
	}
	rows, err := s.db.QueryContext(ctx, s.d.rebind(q), args...)
	if err != nil {
		return fmt.Errorf("search audit: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var r AuditRecord
		var at int64
		if err := rows.Scan(&r.ID, &at, &r.Actor, &r.Event, &r.DeviceID, &r.Detail); err != nil {
			return fmt.Errorf("search audit: %w", err)
		}
		r.At = fromMicros(at)
		if err := fn(r); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("search audit: %w", err)
	}
	return nil
}
