package server

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/zmonitor/firmware/internal/central/job"
	"github.com/zmonitor/firmware/internal/central/store"
	"github.com/zmonitor/firmware/internal/proto/failure"
	"github.com/zmonitor/firmware/internal/proto/ident"
	"github.com/zmonitor/firmware/internal/proto/pairing"
	"github.com/zmonitor/firmware/internal/proto/state"
	"github.com/zmonitor/firmware/internal/proto/tabletwire"
)

// checked is a request that passed every check that changes nothing.
type checked struct {
	job    job.Job
	method store.Method
	nonce  []byte // QR path
}

// check validates req without claiming anything. deviceID is the device the
// request names, as far as it could be read (for the record).
func (s *Server) check(ctx context.Context, req tabletwire.PairingRequest) (c checked, deviceID string, err error) {
	if err := ident.CheckLabel(req.Label); err != nil {
		return c, "", refuse(BadRequest, "label: %v", err)
	}
	if req.QR != "" {
		if req.DeviceID != "" || req.Address != "" || req.PairingCode != "" {
			return c, "", refuse(BadRequest, "give either qr, or deviceId, address and pairingCode")
		}
		return s.checkQR(ctx, req)
	}
	if req.DeviceID == "" || req.Address == "" || req.PairingCode == "" {
		return c, req.DeviceID, refuse(BadRequest, "give either qr, or deviceId, address and pairingCode")
	}
	return s.checkManual(ctx, req)
}

func (s *Server) device(ctx context.Context, id string) (store.Device, error) {
	d, err := s.st.Device(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return d, refuse(DeviceUnknown, "device %s is not in the inventory", id)
	case err != nil:
		return d, fmt.Errorf("look up device: %w", err)
	case d.Revoked():
		return d, refuse(DeviceRevoked, "device %s was revoked on %s", id, d.RevokedAt.Format(time.RFC3339))
	}
	return d, nil
}

func (s *Server) checkQR(ctx context.Context, req tabletwire.PairingRequest) (checked, string, error) {
	q, err := pairing.ParseQR([]byte(req.QR))
	if err != nil {
		if errors.Is(err, pairing.ErrTokenMalformed) {
			return checked{}, q.DeviceID, refuse(TokenMalformed, "%v", err)
		}
		return checked{}, "", refuse(QRInvalid, "%v", err)
	}
	d, err := s.device(ctx, q.DeviceID)
	if err != nil {
		return checked{}, q.DeviceID, err
	}
	if q.DeviceSerial != d.Serial {
		return checked{}, q.DeviceID, refuse(QRInvalid, "the QR's serial %s is not the inventory's %s for device %s", q.DeviceSerial, d.Serial, d.ID)
	}
	idKey, err := d.IdentityKey()
	if err != nil {
		return checked{}, q.DeviceID, fmt.Errorf("inventory identity key of %s: %w", d.ID, err)
	}
	nonce, err := pairing.VerifyToken(idKey, q)
	switch {
	case errors.Is(err, pairing.ErrTokenSignature):
		return checked{}, q.DeviceID, refuse(TokenSignatureInvalid, "the pairing token is not signed by the identity key enrolled for %s", d.ID)
	case err != nil:
		return checked{}, q.DeviceID, refuse(TokenMalformed, "%v", err)
	}
	if s.cfg.TrustDeviceClock {
		exp, err := time.Parse(pairing.TimeLayout, q.ExpiresAt)
		if err != nil {
			return checked{}, q.DeviceID, refuse(QRInvalid, "expiresAt: %v", err)
		}
		if now := s.cfg.Clock.Now(); !now.Before(exp) {
			return checked{}, q.DeviceID, refuse(QRExpired, "the QR expired at %s (now %s)", q.ExpiresAt, now.UTC().Format(pairing.TimeLayout))
		}
	}
	label := req.Label
	if label == "" {
		label = d.Label
	}
	return checked{
		job: job.Job{
			DeviceID:    d.ID,
			Address:     s.cfg.DeviceAddr(d.ID, q.IPAddress),
			IdentityKey: idKey,
			Token:       q.PairingToken,
			PairingCode: q.PairingCode,
			Label:       label,
		},
		method: store.MethodQR,
		nonce:  nonce[:],
	}, d.ID, nil
}

