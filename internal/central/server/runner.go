package server

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/zmonitor/firmware/internal/central/job"
	"github.com/zmonitor/firmware/internal/central/store"
	"github.com/zmonitor/firmware/internal/proto/failure"
	"github.com/zmonitor/firmware/internal/proto/state"
)

// run provisions one admitted job and records its progress and outcome.
func (s *Server) run(t store.Technician, j job.Job) {
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.JobTimeout)
	defer cancel()
	// Records are written even when the job was cancelled.
	rec, recCancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer recCancel()
	if err := s.st.UpdatePairing(rec, j.PairingID, store.PairingRunning, "", "connecting"); err != nil {
		s.storeError("record progress", err, "pairing", j.PairingID)
	} else {
		s.published(rec, j.PairingID)
	}
	certs := &issuedCerts{}
	j.Issued = func(_ context.Context, c *x509.Certificate) error {
		return s.recordIssued(rec, t, j, certs, c)
	}
	start := time.Now()
	out, err := s.provision(ctx, j, func(p job.Progress) {
		if err := s.st.UpdatePairing(rec, j.PairingID, store.PairingRunning, p.State, p.Step); err != nil {
			s.storeError("record progress", err, "pairing", j.PairingID)
		} else {
			s.published(rec, j.PairingID)
		}
	})
	st, code, detail := outcome(out, err)
	s.metrics.push.WithLabelValues(st.String()).Observe(time.Since(start).Seconds())
	s.metrics.pairings.WithLabelValues(st.String(), code.String()).Inc()
	release := err != nil && out.DeviceUntouched
	if release {
		detail += "; nothing reached the device: its QR code and pairing code were not used up"
	}
	s.settleCertificates(rec, t, j, certs, out, err, st)
	// Streams that read the pairing final in between wait for the settled
	// view (ServeEvents).
	s.hub.settle(j.PairingID, true)
	if err := s.st.FinishPairing(rec, j.PairingID, st, code.String(), detail); err != nil {
		s.storeError("record outcome", err, "pairing", j.PairingID)
	}
	if release {
		s.releaseClaims(rec, t, j)
	}
	s.hub.settle(j.PairingID, false)
	s.published(rec, j.PairingID) // after the claims: the view says whether they were given back
	event := "pairing.succeeded"
	if st != store.PairingSucceeded {
		event = "pairing.failed"
	}
	s.audit(rec, t.ID, event, j.DeviceID, fmt.Sprintf("pairing=%s code=%s: %s", j.PairingID, code, detail))
	s.log.Info("pairing finished", "pairing", j.PairingID, "device", j.DeviceID, "state", st, "code", code)
}

// releaseClaims gives back the token and code of a job whose push never
// reached the device, so that the technician can scan the same QR again
// (one session, one push still holds: nothing was pushed).
func (s *Server) releaseClaims(ctx context.Context, t store.Technician, j job.Job) {
	if err := s.st.ReleaseClaims(ctx, j.PairingID, j.PairingCode); err != nil {
		s.storeError("release claims", err, "pairing", j.PairingID)
		return
	}
	s.audit(ctx, t.ID, "pairing.claims_released", j.DeviceID, "pairing="+j.PairingID+": the push never reached the device; its token and code may be used again")
}

// provision calls the Provisioner, turning a panic into an error.
func (s *Server) provision(ctx context.Context, j job.Job, progress func(job.Progress)) (out job.Outcome, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = failure.Errorf(failure.Internal, "provision", "provisioner panicked: %v", p)
		}
	}()
	return s.prov.Provision(ctx, j, progress)
}

// outcome maps a Provisioner's result to what is recorded.
func outcome(out job.Outcome, err error) (store.PairingState, failure.Code, string) {
	if err != nil {
		return store.PairingFailed, codeOf(err), err.Error()
	}
	if out.State == state.Provisioned.String() && out.Code == failure.None {
		return store.PairingSucceeded, failure.None, out.State
	}
	code := out.Code
	if code == failure.None {
		code = failure.Internal
	}
	detail := out.Message
	if detail == "" {
		detail = "device ended in " + out.State
	}
	return store.PairingFailed, code, detail
}

// codeOf finds the failure code of a Provisioner error.
func codeOf(err error) failure.Code {
	var fe *failure.Error
	if errors.As(err, &fe) {
		return fe.Code
	}
	var coder interface{ Code() failure.Code }
	if errors.As(err, &coder) {
		return coder.Code()
	}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) {
		return failure.ConnectionFailed
	}
	return failure.Internal
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
				release, err := s.slots.acquire(s.ctx)
				if err != nil {
					s.abandon(t, j)
					continue
				}
				func() {
					defer release()
					s.run(t, j)
				}()
			}
		}()
	}
}

// abandon records a queued job that never ran because the server closed.
func (s *Server) abandon(t store.Technician, j job.Job) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const detail = "the Central Station stopped before this device's turn"
	s.metrics.pairings.WithLabelValues(store.PairingFailed.String(), failure.Internal.String()).Inc()
	if err := s.st.FinishPairing(ctx, j.PairingID, store.PairingFailed, failure.Internal.String(), detail); err != nil {
		s.storeError("record abandoned pairing", err, "pairing", j.PairingID)
	}
	s.published(ctx, j.PairingID)
	s.audit(ctx, t.ID, "pairing.failed", j.DeviceID, "pairing="+j.PairingID+": "+detail)
}
