package endpoint

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/zmonitor/firmware/internal/failure"
)

// Device is what the server asks of the provisioning engine.
type Device interface {
	// Hello checks the token (empty: typed pairing code) and returns a
	// signed hello for a fresh pairing exchange.
	Hello(ctx context.Context, req HelloRequest, peer *x509.Certificate) (HelloResponse, error)
	// Config takes a pushed envelope. The channel carries progress and is
	// closed after the final step.
	Config(ctx context.Context, envelope []byte, peer *x509.Certificate) (<-chan Progress, error)
	// Status reports the current state.
	Status() Status
}

// Refusal describes a refused request or handshake, for the audit log.
type Refusal struct {
	Code   failure.Code
	Remote string
	Peer   string // subject of the client certificate, if any
	Err    error
}

// Opts configure a Server.
type Opts struct {
	// Identity signs the server's self-signed certificate (the Central
	// Station pins its public key).
	Identity crypto.Signer
	// DeviceID is the certificate's subject common name.
	DeviceID string
	// Anchors are the provisioning trust anchors a client certificate must
	// chain to.
	Anchors *x509.CertPool
	// Now is the time used for the certificate's validity and for client
	// chain checks (the device's wall clock; zero: time.Now).
	Now func() time.Time
	// OnRefused is called for every refused handshake or request.
	OnRefused func(Refusal)
	// ErrorLog receives the HTTP server's own messages (nil: discarded).
	ErrorLog *log.Logger
}

// Server is the device's provisioning endpoint.
type Server struct {
	dev  Device
	opts Opts
	cert tls.Certificate

	mu   sync.Mutex
	srv  *http.Server
	ln   net.Listener
	done chan struct{}
}

// NewServer prepares a server; it does not listen until Start. It signs the
// server certificate once, with the identity key.
func NewServer(dev Device, o Opts) (*Server, error) {
	if o.Identity == nil || o.Anchors == nil || o.DeviceID == "" {
		return nil, errors.New("endpoint: identity, anchors and device ID are required")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	cert, err := selfSigned(o.Identity, o.DeviceID, o.Now())
	if err != nil {
		return nil, fmt.Errorf("endpoint: server certificate: %w", err)
	}
	return &Server{dev: dev, opts: o, cert: cert}, nil
}

func selfSigned(k crypto.Signer, cn string, now time.Time) (tls.Certificate, error) {
	if _, ok := k.Public().(*ecdsa.PublicKey); !ok {
		return tls.Certificate{}, errors.New("identity key is not ECDSA")
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"Z Monitor provisioning endpoint"}},
		NotBefore:             now.Add(-24 * time.Hour),
		NotAfter:              now.Add(365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              []string{cn},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	if err != nil {
		return tls.Certificate{}, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k, Leaf: leaf}, nil
}

// Certificate is the server's self-signed certificate.
func (s *Server) Certificate() *x509.Certificate { return s.cert.Leaf }

func (s *Server) refuse(r Refusal) {
	if s.opts.OnRefused != nil {
		s.opts.OnRefused(r)
	}
}

func (s *Server) tlsConfig() *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		MaxVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{s.cert},
		ClientAuth:   tls.RequireAnyClientCert,
		NextProtos:   []string{"http/1.1"},
		// The chain is checked here rather than by RequireAndVerifyClientCert
		// so that every refused handshake is audited.
		VerifyConnection: func(cs tls.ConnectionState) error {
			err := s.verifyClient(cs.PeerCertificates)
			if err != nil {
				peer := ""
				if len(cs.PeerCertificates) > 0 {
					peer = cs.PeerCertificates[0].Subject.String()
				}
				s.refuse(Refusal{Code: failure.SignerUntrusted, Peer: peer, Err: err})
			}
			return err
		},
	}
}