func (s *Server) checkManual(ctx context.Context, req tabletwire.PairingRequest) (checked, string, error) {
	if err := ident.CheckDeviceID(req.DeviceID); err != nil {
		return checked{}, "", refuse(DeviceUnknown, "not a device ID: %v", err)
	}
	// The code's syntax first: a typo must not cost the device an attempt.
	code, err := pairing.ParseCode(req.PairingCode)
	if err != nil {
		return checked{}, req.DeviceID, refuse(CodeInvalid, "%s", codeProblem(err))
	}
	addr, err := deviceAddress(req.Address, s.cfg.DevicePort)
	if err != nil {
		return checked{}, req.DeviceID, refuse(AddressInvalid, "%v", err)
	}
	d, err := s.device(ctx, req.DeviceID)
	if err != nil {
		return checked{}, req.DeviceID, err
	}
	idKey, err := d.IdentityKey()
	if err != nil {
		return checked{}, d.ID, fmt.Errorf("inventory identity key of %s: %w", d.ID, err)
	}
	label := req.Label
	if label == "" {
		label = d.Label
	}
	return checked{
		job: job.Job{
			DeviceID:    d.ID,
			Address:     addr,
			IdentityKey: idKey,
			PairingCode: code.Display(),
			Label:       label,
		},
		method: store.MethodManual,
	}, d.ID, nil
}

// codeProblem explains a pairing code syntax error without repeating any of
// the code.
func codeProblem(err error) string {
	switch {
	case errors.Is(err, pairing.ErrCodeLength):
		return "a pairing code has 9 symbols, like ABC-123-DEF"
	case errors.Is(err, pairing.ErrCodeLookAlike):
		return "the letters I, O, Q and Z never appear in a pairing code"
	case errors.Is(err, pairing.ErrCodeCheck):
		return "typo: the last letter does not match the others"
	default:
		return "letters, digits and letters, like ABC-123-DEF"
	}
}

// deviceAddress turns what the technician typed (an IP address, host:port,
// or a host name) into "host:port".
func deviceAddress(s string, defaultPort int) (string, error) {
	if len(s) > 260 {
		return "", errors.New("address too long")
	}
	if a, err := netip.ParseAddr(s); err == nil {
		if a.Zone() != "" || a.IsUnspecified() {
			return "", errors.New("not a device address")
		}
		return net.JoinHostPort(a.String(), strconv.Itoa(defaultPort)), nil
	}
	host, port := s, strconv.Itoa(defaultPort)
	if h, p, err := net.SplitHostPort(s); err == nil {
		host, port = h, p
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || port != strconv.Itoa(n) {
		return "", fmt.Errorf("port %.8q is not a number in 1-65535", port)
	}
	if a, err := netip.ParseAddr(host); err == nil {
		if a.Zone() != "" || a.IsUnspecified() {
			return "", errors.New("not a device address")
		}
		return net.JoinHostPort(a.String(), port), nil
	}
	if !validHostname(host) {
		return "", errors.New("not an IP address or host name")
	}
	return net.JoinHostPort(host, port), nil
}

func validHostname(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			b := label[i]
			if !(b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '-') {
				return false
			}
		}
	}
	return true
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
	if err := s.st.CreatePairing(ctx, p); err != nil {
		s.log.Error("record refused pairing", "pairing", id, "err", err)
	}
	s.audit(ctx, t.ID, "pairing.refused", deviceID, fmt.Sprintf("pairing=%s method=%s code=%s: %s", id, method, re.r, re.msg))
}

