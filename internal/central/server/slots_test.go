package server

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"testing/synctest"

	"github.com/zmonitor/firmware/internal/central/job"
	"github.com/zmonitor/firmware/internal/central/store"
	"github.com/zmonitor/firmware/internal/proto/failure"
	"github.com/zmonitor/firmware/internal/proto/state"
	"github.com/zmonitor/firmware/internal/proto/tabletwire"
)

func TestSlotsTryAcquire(t *testing.T) {
	s := newSlots(2)
	r1, ok1 := s.tryAcquire()
	r2, ok2 := s.tryAcquire()
	if !ok1 || !ok2 || s.inUse() != 2 {
		t.Fatalf("two slots of two: %v %v, in use %d", ok1, ok2, s.inUse())
	}
	r3, ok3 := s.tryAcquire()
	if ok3 || r3 == nil {
		t.Fatalf("a third slot of two: ok %v, release %p", ok3, r3)
	}
	r3() // the release of a refused acquire gives nothing back
	if s.inUse() != 2 {
		t.Fatalf("a refused acquire's release freed a slot: in use %d", s.inUse())
	}
	r1()
	r1() // twice: only the first gives the slot back
	if s.inUse() != 1 {
		t.Fatalf("released one slot twice: in use %d, want 1", s.inUse())
	}
	if _, ok := s.tryAcquire(); !ok {
		t.Fatal("no slot after a release")
	}
	r2()
	if s.inUse() != 1 {
		t.Fatalf("in use %d, want 1", s.inUse())
	}
}

// TestSlotsAcquireWaits: a batch worker waits for a slot and gets the one
// released; the bubble's clock never moves, so nothing here is timed.
func TestSlotsAcquireWaits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSlots(1)
		held, _ := s.tryAcquire()
		got := make(chan error, 1)
		go func() {
			release, err := s.acquire(context.Background())
			got <- err
			if err == nil {
				release()
			}
		}()
		synctest.Wait()
		select {
		case err := <-got:
			t.Fatalf("acquire returned (%v) while the only slot was held", err)
		default:
		}
		held()
		if err := <-got; err != nil {
			t.Fatalf("acquire after a release: %v", err)
		}
		synctest.Wait()
		if s.inUse() != 0 {
			t.Errorf("in use %d after every release", s.inUse())
		}
	})
}

// TestSlotsAcquireCancelled: a done context takes no slot, whether it was
// done before (even with a slot free) or while waiting.
func TestSlotsAcquireCancelled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSlots(1)
		done, cancel := context.WithCancel(context.Background())
		cancel()
		release, err := s.acquire(done)
		if !errors.Is(err, context.Canceled) || s.inUse() != 0 {
			t.Fatalf("acquire with a done context and a free slot: %v, in use %d", err, s.inUse())
		}
		release()

		held, _ := s.tryAcquire()
		ctx, cancel := context.WithCancel(context.Background())
		got := make(chan error, 1)
		go func() {
			release, err := s.acquire(ctx)
			release() // a no-op after a failed acquire
			got <- err
		}()
		synctest.Wait()
		cancel()
		if err := <-got; !errors.Is(err, context.Canceled) {
			t.Fatalf("acquire cancelled while waiting: %v", err)
		}
		if s.inUse() != 1 {
			t.Fatalf("in use %d, want 1 (the holder's)", s.inUse())
		}
		held()
		if s.inUse() != 0 {
			t.Errorf("in use %d after every release", s.inUse())
		}
	})
}

// failingStore fails the step it is told to, with the error it is given.
type failingStore struct {
	store.Store
	claimCode     error // ClaimCode fails with it
	createQueued  error // CreatePairing of a queued pairing fails with it
	createRefused bool  // CreatePairing of a refusal fails too
}

func (f *failingStore) ClaimCode(ctx context.Context, deviceID, code string) error {
	if f.claimCode != nil {
		return f.claimCode
	}
	return f.Store.ClaimCode(ctx, deviceID, code)
}

func (f *failingStore) CreatePairing(ctx context.Context, p store.Pairing) error {
	if p.State == store.PairingQueued && f.createQueued != nil || p.State == store.PairingRefused && f.createRefused {
		return errors.New("disk full")
	}
	return f.Store.CreatePairing(ctx, p)
}

