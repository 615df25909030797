package estserver

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/zmonitor/firmware/internal/central/ca"
	"github.com/zmonitor/firmware/internal/central/store"
	"github.com/zmonitor/firmware/internal/proto/est"
)

// Problem types of the refusals (RFC 9457 "type").
const (
	ProblemCertificateRequired = "urn:zmonitor:problem:client-certificate-required"
	ProblemUnknownCertificate  = "urn:zmonitor:problem:certificate-unknown"
	ProblemRevoked             = "urn:zmonitor:problem:certificate-revoked"
	ProblemDeviceRevoked       = "urn:zmonitor:problem:device-revoked"
	// ProblemDecommissioned: the device must wipe its provisioning.
	ProblemDecommissioned = est.ProblemDeviceDecommissioned
	ProblemBadRequest     = "urn:zmonitor:problem:bad-request"
	ProblemInternal       = "urn:zmonitor:problem:internal"
)

// Store is the part of the Central Station's store EST uses.
type Store interface {
	Device(ctx context.Context, id string) (store.Device, error)
	Certificate(ctx context.Context, serial string) (store.IssuedCertificate, error)
	ConfirmCertificate(ctx context.Context, serial string) ([]string, error)
	ConfirmCertificateAudited(ctx context.Context, serial, actor string) ([]string, error)
	RecordRenewal(ctx context.Context, deviceID string, der []byte, a store.AuditRecord) error
	RecordCertificate(ctx context.Context, deviceID, pairingID string, der []byte) error
	Audit(ctx context.Context, r store.AuditRecord) error
}

// Config configures a Server.
type Config struct {
	CA    *ca.CA
	Store Store
	// Now is the Central Station's clock (with its drill offset); it dates
	// the certificates issued and the answers' Date header.
	Now func() time.Time
	Log *slog.Logger
	// RateLimit bounds each device's simple re-enrollment requests
	// (default DefaultRenewalsPerHour per hour). Beyond it: 429 with
	// Retry-After, audited est.rate_limited once per interval.
	RateLimit RateLimit
}

// Server serves EST.
type Server struct {
	cfg     Config
	limiter *limiter
}

// New returns a Server.
func New(cfg Config) (*Server, error) {
	if cfg.CA == nil || cfg.Store == nil {
		return nil, errors.New("estserver: CA and store are required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.RateLimit == (RateLimit{}) {
		cfg.RateLimit = RateLimit{Requests: DefaultRenewalsPerHour, Interval: time.Hour}
	}
	if cfg.RateLimit.Requests < 1 || cfg.RateLimit.Interval <= 0 {
		return nil, fmt.Errorf("estserver: rate limit %d per %v: at least 1 request per positive interval", cfg.RateLimit.Requests, cfg.RateLimit.Interval)
	}
	return &Server{cfg: cfg, limiter: newLimiter(cfg.RateLimit)}, nil
}

// TLSConfig is the listener's TLS: 1.3 only, the given server
// certificate, and client certificates from the device CA verified when
// given (cacerts may be asked without one; simplereenroll needs one).
func (s *Server) TLSConfig(cert tls.Certificate) *tls.Config {
	pool := x509.NewCertPool()
	pool.AddCert(s.cfg.CA.Certificate())
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.VerifyClientCertIfGiven,
		ClientCAs:    pool,
		Time:         s.cfg.Now,
	}
}

// HTTPServer is an http.Server for addr with the listener's TLS and
// bounded timeouts; serve it with ServeTLS(l, "", "").
func (s *Server) HTTPServer(addr string, cert tls.Certificate) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           s.Handler(),
		TLSConfig:         s.TLSConfig(cert),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       time.Minute,
		MaxHeaderBytes:    8 << 10,
		ErrorLog:          slog.NewLogLogger(s.cfg.Log.Handler(), slog.LevelWarn),
	}
}

// Handler serves /.well-known/est/cacerts and /.well-known/est/simplereenroll.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+est.WellKnown+est.PathCACerts, s.caCerts)
	mux.HandleFunc("POST "+est.WellKnown+est.PathSimpleReenroll, s.simpleReenroll)
	return mux
}

