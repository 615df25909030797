package monitor

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
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
}

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

// Seen returns how many health checks the device with this common name
// made.
func (s *Server) Seen(cn string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seen[cn]
}
