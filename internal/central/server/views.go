package server

import (
	"github.com/zmonitor/firmware/internal/central/store"
	"github.com/zmonitor/firmware/internal/proto/failure"
	"github.com/zmonitor/firmware/internal/proto/tabletwire"
)

// errorBody is the wire form of a refusal.
func errorBody(r Refusal, msg string) tabletwire.ErrorBody {
	return tabletwire.ErrorBody{Code: r.String(), Title: r.Title(), Action: r.UserAction(), Message: msg}
}

// describe gives the title and action of a recorded result code.
func describe(code, msg string) *tabletwire.ErrorBody {
	if c, err := failure.Parse(code); err == nil {
		if c == failure.None {
			return nil
		}
		return &tabletwire.ErrorBody{Code: code, Title: c.Title(), Action: c.UserAction(), Message: msg}
	}
	for r := Unauthorized; r < refusalCount; r++ {
		if r.String() == code {
			b := errorBody(r, msg)
			return &b
		}
	}
	return &tabletwire.ErrorBody{Code: code, Title: "Error", Action: "Contact IT support", Message: msg}
}

// pairingView is what GET /v1/pairings/{id} answers for p. The state names
// are the store's (store.PairingState.String), which TestViewsSpeakTheWire
// checks against tabletwire's.
func pairingView(p store.Pairing) tabletwire.PairingView {
	v := tabletwire.PairingView{
		ID: p.ID, BatchID: p.BatchID, DeviceID: p.DeviceID, Label: p.Label, Method: p.Method.String(), State: p.State.String(),
		Final: p.State.Final(), DeviceState: p.DeviceState, Step: p.Step, StartedAt: p.StartedAt, UpdatedAt: p.UpdatedAt,
		ClaimsReleased: p.ClaimsReleased,
	}
	if !p.FinishedAt.IsZero() {
		f := p.FinishedAt
		v.FinishedAt = &f
	}
	if p.State == store.PairingFailed || p.State == store.PairingRefused {
		v.Result = describe(p.ResultCode, p.Detail)
	}
	return v
}

// batchView is what GET /v1/batches/{id} answers for b and its pairings.
func batchView(b store.Batch, ps []store.Pairing) tabletwire.BatchView {
	v := tabletwire.BatchView{ID: b.ID, Size: b.Size, CreatedAt: b.CreatedAt, Counts: map[string]int{}, Done: true, Pairings: make([]tabletwire.PairingView, 0, len(ps))}
	for _, p := range ps {
		v.Counts[p.State.String()]++
		v.Done = v.Done && p.State.Final()
		v.Pairings = append(v.Pairings, pairingView(p))
	}
	return v
}