func (s *Server) verifyClient(chain []*x509.Certificate) error {
	if len(chain) == 0 {
		return errors.New("client certificate required")
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	_, err := chain[0].Verify(x509.VerifyOptions{
		Roots:         s.opts.Anchors,
		Intermediates: inter,
		CurrentTime:   s.opts.Now(),
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		return fmt.Errorf("client certificate does not chain to the provisioning anchor: %w", err)
	}
	return nil
}

// Start listens on addr (e.g. ":8444"). It fails if already listening.
func (s *Server) Start(addr string) (net.Addr, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		return nil, errors.New("endpoint: already listening")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("endpoint: listen %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/hello", s.handleHello)
	mux.HandleFunc("/v1/config", s.handleConfig)
	mux.HandleFunc("/v1/status", s.handleStatus)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.fail(w, r, http.StatusNotFound, failure.Errorf(failure.PayloadMalformed, "route", "no such endpoint %q", r.URL.Path))
	})
	errLog := s.opts.ErrorLog
	if errLog == nil {
		errLog = log.New(io.Discard, "", 0)
	}
	srv := &http.Server{
		Handler:           mux,
		TLSConfig:         s.tlsConfig(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    8 << 10,
		ErrorLog:          errLog,
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(tls.NewListener(ln, srv.TLSConfig))
	}()
	s.srv, s.ln, s.done = srv, ln, done
	return ln.Addr(), nil
}

// Listening reports whether the port is open.
func (s *Server) Listening() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.srv != nil
}

// Close stops listening at once and waits, up to ctx, for requests in
// flight (a config push streaming its final state) to finish.
func (s *Server) Close(ctx context.Context) error {
	s.mu.Lock()
	srv, done := s.srv, s.done
	s.srv, s.ln, s.done = nil, nil, nil
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	err := srv.Shutdown(ctx)
	if err != nil {
		_ = srv.Close()
	}
	<-done
	return err
}

func (s *Server) fail(w http.ResponseWriter, r *http.Request, status int, err error) {
	peer := ""
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		peer = r.TLS.PeerCertificates[0].Subject.String()
	}
	s.refuse(Refusal{Code: failure.CodeOf(err), Remote: r.RemoteAddr, Peer: peer, Err: err})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(errorBody(err))
}

func peerCert(r *http.Request) *x509.Certificate {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return nil
	}
	return r.TLS.PeerCertificates[0]
}

func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, failure.Errorf(failure.PayloadMalformed, "read request", "body over the %d-byte limit", limit)
		}
		return nil, failure.New(failure.PayloadMalformed, "read request", err)
	}
	return b, nil
}

func (s *Server) method(w http.ResponseWriter, r *http.Request, want string) bool {
	if r.Method == want {
		return true
	}
	w.Header().Set("Allow", want)
	s.fail(w, r, http.StatusMethodNotAllowed, failure.Errorf(failure.PayloadMalformed, "route", "%s %s: use %s", r.Method, r.URL.Path, want))
	return false
}

// statusFor maps a failure code to the HTTP status of a refusal.
func statusFor(err error) int {
	switch failure.CodeOf(err) {
	case failure.PayloadMalformed:
		return http.StatusBadRequest
	case failure.Internal:
		return http.StatusInternalServerError
	case failure.SessionExpired, failure.SessionMismatch:
		return http.StatusConflict
	case failure.TooManyAttempts:
		return http.StatusTooManyRequests
	default:
		return http.StatusForbidden
	}
}

func (s *Server) handleHello(w http.ResponseWriter, r *http.Request) {
	if !s.method(w, r, http.MethodPost) {
		return
	}
	b, err := readBody(w, r, MaxHelloRequest)
	if err != nil {
		s.fail(w, r, http.StatusRequestEntityTooLarge, err)
		return
	}
	req, err := ParseHelloRequest(b)
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, failure.New(failure.PayloadMalformed, "hello", err))
		return
	}
	resp, err := s.dev.Hello(r.Context(), req, peerCert(r))
	if err != nil {
		s.fail(w, r, statusFor(err), err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(resp)
}

func (s *Server) handleConfig(w http.ResponseWriter, r *http.Request) {
	if !s.method(w, r, http.MethodPost) {
		return
	}
	b, err := readBody(w, r, MaxEnvelope)
	if err != nil {
		s.fail(w, r, http.StatusRequestEntityTooLarge, err)
		return
	}
	progress, err := s.dev.Config(r.Context(), b, peerCert(r))
	if err != nil {
		s.fail(w, r, statusFor(err), err)
		return
	}
	w.Header().Set("Content-Type", "application/jsonl")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	enc := json.NewEncoder(w)
	for p := range progress {
		if err := enc.Encode(p); err != nil {
			// The client went away; the engine carries on to the end.
			for range progress {
			}
			return
		}
		if flusher != nil {
			flusher.Flush()
		}
	}
}

func (s *Server) handleStatus(w http.ResponseWriter, r *http.Request) {
	if !s.method(w, r, http.MethodGet) {
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(s.dev.Status())
}
