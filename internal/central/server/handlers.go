package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/zmonitor/firmware/internal/central/job"
	"github.com/zmonitor/firmware/internal/central/store"
	"github.com/zmonitor/firmware/internal/proto/tabletwire"
)

// The API's handlers: each decodes its request strictly, and answers with
// tabletwire's types or a refusal (writeRefusal).

// postPairing admits one pairing (it holds an in-flight slot) and runs it in
// the background: 202 with its ID, or a refusal.
func (s *Server) postPairing(w http.ResponseWriter, r *http.Request, t store.Technician) {
	var req tabletwire.PairingRequest
	if err := tabletwire.DecodeRequest(r.Body, tabletwire.MaxPairingRequest, &req); err != nil {
		s.refuseBody(w, r, t, "", err)
		return
	}
	acc, err := s.Pair(r.Context(), t, req)
	if err != nil {
		s.writeRefusal(w, err, acc.PairingID)
		return
	}
	writeJSON(w, http.StatusAccepted, acc)
}

// Pair checks, claims and records one pairing request of t and runs it in
// the background (it holds an in-flight slot). A refusal is a *Refused
// error (see Problem); when it was recorded, the answer's PairingID names
// it.
func (s *Server) Pair(ctx context.Context, t store.Technician, req tabletwire.PairingRequest) (tabletwire.Accepted, error) {
	a, err := s.admit(ctx, t, req, "", true)
	if err != nil {
		var re *refusalError
		if !errors.As(err, &re) {
			return tabletwire.Accepted{}, err
		}
		return tabletwire.Accepted{PairingID: a.id, DeviceID: a.job.DeviceID, State: store.PairingRefused.String()}, err
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer a.release()
		s.run(t, a.job)
	}()
	return tabletwire.Accepted{PairingID: a.id, DeviceID: a.job.DeviceID, State: store.PairingQueued.String()}, nil
}

// refuseBody refuses a request body that is not a request (BAD_REQUEST)
// and records the refusal, as every refusal after authentication is.
func (s *Server) refuseBody(w http.ResponseWriter, r *http.Request, t store.Technician, what string, cause error) {
	re := refuse(BadRequest, "%s%v", what, cause)
	id, err := s.newID(pairingIDPrefix)
	if err != nil {
		s.writeRefusal(w, err, "")
		return
	}
	s.recordRefusal(r.Context(), t, id, "", "", 0, re)
	s.writeRefusal(w, re, id)
}

// getPairing answers the view of one pairing, from the store, so that any
// replica can answer. A technician sees their own pairings only.
func (s *Server) getPairing(w http.ResponseWriter, r *http.Request, t store.Technician) {
	p, err := s.PairingFor(r.Context(), t, r.PathValue("id"))
	if err != nil {
		s.writeRefusal(w, err, "")
		return
	}
	writeJSON(w, http.StatusOK, pairingView(p))
}

// postBatch admits every item of a batch (without slots: its workers take
// them as each job starts) and runs the admitted ones (startBatch): 202
// with a result per item.
func (s *Server) postBatch(w http.ResponseWriter, r *http.Request, t store.Technician) {
	var req tabletwire.BatchRequest
	if err := tabletwire.DecodeRequest(r.Body, tabletwire.MaxBatchRequest, &req); err != nil {
		s.refuseBody(w, r, t, "batch: ", err)
		return
	}
	if len(req.Items) == 0 || len(req.Items) > s.cfg.MaxBatch {
		s.refuseBody(w, r, t, "batch: ", fmt.Errorf("a batch has 1 to %d items, not %d", s.cfg.MaxBatch, len(req.Items)))
		return
	}
	ctx := r.Context()
	batchID, err := s.newID(batchIDPrefix)
	if err != nil {
		s.writeRefusal(w, err, "")
		return
	}
	if err := s.st.CreateBatch(ctx, store.Batch{ID: batchID, TechnicianID: t.ID, Size: len(req.Items)}); err != nil {
		s.writeRefusal(w, err, "")
		return
	}
	s.audit(ctx, t.ID, "batch.created", "", batchID)
	res := tabletwire.BatchAccepted{BatchID: batchID, Items: make([]tabletwire.BatchItemResult, len(req.Items))}
	var jobs []job.Job
	for i, item := range req.Items {
		a, err := s.admit(ctx, t, item, batchID, false)
		it := tabletwire.BatchItemResult{Index: i, PairingID: a.id, DeviceID: a.job.DeviceID, State: store.PairingQueued.String()}
		if err != nil {
			var re *refusalError
			if !errors.As(err, &re) {
				s.log.Error("batch item", "batch", batchID, "index", i, "err", err)
				re = refuse(Internal, "internal error")
			}
			b := errorBody(re.r, re.msg)
			it.State, it.Error = store.PairingRefused.String(), &b
		} else {
			jobs = append(jobs, a.job)
		}
		res.Items[i] = it
	}
	s.startBatch(t, jobs)
	writeJSON(w, http.StatusAccepted, res)
}

// getBatch answers the view of one batch and its pairings.
func (s *Server) getBatch(w http.ResponseWriter, r *http.Request, _ store.Technician) {
	id := r.PathValue("id")
	if !validID(batchIDPrefix, id) {
		s.writeRefusal(w, refuse(NotFound, "no such batch: not a batch ID"), "")
		return
	}
	b, ps, err := s.st.Batch(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		s.writeRefusal(w, refuse(NotFound, "no such batch"), "")
		return
	}
	if err != nil {
		s.writeRefusal(w, err, "")
		return
	}
	writeJSON(w, http.StatusOK, batchView(b, ps))
}

// writeJSON answers v as JSON, never cached.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v) //nolint:errcheck // the client went away
}

// writeRefusal answers a refusal; any other error is logged and answered
// as Internal, without its text.
func (s *Server) writeRefusal(w http.ResponseWriter, err error, pairingID string) {
	var re *refusalError
	if !errors.As(err, &re) {
		s.storeError("request", err)
		re = refuse(Internal, "internal error")
	}
	writeJSON(w, re.r.HTTPStatus(), tabletwire.ErrorResponse{Error: errorBody(re.r, re.msg), PairingID: pairingID})
}

// Problem is what a refusal (or any other error) says to the tablet, and
// its HTTP status: an error that is not a refusal is Internal, its text
// logged and not shown.
func (s *Server) Problem(err error) (tabletwire.ErrorBody, int) {
	var re *refusalError
	if !errors.As(err, &re) {
		s.log.Error("internal error", "err", err)
		re = refuse(Internal, "internal error")
	}
	return errorBody(re.r, re.msg), re.r.HTTPStatus()
}

// View is the wire view of a pairing.
func View(p store.Pairing) tabletwire.PairingView { return pairingView(p) }

// Describe gives the title and action of a result or refusal code, as the
// views do (nil for success).
func Describe(code, msg string) *tabletwire.ErrorBody { return describe(code, msg) }