func (s *Server) audit(ctx context.Context, actor, event, deviceID, detail string) {
	if err := s.st.Audit(ctx, store.AuditRecord{Actor: actor, Event: event, DeviceID: deviceID, Detail: detail}); err != nil {
		s.log.Error("audit", "event", event, "err", err)
	}
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

func (s *Server) postPairing(w http.ResponseWriter, r *http.Request, t store.Technician) {
	var req tabletwire.PairingRequest
	if err := tabletwire.DecodeRequest(r.Body, tabletwire.MaxPairingRequest, &req); err != nil {
		s.writeRefusal(w, refuse(BadRequest, "%v", err), "")
		return
	}
	id, c, err := s.admit(r.Context(), t, req, "", s.tryAcquire)
	if err != nil {
		var re *refusalError
		if !errors.As(err, &re) {
			id = ""
		}
		s.writeRefusal(w, err, id)
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer func() { <-s.slots }()
		s.run(t, c.job)
	}()
	writeJSON(w, http.StatusAccepted, tabletwire.Accepted{PairingID: id, DeviceID: c.job.DeviceID, State: store.PairingQueued.String()})
}

// run provisions one admitted job and records its progress and outcome.
func (s *Server) run(t store.Technician, j job.Job) {
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.JobTimeout)
	defer cancel()
	// Records are written even when the job was cancelled.
	rec, recCancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer recCancel()
	if err := s.st.UpdatePairing(rec, j.PairingID, store.PairingRunning, "", "connecting"); err != nil {
		s.log.Error("record progress", "pairing", j.PairingID, "err", err)
	}
	certs := &issuedCerts{}
	j.Issued = func(_ context.Context, c *x509.Certificate) error {
		return s.recordIssued(rec, t, j, certs, c)
	}
	out, err := s.provision(ctx, j, func(p job.Progress) {
		if err := s.st.UpdatePairing(rec, j.PairingID, store.PairingRunning, p.State, p.Step); err != nil {
			s.log.Error("record progress", "pairing", j.PairingID, "err", err)
		}
	})
	st, code, detail := outcome(out, err)
	s.settleCertificates(rec, t, j, certs, out, err, st)
	if err := s.st.FinishPairing(rec, j.PairingID, st, code.String(), detail); err != nil {
		s.log.Error("record outcome", "pairing", j.PairingID, "err", err)
	}
	event := "pairing.succeeded"
	if st != store.PairingSucceeded {
		event = "pairing.failed"
	}
	s.audit(rec, t.ID, event, j.DeviceID, fmt.Sprintf("pairing=%s code=%s: %s", j.PairingID, code, detail))
	s.log.Info("pairing finished", "pairing", j.PairingID, "device", j.DeviceID, "state", st, "code", code)
}

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
		s.log.Error("record certificate: it is not delivered", "pairing", j.PairingID, "device", j.DeviceID, "serial", serial, "err", err)
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
				s.log.Error("record certificate in use", "pairing", j.PairingID, "serial", serial, "err", err)
				continue
			}
			s.audit(ctx, t.ID, "certificate.in_use", j.DeviceID, fmt.Sprintf("serial=%s pairing=%s", serial, j.PairingID))
			continue
		}
		if err := s.st.RevokeCertificate(ctx, serial, reason); err != nil {
			s.log.Error("revoke certificate", "pairing", j.PairingID, "serial", serial, "err", err)
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

func view(p store.Pairing) tabletwire.PairingView {
	v := tabletwire.PairingView{
		ID: p.ID, BatchID: p.BatchID, DeviceID: p.DeviceID, Label: p.Label, Method: p.Method.String(), State: p.State.String(),
		Final: p.State.Final(), DeviceState: p.DeviceState, Step: p.Step, StartedAt: p.StartedAt, UpdatedAt: p.UpdatedAt,
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

func (s *Server) getPairing(w http.ResponseWriter, r *http.Request, _ store.Technician) {
	p, err := s.st.Pairing(r.Context(), r.PathValue("id"))
	if errors.Is(err, store.ErrNotFound) {
		s.writeRefusal(w, refuse(NotFound, "no such pairing"), "")
		return
	}
	if err != nil {
		s.writeRefusal(w, err, "")
		return
	}
	writeJSON(w, http.StatusOK, view(p))
}