func (s *Server) caCerts(w http.ResponseWriter, r *http.Request) {
	now := s.cfg.Now()
	if leaf := peer(r); leaf != nil {
		// A device asking with its certificate: it uses this one now.
		if _, ok := s.authenticate(w, r, leaf, now); !ok {
			return
		}
	}
	body, err := est.EncodeCerts(s.cfg.CA.Certificate())
	if err != nil {
		s.problem(w, now, http.StatusInternalServerError, ProblemInternal, "encode CA certificates")
		return
	}
	s.certsOnly(w, now, body)
}

func (s *Server) simpleReenroll(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	now := s.cfg.Now()
	leaf := peer(r)
	if leaf == nil {
		s.problem(w, now, http.StatusUnauthorized, ProblemCertificateRequired, "simple re-enrollment needs the device's current client certificate")
		return
	}
	old, ok := s.authenticate(w, r, leaf, now)
	if !ok {
		return
	}
	if v := s.limiter.take(old.DeviceID, now); !v.ok {
		s.rateLimited(w, r, old, now, v)
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != est.TypeCSR {
		s.problem(w, now, http.StatusUnsupportedMediaType, ProblemBadRequest, "Content-Type must be "+est.TypeCSR)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, est.MaxCSRBody+1))
	if err != nil {
		s.problem(w, now, http.StatusBadRequest, ProblemBadRequest, "request body unreadable")
		return
	}
	csr, err := est.DecodeCSR(body)
	if err != nil {
		s.problem(w, now, http.StatusBadRequest, ProblemBadRequest, err.Error())
		return
	}
	// RFC 7030 section 4.2.2: the subject and subjectAltName are those of
	// the certificate being renewed.
	if csr.Subject.String() != leaf.Subject.String() || strings.Join(csr.DNSNames, ",") != strings.Join(leaf.DNSNames, ",") {
		s.problem(w, now, http.StatusBadRequest, ProblemBadRequest, "the request's subject or names differ from the certificate being renewed")
		return
	}
	issued, err := s.cfg.CA.IssueClient(csr, old.DeviceID, now)
	if err != nil {
		s.problem(w, now, http.StatusBadRequest, ProblemBadRequest, err.Error())
		return
	}
	// Recorded before it leaves, like a pairing's certificate, with its
	// audit record (one transaction).
	serial := store.CertificateSerial(issued)
	if err := s.cfg.Store.RecordRenewal(ctx, old.DeviceID, issued.Raw, store.AuditRecord{Actor: "device:" + old.DeviceID, Event: "certificate.renewed", DeviceID: old.DeviceID,
		Detail: fmt.Sprintf("serial=%s renews=%s notBefore=%s notAfter=%s", serial, old.Serial, stamp(issued.NotBefore), stamp(issued.NotAfter))}); err != nil {
		s.cfg.Log.Error("record renewed certificate: not delivered", "device", old.DeviceID, "err", err)
		s.problem(w, now, http.StatusInternalServerError, ProblemInternal, "the certificate could not be recorded")
		return
	}
	out, err := est.EncodeCerts(issued)
	if err != nil {
		s.problem(w, now, http.StatusInternalServerError, ProblemInternal, "encode certificate")
		return
	}
	s.certsOnly(w, now, out)
}

