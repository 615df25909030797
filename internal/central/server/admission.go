package server

import (
	"context"
	"errors"
	"fmt"

	"github.com/zmonitor/firmware/internal/central/job"
	"github.com/zmonitor/firmware/internal/central/store"
	"github.com/zmonitor/firmware/internal/proto/ident"
	"github.com/zmonitor/firmware/internal/proto/tabletwire"
)

// admission is what admit made of a request.
type admission struct {
	// id is the pairing's ID; it is set on a refusal too when the refusal
	// was recorded under it.
	id string
	// job is the job to run, as far as the checks got.
	job job.Job
	// release gives back the in-flight slot admit took for the job (a
	// no-op when it took none, or when the request was not admitted: admit
	// gave it back itself).
	release func()
}

// admit checks and claims one request and records it as queued. With
// holdSlot, admit takes an in-flight slot (slots.tryAcquire) before
// anything is claimed, refusing with Busy when there is none, so a busy
// server burns no token; the slot then goes with the admitted job, and
// back to the pool on every path where the request is not admitted. A batch
// admits without a slot: its workers take one as each job starts.
func (s *Server) admit(ctx context.Context, t store.Technician, req tabletwire.PairingRequest, batchID string, holdSlot bool) (a admission, err error) {
	a.release = func() {}
	if a.id, err = s.newID(pairingIDPrefix); err != nil {
		return admission{release: a.release}, err
	}
	c, deviceID, err := s.check(ctx, req)
	a.job = c.job
	if err == nil && holdSlot {
		var ok bool
		if a.release, ok = s.slots.tryAcquire(); !ok {
			err = refuse(Busy, "%d provisionings in flight", s.slots.size())
		}
	}
	defer func() {
		if err != nil {
			a.release()
		}
	}()
	if err == nil {
		err = s.claim(ctx, c)
	}
	if err != nil {
		s.recordRefusal(ctx, t, a.id, batchID, deviceID, methodOf(req), err)
		return a, err
	}
	a.job.PairingID = a.id
	p := store.Pairing{ID: a.id, BatchID: batchID, DeviceID: c.job.DeviceID, TechnicianID: t.ID, Method: c.method,
		State: store.PairingQueued, TokenNonce: c.nonce, Label: c.job.Label}
	if err = s.st.CreatePairing(ctx, p); err != nil {
		return a, fmt.Errorf("record pairing: %w", err)
	}
	s.audit(ctx, t.ID, "pairing.accepted", c.job.DeviceID, fmt.Sprintf("pairing=%s method=%s address=%s", a.id, c.method, c.job.Address))
	return a, nil
}

// claim makes the request's token and code used, in the database.
func (s *Server) claim(ctx context.Context, c checked) error {
	if c.method == store.MethodQR {
		err := s.st.ClaimToken(ctx, c.job.DeviceID, c.nonce)
		if errors.Is(err, store.ErrAlreadyUsed) {
			return refuse(TokenAlreadyUsed, "this QR code was already used for %s: scan the one on the screen now", c.job.DeviceID)
		}
		if err != nil {
			return fmt.Errorf("claim token: %w", err)
		}
	}
	err := s.st.ClaimCode(ctx, c.job.DeviceID, c.job.PairingCode)
	if errors.Is(err, store.ErrAlreadyUsed) {
		return refuse(CodeAlreadyUsed, "this pairing code was already used for %s", c.job.DeviceID)
	}
	if err != nil {
		return fmt.Errorf("claim pairing code: %w", err)
	}
	return nil
}

// recordRefusal writes a refused attempt and its audit record. Internal
// errors are only logged.
func (s *Server) recordRefusal(ctx context.Context, t store.Technician, id, batchID, deviceID string, method store.Method, err error) {
	var re *refusalError
	if !errors.As(err, &re) {
		return
	}
	if method == 0 {
		method = store.MethodQR
	}
	if ident.CheckDeviceID(deviceID) != nil {
		deviceID = "" // what the request named is not a device ID: keep it out of the records
	}
	p := store.Pairing{ID: id, BatchID: batchID, DeviceID: deviceID, TechnicianID: t.ID, Method: method,
		State: store.PairingRefused, ResultCode: re.r.String(), Detail: re.msg}
	s.metrics.pairings.WithLabelValues(store.PairingRefused.String(), re.r.String()).Inc()
	if err := s.st.CreatePairing(ctx, p); err != nil {
		s.storeError("record refused pairing", err, "pairing", id)
	}
	s.audit(ctx, t.ID, "pairing.refused", deviceID, fmt.Sprintf("pairing=%s method=%s code=%s: %s", id, method, re.r, re.msg))
}

func methodOf(req tabletwire.PairingRequest) store.Method {
	if req.QR != "" {
		return store.MethodQR
	}
	return store.MethodManual
}
