package endpoint

import (
	"github.com/zmonitor/firmware/internal/proto/devicewire"

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
	"log/slog"
	"math/big"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zmonitor/firmware/internal/fw/sys/http1"
	"github.com/zmonitor/firmware/internal/proto/failure"
)

// Device is what the server asks of the provisioning engine.
type Device interface {
	// Hello checks the token (empty: typed pairing code) and returns a
	// signed hello for a fresh pairing exchange.
	Hello(ctx context.Context, req devicewire.HelloRequest, peer *x509.Certificate) (devicewire.HelloResponse, error)
	// Config takes a pushed envelope. The channel carries progress and is
	// closed after the final step.
	Config(ctx context.Context, envelope []byte, peer *x509.Certificate) (<-chan devicewire.Progress, error)
	// Refuse takes the Central Station's refusal of this exchange (code,
	// the hello's session nonce, a short reason): the device shows the
	// failure and audits it. It answers the state after it.
	Refuse(ctx context.Context, code failure.Code, sessionNonce []byte, reason string, peer *x509.Certificate) error
	// Status reports the current state.
	Status() devicewire.Status
}

// Refusal describes a refused connection, handshake or request, for the
// audit log.
type Refusal struct {
	Code failure.Code
	// Remote is the client's address (host:port).
	Remote string
	// Peer is the subject of the client certificate once the handshake
	// proved it (chain to the anchor and its key); empty before. The
	// subject of a refused certificate is anyone's choice: it is named in
	// Err, never here.
	Peer string
	Err  error
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
	// OnRefused is called for every refused connection, handshake or
	// request, from the connection's goroutine. It must not block: a
	// flood calls it thousands of times a second.
	OnRefused func(Refusal)
	// MaxConns bounds the connections open at once, MaxConnsPerHost those
	// from one address; a connection over either is closed at once and
	// refused (defaults DefaultMaxConns, DefaultMaxConnsPerHost).
	MaxConns, MaxConnsPerHost int
	// MaxHandshakes bounds the TLS handshakes past the ClientHello at
	// once: each costs a signature by the identity key, a TPM operation.
	// The others wait, within the handshake timeout (default
	// DefaultMaxHandshakes).
	MaxHandshakes int
	// Grace is how long, after Close, a connection with a proven client
	// certificate may finish its exchange (a config push streaming its
	// final state) before it is cut (default DefaultGrace).
	Grace time.Duration
	// Log receives what is not a refusal of the protocol: failed TLS
	// handshakes (wrong version, dropped connections), connections that
	// ended mid-request (nil: discarded).
	Log *slog.Logger
}

// Server is the device's provisioning endpoint.
type Server struct {
	dev  Device
	opts Opts

	certMu sync.Mutex
	cert   *tls.Certificate // made on first use: signing is a TPM operation

	// handshakes holds a token for each TLS handshake past its
	// ClientHello; waitingSlot counts those waiting for one.
	handshakes  chan struct{}
	waitingSlot atomic.Int32
	// inflight counts the accept loops and connections of every listening
	// period, closed or not (Wait).
	inflight sync.WaitGroup

	mu      sync.Mutex
	cur     *listening // nil while closed
	open    int        // connections open, all listening periods
	perHost map[string]int
}

// Limits and timeouts of one connection.
const (
	maxRequestHead = 8 << 10
	// handshakeTimeout bounds the TLS handshake, waiting for a handshake
	// slot included.
	handshakeTimeout = 10 * time.Second
	// readTimeout bounds the handshake and reading the whole request.
	readTimeout = 30 * time.Second
	// writeTimeout bounds each write of an answer or progress line.
	writeTimeout = 30 * time.Second
)

// Defaults of Opts.
const (
	DefaultMaxConns        = 32
	DefaultMaxConnsPerHost = 8
	DefaultMaxHandshakes   = 2
	DefaultGrace           = 3 * time.Second
)

