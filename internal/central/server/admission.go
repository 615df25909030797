package server

import (
	"context"
	"errors"
	"fmt"

	"github.com/zmonitor/firmware/internal/central/store"
	"github.com/zmonitor/firmware/internal/proto/ident"
	"github.com/zmonitor/firmware/internal/proto/tabletwire"
)

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
	if err := s.st.CreatePairing(ctx, p); err != nil {
		s.log.Error("record refused pairing", "pairing", id, "err", err)
	}
	s.audit(ctx, t.ID, "pairing.refused", deviceID, fmt.Sprintf("pairing=%s method=%s code=%s: %s", id, method, re.r, re.msg))
}

func methodOf(req tabletwire.PairingRequest) store.Method {
	if req.QR != "" {
		return store.MethodQR
	}
	return store.MethodManual
}

// admit checks and claims one request and records it as queued. With a
// non-nil acquire, admit takes an in-flight slot with it (refusing with Busy
// when there is none) before anything is claimed, so a busy server burns no
// token; a batch passes nil and its workers take slots as jobs start.
func (s *Server) admit(ctx context.Context, t store.Technician, req tabletwire.PairingRequest, batchID string, acquire func() bool) (id string, c checked, err error) {
	id, err = s.newID("p-")
	if err != nil {
		return "", c, err
	}
	c, deviceID, err := s.check(ctx, req)
	if err == nil && acquire != nil && !acquire() {
		err = refuse(Busy, "%d provisionings in flight", s.cfg.MaxInFlight)
	}
	if err == nil {
		if err = s.claim(ctx, c); err != nil && acquire != nil {
			<-s.slots
		}
	}
	if err != nil {
		s.recordRefusal(ctx, t, id, batchID, deviceID, methodOf(req), err)
		return id, c, err
	}
	c.job.PairingID = id
	p := store.Pairing{ID: id, BatchID: batchID, DeviceID: c.job.DeviceID, TechnicianID: t.ID, Method: c.method,
		State: store.PairingQueued, TokenNonce: c.nonce, Label: c.job.Label}
	if err := s.st.CreatePairing(ctx, p); err != nil {
		if acquire != nil {
			<-s.slots
		}
		return id, c, fmt.Errorf("record pairing: %w", err)
	}
	s.audit(ctx, t.ID, "pairing.accepted", c.job.DeviceID, fmt.Sprintf("pairing=%s method=%s address=%s", id, c.method, c.job.Address))
	return id, c, nil
}

func (s *Server) tryAcquire() bool {
	select {
	case s.slots <- struct{}{}:
		return true
	default:
		return false
	}
}
