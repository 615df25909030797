package server

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/zmonitor/firmware/internal/central/job"
	"github.com/zmonitor/firmware/internal/central/store"
	"github.com/zmonitor/firmware/internal/proto/failure"
	"github.com/zmonitor/firmware/internal/proto/tabletwire"
)

func (s *Server) postBatch(w http.ResponseWriter, r *http.Request, t store.Technician) {
	var req tabletwire.BatchRequest
	if err := tabletwire.DecodeRequest(r.Body, tabletwire.MaxBatchRequest, &req); err != nil {
		s.writeRefusal(w, refuse(BadRequest, "%v", err), "")
		return
	}
	if len(req.Items) == 0 || len(req.Items) > s.cfg.MaxBatch {
		s.writeRefusal(w, refuse(BadRequest, "a batch has 1 to %d items, not %d", s.cfg.MaxBatch, len(req.Items)), "")
		return
	}
	ctx := r.Context()
	batchID, err := s.newID("b-")
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
		id, c, err := s.admit(ctx, t, item, batchID, nil)
		it := tabletwire.BatchItemResult{Index: i, PairingID: id, DeviceID: c.job.DeviceID, State: store.PairingQueued.String()}
		if err != nil {
			var re *refusalError
			if !errors.As(err, &re) {
				s.log.Error("batch item", "batch", batchID, "index", i, "err", err)
				re = refuse(Internal, "internal error")
			}
			b := errorBody(re.r, re.msg)
			it.State, it.Error = store.PairingRefused.String(), &b
		} else {
			jobs = append(jobs, c.job)
		}
		res.Items[i] = it
	}
	s.startBatch(t, jobs)
	writeJSON(w, http.StatusAccepted, res)
}

// startBatch runs jobs at most BatchConcurrency at a time, each also holding
// one of the MaxInFlight slots.
func (s *Server) startBatch(t store.Technician, jobs []job.Job) {
	if len(jobs) == 0 {
		return
	}
	queue := make(chan job.Job, len(jobs))
	for _, j := range jobs {
		queue <- j
	}
	close(queue)
	workers := min(s.cfg.BatchConcurrency, len(jobs))
	s.wg.Add(workers)
	for range workers {
		go func() {
			defer s.wg.Done()
			for j := range queue {
				select {
				case s.slots <- struct{}{}:
				case <-s.ctx.Done():
					s.abandon(t, j)
					continue
				}
				s.run(t, j)
				<-s.slots
			}
		}()
	}
}

// abandon records a queued job that never ran because the server closed.
func (s *Server) abandon(t store.Technician, j job.Job) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const detail = "the Central Station stopped before this device's turn"
	if err := s.st.FinishPairing(ctx, j.PairingID, store.PairingFailed, failure.Internal.String(), detail); err != nil {
		s.log.Error("record abandoned pairing", "pairing", j.PairingID, "err", err)
	}
	s.audit(ctx, t.ID, "pairing.failed", j.DeviceID, "pairing="+j.PairingID+": "+detail)
}

func (s *Server) getBatch(w http.ResponseWriter, r *http.Request, _ store.Technician) {
	b, ps, err := s.st.Batch(r.Context(), r.PathValue("id"))
	if errors.Is(err, store.ErrNotFound) {
		s.writeRefusal(w, refuse(NotFound, "no such batch"), "")
		return
	}
	if err != nil {
		s.writeRefusal(w, err, "")
		return
	}
	v := tabletwire.BatchView{ID: b.ID, Size: b.Size, CreatedAt: b.CreatedAt, Counts: map[string]int{}, Done: true, Pairings: make([]tabletwire.PairingView, 0, len(ps))}
	for _, p := range ps {
		v.Counts[p.State.String()]++
		v.Done = v.Done && p.State.Final()
		v.Pairings = append(v.Pairings, view(p))
	}
	writeJSON(w, http.StatusOK, v)
}
