package monitor

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"
)

// DefaultHealthPath is the path the device's connection test requests.
const DefaultHealthPath = "/health"

// Config configures a Server.
type Config struct {
	// ClientCAs verifies device client certificates (the device CA).
	ClientCAs *x509.CertPool
	// Certificate is the server's certificate (chaining to the CA the
	// payload's caCertificate names).
	Certificate tls.Certificate
	// HealthPath defaults to DefaultHealthPath.
	HealthPath string
	// Logger defaults to discarding.
	Logger *slog.Logger
	// Now is the server's clock: client certificates are verified at it
	// and answers dated by it (zm-central serve --clock-offset shifts it).
	// Default time.Now.
	Now func() time.Time
	// CRL, when set, is the device CA's current revocation list: a
	// device whose certificate it lists is refused (403, problem
	// ProblemRevoked), and one whose revocation status cannot be read
	// (no CRL, or one not signed by the certificate's issuer) too (503):
	// the check fails closed.
	CRL func(ctx context.Context) (*x509.RevocationList, error)
}

// ProblemRevoked is the RFC 9457 problem type of a revoked certificate
// (the same as the EST server's).
const ProblemRevoked = "urn:zmonitor:problem:certificate-revoked"

// Server is the stand-in monitoring server.
type Server struct {
	cfg  Config
	mu   sync.Mutex
	seen map[string]int
}

// New returns a Server.
func New(cfg Config) (*Server, error) {
	if cfg.ClientCAs == nil {
		return nil, errors.New("monitor: ClientCAs required")
	}
	if len(cfg.Certificate.Certificate) == 0 {
		return nil, errors.New("monitor: Certificate required")
	}
	if cfg.HealthPath == "" {
		cfg.HealthPath = DefaultHealthPath
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Server{cfg: cfg, seen: map[string]int{}}, nil
}

// TLSConfig requires TLS 1.3 and a client certificate that verifies
// against ClientCAs for client authentication.
func (s *Server) TLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{s.cfg.Certificate},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    s.cfg.ClientCAs,
		Time:         s.cfg.Now,
	}
}

// Handler serves the health path.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+s.cfg.HealthPath, func(w http.ResponseWriter, r *http.Request) {
		cn, serial := "", ""
		if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 {
			leaf := r.TLS.VerifiedChains[0][0]
			cn, serial = leaf.Subject.CommonName, leaf.SerialNumber.Text(16)
		}
		if cn == "" {
			http.Error(w, "client certificate required", http.StatusUnauthorized)
			return
		}
		if s.cfg.CRL != nil {
			chain := r.TLS.VerifiedChains[0]
			issuer := chain[0]
			if len(chain) > 1 {
				issuer = chain[1]
			}
			revoked, err := s.revoked(r.Context(), chain[0], issuer)
			if err != nil {
				s.cfg.Logger.Error("revocation status unavailable: refused", "client", cn, "serial", serial, "err", err)
				s.problem(w, http.StatusServiceUnavailable, "urn:zmonitor:problem:revocation-status-unavailable", "revocation status unavailable")
				return
			}
			if revoked {
				s.cfg.Logger.Warn("revoked certificate refused", "client", cn, "serial", serial, "remote", r.RemoteAddr)
				s.problem(w, http.StatusForbidden, ProblemRevoked, "certificate revoked: contact biomedical engineering")
				return
			}
		}
		s.mu.Lock()
		s.seen[cn]++
		s.mu.Unlock()
		// The serial says which certificate the device uses (the one a
		// renewal switched to, or still the old one).
		s.cfg.Logger.Info("health check", "client", cn, "serial", serial, "remote", r.RemoteAddr)
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Date", s.cfg.Now().UTC().Format(http.TimeFormat))
		io.WriteString(w, "ok")
	})
	return mux
}

// HTTPServer returns an http.Server for addr; serve it with
// ListenAndServeTLS("", "") or ServeTLS(l, "", "").
func (s *Server) HTTPServer(addr string) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           s.Handler(),
		TLSConfig:         s.TLSConfig(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       time.Minute,
		MaxHeaderBytes:    8 << 10,
		ErrorLog:          slog.NewLogLogger(s.cfg.Logger.Handler(), slog.LevelWarn),
	}
}

// revoked checks leaf against the CRL, which must be signed by issuer.
func (s *Server) revoked(ctx context.Context, leaf, issuer *x509.Certificate) (bool, error) {
	crl, err := s.cfg.CRL(ctx)
	if err != nil {
		return false, err
	}
	if err := crl.CheckSignatureFrom(issuer); err != nil {
		return false, fmt.Errorf("CRL not signed by the certificate's issuer: %w", err)
	}
	if now := s.cfg.Now(); !crl.NextUpdate.IsZero() && now.After(crl.NextUpdate) {
		return false, fmt.Errorf("CRL out of date since %s", crl.NextUpdate.UTC().Format(time.RFC3339))
	}
	for _, e := range crl.RevokedCertificateEntries {
		if e.SerialNumber.Cmp(leaf.SerialNumber) == 0 {
			return true, nil
		}
	}
	return false, nil
}

func (s *Server) problem(w http.ResponseWriter, status int, typ, detail string) {
	b, _ := json.Marshal(struct {
		Type   string `json:"type"`
		Title  string `json:"title"`
		Status int    `json:"status"`
		Detail string `json:"detail"`
	}{typ, http.StatusText(status), status, detail})
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Date", s.cfg.Now().UTC().Format(http.TimeFormat))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// Seen returns how many health checks the device with this common name
// made.
func (s *Server) Seen(cn string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seen[cn]
}