// NewServer prepares a server; it does not listen until Start. The server
// certificate is signed once, with the identity key, by Prepare or the
// first Start (not here: it is a TPM operation, kept off the boot path).
func NewServer(dev Device, o Opts) (*Server, error) {
	if o.Identity == nil || o.Anchors == nil || o.DeviceID == "" {
		return nil, errors.New("endpoint: identity, anchors and device ID are required")
	}
	if _, ok := o.Identity.Public().(*ecdsa.PublicKey); !ok {
		return nil, errors.New("endpoint: identity key is not ECDSA")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.MaxConns <= 0 {
		o.MaxConns = DefaultMaxConns
	}
	if o.MaxConnsPerHost <= 0 {
		o.MaxConnsPerHost = DefaultMaxConnsPerHost
	}
	if o.MaxHandshakes <= 0 {
		o.MaxHandshakes = DefaultMaxHandshakes
	}
	if o.Grace <= 0 {
		o.Grace = DefaultGrace
	}
	return &Server{dev: dev, opts: o, handshakes: make(chan struct{}, o.MaxHandshakes), perHost: make(map[string]int)}, nil
}

// Prepare signs the server certificate if that is not done yet, so that
// the first Start does not wait for it. Safe from any goroutine.
func (s *Server) Prepare() error {
	_, err := s.certificate()
	return err
}

func (s *Server) certificate() (*tls.Certificate, error) {
	s.certMu.Lock()
	defer s.certMu.Unlock()
	if s.cert != nil {
		return s.cert, nil
	}
	cert, err := selfSigned(s.opts.Identity, s.opts.DeviceID, s.opts.Now())
	if err != nil {
		return nil, fmt.Errorf("endpoint: server certificate: %w", err)
	}
	s.cert = &cert
	return s.cert, nil
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

// Certificate is the server's self-signed certificate (signing it first if
// needed; nil if that fails).
func (s *Server) Certificate() *x509.Certificate {
	c, err := s.certificate()
	if err != nil {
		return nil
	}
	return c.Leaf
}

func (s *Server) refuse(r Refusal) {
	if s.opts.OnRefused != nil {
		s.opts.OnRefused(r)
	}
}

// tlsConfig is the configuration every connection starts from; serveConn
// adds what is particular to each one.
func (s *Server) tlsConfig(cert *tls.Certificate) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		MaxVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{*cert},
		// The chain is checked by VerifyConnection rather than by
		// RequireAndVerifyClientCert so that every refused handshake is
		// reported.
		ClientAuth: tls.RequireAnyClientCert,
		NextProtos: []string{"http/1.1"},
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
		return fmt.Errorf("client certificate %q does not chain to the provisioning anchor: %w", chain[0].Subject.String(), err)
	}
	return nil
}

// exchange is one request on one connection.
type exchange struct {
	conn   *tls.Conn
	remote string
	peer   *x509.Certificate
	req    *http1.Request
}

// Draining after an answer: how much of what the client still sends, and
// for how long.
const (
	lingerBytes = 1 << 20
	lingerTime  = time.Second
)

// lingerClose ends the exchange so the client reads the whole answer: TLS
// close_notify and a TCP FIN first, then what the client is still sending
// (a body refused unread) is read and dropped for a moment. Closing with
// unread data would make the kernel reset the connection, and the client
// could lose the answer (net/http's server lingers the same way).
func lingerClose(raw net.Conn, conn *tls.Conn) {
	_ = conn.SetWriteDeadline(time.Now().Add(lingerTime))
	_ = conn.CloseWrite()
	if tc, ok := raw.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	}
	_ = raw.SetReadDeadline(time.Now().Add(lingerTime))
	_, _ = io.CopyN(io.Discard, raw, lingerBytes)
}

// write sends a whole answer within writeTimeout.
func (x *exchange) write(status int, body []byte, fields ...http1.Field) {
	_ = x.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	_ = http1.WriteResponse(x.conn, status, body, fields...)
}

func (s *Server) fail(x *exchange, status int, err error) {
	peer := ""
	if x.peer != nil {
		peer = x.peer.Subject.String()
	}
	s.refuse(Refusal{Code: failure.CodeOf(err), Remote: x.remote, Peer: peer, Err: err})
	b, _ := json.Marshal(errorBody(err))
	x.write(status, append(b, '\n'), http1.Field{Name: "Content-Type", Value: "application/json"})
}

func (s *Server) answer(x *exchange, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		s.fail(x, 500, failure.New(failure.Internal, "encode answer", err))
		return
	}
	x.write(200, append(b, '\n'), http1.Field{Name: "Content-Type", Value: "application/json"})
}

