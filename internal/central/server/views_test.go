package server

import (
	"testing"

	"github.com/zmonitor/firmware/internal/central/store"
	"github.com/zmonitor/firmware/internal/proto/failure"
	"github.com/zmonitor/firmware/internal/proto/tabletwire"
)

// TestViewsSpeakTheWire: every state the store records is one the tablet
// client accepts (tabletwire.PairingView.Check), with the finality it
// expects, and a batch is done exactly when all its pairings are final.
func TestViewsSpeakTheWire(t *testing.T) {
	want := map[store.PairingState]string{
		store.PairingQueued:    tabletwire.StateQueued,
		store.PairingRunning:   tabletwire.StateRunning,
		store.PairingSucceeded: tabletwire.StateSucceeded,
		store.PairingFailed:    tabletwire.StateFailed,
		store.PairingRefused:   tabletwire.StateRefused,
	}
	var all []store.Pairing
	for st := store.PairingState(0); st <= store.PairingRefused+1; st++ {
		name, known := want[st]
		v := pairingView(store.Pairing{ID: "p-1", State: st, ResultCode: failure.ConnectionFailed.String(), FinishedAt: t0})
		if err := v.Check(); (err == nil) != known || known && v.State != name {
			t.Errorf("store state %d: view state %q, Check = %v", st, v.State, err)
		}
		if (v.Result != nil) != (st == store.PairingFailed || st == store.PairingRefused) {
			t.Errorf("store state %s: result %+v", st, v.Result)
		}
		if known {
			all = append(all, store.Pairing{State: st})
		}
	}
	bv := batchView(store.Batch{ID: "b-1", Size: len(all)}, all)
	if bv.Done || len(bv.Pairings) != len(all) || bv.Counts[tabletwire.StateQueued] != 1 || bv.Counts[tabletwire.StateSucceeded] != 1 {
		t.Errorf("batch with queued and running pairings = %+v", bv)
	}
	if bv := batchView(store.Batch{ID: "b-1", Size: 2}, all[2:]); !bv.Done {
		t.Errorf("batch of final pairings not done: %+v", bv.Counts)
	}
}