// TestEveryPathReleasesItsSlot takes every way a pairing can end, with one
// in-flight slot: after each, the slot is free again (and the next request
// is admitted, not refused as Busy).
func TestEveryPathReleasesItsSlot(t *testing.T) {
	ok := func(job.Job) (job.Outcome, error) { return job.Outcome{State: state.Provisioned.String()}, nil }
	cases := []struct {
		name   string
		result func(job.Job) (job.Outcome, error)
		store  *failingStore
		status int // of the POST
	}{
		{name: "provisioned", result: ok, status: http.StatusAccepted},
		{name: "push fails", status: http.StatusAccepted, result: func(job.Job) (job.Outcome, error) {
			return job.Outcome{}, failure.New(failure.ConnectionFailed, "push", errors.New("connection reset"))
		}},
		{name: "device refuses", status: http.StatusAccepted, result: func(job.Job) (job.Outcome, error) {
			return job.Outcome{State: state.ProvisioningFailed.String(), Code: failure.PairingCodeMismatch}, nil
		}},
		{name: "provisioner panics", status: http.StatusAccepted, result: func(job.Job) (job.Outcome, error) { panic("bug") }},
		{name: "claim fails", result: ok, store: &failingStore{claimCode: errors.New("database gone")}, status: http.StatusInternalServerError},
		{name: "claim cancelled", result: ok, store: &failingStore{claimCode: context.Canceled}, status: http.StatusInternalServerError},
		{name: "code already used", result: ok, store: &failingStore{claimCode: store.ErrAlreadyUsed}, status: http.StatusConflict},
		{name: "queued pairing not recorded", result: ok, store: &failingStore{createQueued: errors.New("disk full")}, status: http.StatusInternalServerError},
		{name: "nothing recorded", result: ok, store: &failingStore{createQueued: errors.New("disk full"), createRefused: true}, status: http.StatusInternalServerError},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fs := c.store
			e := newEnv(t, &fakeProv{result: c.result}, func(cfg *Config) {
				cfg.MaxInFlight = 1
				if fs != nil {
					fs.Store = cfg.Store
					cfg.Store = fs
				}
			})
			d := e.enroll("ZM-001")
			w := e.do(http.MethodPost, "/v1/pairings", e.token, tabletwire.PairingRequest{QR: d.qr(t, t0)})
			if w.Code != c.status {
				t.Fatalf("POST: %d %s, want %d", w.Code, w.Body, c.status)
			}
			e.srv.Wait()
			if n := e.srv.slots.inUse(); n != 0 {
				t.Fatalf("%d slot(s) still in use", n)
			}
			if fs != nil {
				*fs = failingStore{Store: fs.Store}
			}
			if w := e.do(http.MethodPost, "/v1/pairings", e.token, tabletwire.PairingRequest{QR: d.qr(t, t0)}); w.Code != http.StatusAccepted {
				t.Errorf("the next pairing: %d %s", w.Code, w.Body)
			}
			e.srv.Wait()
		})
	}
}

// TestCancelledJobsReleaseTheirSlots: jobs cut short by Close, running or
// still queued in a batch, give their slots back.
func TestCancelledJobsReleaseTheirSlots(t *testing.T) {
	prov := &fakeProv{gate: make(chan struct{}), entered: make(chan string, 8)}
	e := newEnv(t, prov, func(c *Config) { c.MaxInFlight = 2; c.BatchConcurrency = 2 })
	a, b, c := e.enroll("ZM-001"), e.enroll("ZM-002"), e.enroll("ZM-003")
	if w := e.do(http.MethodPost, "/v1/pairings", e.token, tabletwire.PairingRequest{QR: a.qr(t, t0)}); w.Code != http.StatusAccepted {
		t.Fatalf("single: %d %s", w.Code, w.Body)
	}
	<-prov.entered
	// The batch's first job takes the last slot; the second waits for one.
	w := e.do(http.MethodPost, "/v1/batches", e.token, tabletwire.BatchRequest{Items: []tabletwire.PairingRequest{{QR: b.qr(t, t0)}, {QR: c.qr(t, t0)}}})
	if w.Code != http.StatusAccepted {
		t.Fatalf("batch: %d %s", w.Code, w.Body)
	}
	<-prov.entered
	if n := e.srv.slots.inUse(); n != 2 {
		t.Fatalf("%d slots in use, want 2", n)
	}
	e.srv.Close() // cancels both running jobs; the queued one is abandoned
	if n := e.srv.slots.inUse(); n != 0 {
		t.Errorf("%d slot(s) still in use after Close", n)
	}
	if n := prov.callCount(); n != 2 {
		t.Errorf("the provisioner ran %d times, want 2 (the third job never started)", n)
	}
	bv := decode[tabletwire.BatchView](t, e.do(http.MethodGet, "/v1/batches/"+decode[tabletwire.BatchAccepted](t, w).BatchID, e.token, nil))
	if !bv.Done || bv.Counts["failed"] != 2 {
		t.Errorf("batch after Close = %+v", bv.Counts)
	}
}