// authenticate checks the certificate a device presented: recorded, not
// revoked, its device in the inventory and not revoked. It confirms the
// certificate (in use; its predecessors superseded). On refusal it has
// answered and returns false.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request, leaf *x509.Certificate, now time.Time) (store.IssuedCertificate, bool) {
	ctx := r.Context()
	serial := store.CertificateSerial(leaf)
	c, err := s.cfg.Store.Certificate(ctx, serial)
	switch {
	case errors.Is(err, store.ErrNotFound):
		s.problem(w, now, http.StatusForbidden, ProblemUnknownCertificate, "this Central Station did not issue the certificate")
		return c, false
	case err != nil:
		s.cfg.Log.Error("EST: read certificate", "serial", serial, "err", err)
		s.problem(w, now, http.StatusInternalServerError, ProblemInternal, "certificate lookup failed")
		return c, false
	case c.DeviceID != leaf.Subject.CommonName:
		s.problem(w, now, http.StatusForbidden, ProblemUnknownCertificate, "certificate recorded for another device")
		return c, false
	}
	// Decommissioning comes first: it revoked the certificate, and the
	// device must hear why.
	d, err := s.cfg.Store.Device(ctx, c.DeviceID)
	switch {
	case err != nil:
		s.cfg.Log.Error("EST: read device", "device", c.DeviceID, "err", err)
		s.problem(w, now, http.StatusInternalServerError, ProblemInternal, "device lookup failed")
		return c, false
	case d.Decommissioned(c.IssuedAt):
		s.audit(ctx, c.DeviceID, "device.decommission_delivered", fmt.Sprintf("serial=%s: the device was told to wipe its provisioning", serial))
		s.problem(w, now, http.StatusForbidden, ProblemDecommissioned, "device decommissioned: it wipes its provisioning")
		return c, false
	}
	switch {
	case c.State == store.CertificateRevoked:
		s.audit(ctx, c.DeviceID, "est.refused", fmt.Sprintf("serial=%s revoked (%s)", serial, c.Reason))
		s.problem(w, now, http.StatusForbidden, ProblemRevoked, "certificate revoked: contact biomedical engineering")
		return c, false
	case d.Revoked():
		s.audit(ctx, c.DeviceID, "est.refused", "device revoked, serial="+serial)
		s.problem(w, now, http.StatusForbidden, ProblemDeviceRevoked, "device revoked: contact biomedical engineering")
		return c, false
	}
	if c.State == store.CertificateIssued {
		// Confirmed and audited in one transaction.
		if _, err := s.cfg.Store.ConfirmCertificateAudited(ctx, serial, "device:"+c.DeviceID); err != nil {
			s.cfg.Log.Error("EST: confirm certificate", "serial", serial, "err", err)
		}
	}
	return c, true
}

// rateLimited answers 429 with Retry-After (whole seconds, rounded up),
// audited the first time in an interval.
func (s *Server) rateLimited(w http.ResponseWriter, r *http.Request, c store.IssuedCertificate, now time.Time, v verdict) {
	secs := int64((v.retryAfter + time.Second - 1) / time.Second)
	if secs < 1 {
		secs = 1
	}
	if v.audit {
		s.audit(r.Context(), c.DeviceID, "est.rate_limited", fmt.Sprintf("serial=%s more than %d renewal requests in %v; refused until %s (audited once per interval)",
			c.Serial, s.cfg.RateLimit.Requests, s.cfg.RateLimit.Interval, stamp(now.Add(time.Duration(secs)*time.Second))))
	}
	w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
	s.problem(w, now, http.StatusTooManyRequests, ProblemTooManyRequests,
		fmt.Sprintf("more than %d renewal requests in %v from this device: retry after %d s", s.cfg.RateLimit.Requests, s.cfg.RateLimit.Interval, secs))
}

func peer(r *http.Request) *x509.Certificate {
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 || len(r.TLS.VerifiedChains[0]) == 0 {
		return nil
	}
	return r.TLS.VerifiedChains[0][0]
}

func (s *Server) certsOnly(w http.ResponseWriter, now time.Time, body []byte) {
	h := w.Header()
	h.Set("Content-Type", est.TypeCertsOnly)
	h.Set("Content-Transfer-Encoding", est.TransferEncoding)
	h.Set("Content-Length", fmt.Sprint(len(body)))
	h.Set("Date", now.UTC().Format(http.TimeFormat))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

func (s *Server) problem(w http.ResponseWriter, now time.Time, status int, typ, detail string) {
	b, _ := json.Marshal(struct {
		Type   string `json:"type"`
		Title  string `json:"title"`
		Status int    `json:"status"`
		Detail string `json:"detail"`
	}{typ, http.StatusText(status), status, detail})
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("Content-Length", fmt.Sprint(len(b)))
	h.Set("Date", now.UTC().Format(http.TimeFormat))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func (s *Server) audit(ctx context.Context, deviceID, event, detail string) {
	if err := s.cfg.Store.Audit(ctx, store.AuditRecord{Actor: "device:" + deviceID, Event: event, DeviceID: deviceID, Detail: detail}); err != nil {
		s.cfg.Log.Error("audit", "event", event, "err", err)
	}
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }
