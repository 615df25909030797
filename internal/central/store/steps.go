package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// PairingStep is one recorded change of a pairing: its creation, each
// progress report and its end, with the time the Central Station wrote
// it. The operator's timeline of a pairing is its steps.
type PairingStep struct {
	At          time.Time
	State       PairingState
	DeviceState string // the state the device reported with this change, if any
	Step        string // the Central Station's step ("connecting", "push"), if any
	ResultCode  string // the failure code at the end, if any
}

// txExec is exec inside a transaction.
func (s *sqlStore) txExec(ctx context.Context, tx *sql.Tx, q string, args ...any) (sql.Result, error) {
	if err := checkArgs(args); err != nil {
		return nil, err
	}
	return tx.ExecContext(ctx, s.d.rebind(q), args...)
}

// recordStep writes one change of pairing id, in the change's
// transaction.
func (s *sqlStore) recordStep(ctx context.Context, tx *sql.Tx, id string, at int64, state PairingState, deviceState, step, code string) error {
	_, err := s.txExec(ctx, tx, `INSERT INTO pairing_steps (pairing_id, at, state, device_state, step, result_code) VALUES (?, ?, ?, ?, ?, ?)`,
		id, at, state.String(), cleanText(deviceState), cleanText(step), cleanText(code))
	if err != nil {
		return fmt.Errorf("record step: %w", err)
	}
	return nil
}

// PairingSteps returns the recorded changes of pairing id, oldest first.
func (s *sqlStore) PairingSteps(ctx context.Context, id string) ([]PairingStep, error) {
	if err := lookupKey("pairing", id); err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, s.d.rebind(`SELECT at, state, device_state, step, result_code FROM pairing_steps WHERE pairing_id = ? ORDER BY id`), id)
	if err != nil {
		return nil, fmt.Errorf("steps of pairing %q: %w", id, err)
	}
	defer rows.Close()
	var out []PairingStep
	for rows.Next() {
		var (
			at    int64
			state string
			st    PairingStep
		)
		if err := rows.Scan(&at, &state, &st.DeviceState, &st.Step, &st.ResultCode); err != nil {
			return nil, fmt.Errorf("steps of pairing %q: %w", id, err)
		}
		if st.State, err = ParsePairingState(state); err != nil {
			return nil, fmt.Errorf("steps of pairing %q: %w", id, err)
		}
		st.At = fromMicros(at)
		out = append(out, st)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("steps of pairing %q: %w", id, err)
	}
	return out, nil
}