// readBody reads the request body, refusing one over limit before reading it.
func readBody(x *exchange, limit int64) ([]byte, error) {
	if x.req.ContentLength > limit {
		return nil, failure.Errorf(failure.PayloadMalformed, "read request", "body over the %d-byte limit", limit)
	}
	b, err := io.ReadAll(x.req.Body)
	if err != nil {
		return nil, failure.New(failure.PayloadMalformed, "read request", err)
	}
	if int64(len(b)) != x.req.ContentLength {
		return nil, failure.Errorf(failure.PayloadMalformed, "read request", "body ended after %d of %d bytes", len(b), x.req.ContentLength)
	}
	return b, nil
}

func (s *Server) method(x *exchange, want string) bool {
	if x.req.Method == want {
		return true
	}
	err := failure.Errorf(failure.PayloadMalformed, "route", "%s %s: use %s", x.req.Method, x.req.Path, want)
	peer := ""
	if x.peer != nil {
		peer = x.peer.Subject.String()
	}
	s.refuse(Refusal{Code: failure.CodeOf(err), Remote: x.remote, Peer: peer, Err: err})
	b, _ := json.Marshal(errorBody(err))
	x.write(405, append(b, '\n'), http1.Field{Name: "Content-Type", Value: "application/json"}, http1.Field{Name: "Allow", Value: want})
	return false
}

// statusFor maps a failure code to the HTTP status of a refusal.
func statusFor(err error) int {
	switch failure.CodeOf(err) {
	case failure.PayloadMalformed:
		return 400
	case failure.Internal:
		return 500
	case failure.SessionExpired, failure.SessionMismatch:
		return 409
	case failure.TooManyAttempts:
		return 429
	default:
		return 403
	}
}

func (s *Server) handleHello(ctx context.Context, x *exchange) {
	if !s.method(x, "POST") {
		return
	}
	b, err := readBody(x, devicewire.MaxHelloRequest)
	if err != nil {
		s.fail(x, 413, err)
		return
	}
	req, err := devicewire.ParseHelloRequest(b)
	if err != nil {
		s.fail(x, 400, failure.New(failure.PayloadMalformed, "hello", err))
		return
	}
	resp, err := s.dev.Hello(ctx, req, x.peer)
	if err != nil {
		s.fail(x, statusFor(err), err)
		return
	}
	s.answer(x, resp)
}

func (s *Server) handleConfig(ctx context.Context, x *exchange) {
	if !s.method(x, "POST") {
		return
	}
	b, err := readBody(x, devicewire.MaxEnvelope)
	if err != nil {
		s.fail(x, 413, err)
		return
	}
	progress, err := s.dev.Config(ctx, b, x.peer)
	if err != nil {
		s.fail(x, statusFor(err), err)
		return
	}
	_ = x.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	// The read deadline is over: the request is in; the stream may take
	// as long as the connection test does.
	_ = x.conn.SetReadDeadline(time.Time{})
	if err := http1.WriteHead(x.conn, 200, -1, http1.Field{Name: "Content-Type", Value: "application/jsonl"}); err != nil {
		for range progress { // the client went away; the engine carries on
		}
		return
	}
	for p := range progress {
		line, _ := json.Marshal(p)
		_ = x.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
		if _, err := x.conn.Write(append(line, '\n')); err != nil {
			// The client went away; the engine carries on to the end.
			for range progress {
			}
			return
		}
	}
}

func (s *Server) handleRefusal(ctx context.Context, x *exchange) {
	if !s.method(x, "POST") {
		return
	}
	b, err := readBody(x, devicewire.MaxRefusal)
	if err != nil {
		s.fail(x, 413, err)
		return
	}
	r, code, nonce, err := devicewire.ParseRefusal(b)
	if err != nil {
		s.fail(x, 400, failure.New(failure.PayloadMalformed, "refusal", err))
		return
	}
	if err := s.dev.Refuse(ctx, code, nonce, r.Reason, x.peer); err != nil {
		s.fail(x, statusFor(err), err)
		return
	}
	s.answer(x, s.dev.Status())
}

func (s *Server) handleStatus(x *exchange) {
	if !s.method(x, "GET") {
		return
	}
	s.answer(x, s.dev.Status())
}

// errorBody converts an error into the refusal body.
func errorBody(err error) *devicewire.ErrorBody {
	c := failure.CodeOf(err)
	msg := err.Error()
	var fe *failure.Error
	if errors.As(err, &fe) && fe.Err != nil {
		msg = fe.Step + ": " + fe.Err.Error()
	}
	return &devicewire.ErrorBody{Code: c.String(), Message: msg}
}
