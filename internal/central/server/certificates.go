package server

import (
	"context"
	"crypto/x509"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/zmonitor/firmware/internal/central/job"
	"github.com/zmonitor/firmware/internal/central/store"
	"github.com/zmonitor/firmware/internal/proto/failure"
)

// issuedCerts are the serials of the certificates recorded for one job.
type issuedCerts struct {
	mu      sync.Mutex
	serials []string
}

func (c *issuedCerts) add(serial string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.serials = append(c.serials, serial)
}

func (c *issuedCerts) list() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.serials...)
}

// recordIssued records a certificate the Provisioner just issued for j,
// before it is delivered. An error stops the Provisioner from delivering
// it.
func (s *Server) recordIssued(ctx context.Context, t store.Technician, j job.Job, certs *issuedCerts, c *x509.Certificate) error {
	serial := store.CertificateSerial(c)
	if err := s.st.RecordCertificate(ctx, j.DeviceID, j.PairingID, c.Raw); err != nil {
		s.storeError("record certificate (not delivered)", err, "pairing", j.PairingID, "device", j.DeviceID, "serial", serial)
		return fmt.Errorf("record certificate: %w", err)
	}
	certs.add(serial)
	s.audit(ctx, t.ID, "certificate.issued", j.DeviceID, fmt.Sprintf("serial=%s pairing=%s notBefore=%s notAfter=%s",
		serial, j.PairingID, c.NotBefore.UTC().Format(time.RFC3339), c.NotAfter.UTC().Format(time.RFC3339)))
	return nil
}

// settleCertificates records the fate of every certificate issued for j:
// in use when the pairing succeeded, revoked otherwise. A certificate the
// Provisioner reported only in its Outcome (it did not call Job.Issued) is
// recorded first.
func (s *Server) settleCertificates(ctx context.Context, t store.Technician, j job.Job, certs *issuedCerts, out job.Outcome, err error, st store.PairingState) {
	if len(out.CertificateDER) > 0 {
		c, perr := x509.ParseCertificate(out.CertificateDER)
		switch {
		case perr != nil:
			s.log.Error("certificate reported by the provisioner is unreadable", "pairing", j.PairingID, "err", perr)
		case !slices.Contains(certs.list(), store.CertificateSerial(c)):
			if rerr := s.recordIssued(ctx, t, j, certs, c); rerr != nil {
				s.audit(ctx, t.ID, "certificate.unrecorded", j.DeviceID, fmt.Sprintf("serial=%s pairing=%s: %v", store.CertificateSerial(c), j.PairingID, rerr))
			}
		}
	}
	reason := revocationReason(out, err)
	for _, serial := range certs.list() {
		if st == store.PairingSucceeded {
			if err := s.st.MarkCertificateInUse(ctx, serial); err != nil {
				s.storeError("record certificate in use", err, "pairing", j.PairingID, "serial", serial)
				continue
			}
			s.audit(ctx, t.ID, "certificate.in_use", j.DeviceID, fmt.Sprintf("serial=%s pairing=%s", serial, j.PairingID))
			continue
		}
		if err := s.st.RevokeCertificate(ctx, serial, reason); err != nil {
			s.storeError("revoke certificate", err, "pairing", j.PairingID, "serial", serial)
			continue
		}
		s.audit(ctx, t.ID, "certificate.revoked", j.DeviceID, fmt.Sprintf("serial=%s pairing=%s reason=%s", serial, j.PairingID, reason))
	}
}

// revocationReason says why the certificate of a failed pairing is not in
// use: the Provisioner's Fate, or, when it gave none, what the result
// shows (an error: the push did not complete; a final failed state: the
// device refused, or failed its connection test).
func revocationReason(out job.Outcome, err error) store.RevocationReason {
	switch out.Fate {
	case job.DeviceRefused:
		return store.ReasonDeviceRefused
	case job.ConnectionTestFailed:
		return store.ReasonConnectionTestFailed
	case job.NotDelivered, job.InUse:
		return store.ReasonNotDelivered
	}
	switch {
	case err != nil:
		return store.ReasonNotDelivered
	case out.Code == failure.ConnectionFailed:
		return store.ReasonConnectionTestFailed
	}
	return store.ReasonDeviceRefused
}
