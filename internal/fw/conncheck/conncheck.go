package conncheck

import (
	"bufio"
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/zmonitor/firmware/internal/fw/sys/http1"
	"github.com/zmonitor/firmware/internal/proto/failure"
)

// Defaults and limits.
const (
	DefaultHealthPath     = "/health"
	DefaultAttempts       = 3
	DefaultAttemptTimeout = 5 * time.Second
	DefaultBackoff        = time.Second
	MaxAttempts           = 10
	MaxBackoff            = 30 * time.Second
	// MaxResponse bounds what is read of the response, headers and body.
	MaxResponse = 64 << 10
)

// Config is one connection test.
type Config struct {
	// ServerURL is the spec's serverUrl: https://host[:port][/base]. The
	// health request goes to base + HealthPath.
	ServerURL string
	// CA is the spec's caCertificate as a pool: the only roots the server
	// certificate is verified against (never the system roots).
	CA *x509.CertPool
	// ClientCert is the device's client certificate: Certificate[0] the
	// leaf DER, Leaf parsed, PrivateKey a crypto.Signer (the TPM key).
	ClientCert tls.Certificate
	// HealthPath defaults to DefaultHealthPath.
	HealthPath string
	// Attempts defaults to DefaultAttempts (at most MaxAttempts).
	Attempts int
	// AttemptTimeout bounds each attempt (dial, handshake, request);
	// defaults to DefaultAttemptTimeout.
	AttemptTimeout time.Duration
	// Backoff is the wait before the second attempt, doubled before each
	// further one (at most MaxBackoff); defaults to DefaultBackoff.
	Backoff time.Duration
	// Dial replaces the TCP dialer (tests, QEMU guestfwd). Optional.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Sleep replaces the backoff wait (tests). It must return ctx.Err() if
	// ctx ends first. Optional.
	Sleep func(ctx context.Context, d time.Duration) error
	// Now is the time the server's certificate is verified at: the
	// device's wall clock, which never goes below its last known good
	// time. Optional (time.Now).
	Now func() time.Time
}

// Result describes a connection test, successful or not.
type Result struct {
	Attempts int           // attempts made
	Duration time.Duration // from the start to the end of the last attempt
	Status   int           // HTTP status of the last response, 0 if none
	// Date is the server's Date header of the last response (zero if none
	// or unreadable): a time the server vouched for over a TLS connection
	// verified against CA, which the device learns the time from
	// (clock.Wall.Observe).
	Date time.Time
}

// Run tests the connection: for each attempt, TCP to the server, TLS 1.3
// with the client certificate and only c.CA as roots, then GET of the health
// path expecting a 2xx status. Transient failures (see Reason.Transient) are
// retried up to c.Attempts times with doubling backoff. The error is a
// *failure.Error with code failure.ConnectionFailed wrapping an *Error whose
// Reason says what failed (ReasonOf).
func Run(ctx context.Context, c Config) (Result, error) {
	start := time.Now()
	var res Result
	target, err := c.check()
	if err != nil {
		return res, wrap(&Error{Reason: BadConfig, Err: err})
	}
	backoff := c.Backoff
	for {
		res.Attempts++
		status, date, err := c.attempt(ctx, target)
		res.Status, res.Date = status, date
		res.Duration = time.Since(start)
		if err == nil {
			return res, nil
		}
		err.Attempts = res.Attempts
		if !err.retry() || res.Attempts >= c.Attempts {
			return res, wrap(err)
		}
		if serr := c.Sleep(ctx, backoff); serr != nil {
			res.Duration = time.Since(start)
			return res, wrap(&Error{Reason: Canceled, Attempts: res.Attempts, Err: fmt.Errorf("waiting to retry after %v: %w", err, serr)})
		}
		backoff = min(2*backoff, MaxBackoff)
	}
}

func wrap(e *Error) error {
	if e.Reason == Revoked {
		return failure.New(failure.CertificateRevoked, "connection test", e)
	}
	return failure.New(failure.ConnectionFailed, "connection test", e)
}

// ProblemRevoked is the RFC 9457 problem type with which the monitoring
// server (and the EST server) refuse a revoked certificate.
const ProblemRevoked = "urn:zmonitor:problem:certificate-revoked"

// maxProblem bounds the problem body read from a 403.
const maxProblem = 4 << 10

// revokedProblem reports whether a 403's body is the revoked problem.
func revokedProblem(br *bufio.Reader, head http1.ResponseHead) bool {
	body, err := http1.ReadResponseBody(br, head, maxProblem)
	if err != nil {
		return false
	}
	var p struct {
		Type string `json:"type"`
	}
	return json.Unmarshal(body, &p) == nil && p.Type == ProblemRevoked
}

// target is the checked form of the configuration.
type target struct {
	addr       string // host:port to dial
	serverName string // for SNI and verification
	url        *url.URL
}

// check validates c and fills in its defaults.
func (c *Config) check() (target, error) {
	var t target
	u, err := ParseServerURL(c.ServerURL)
	if err != nil {
		return t, err
	}
	if c.HealthPath == "" {
		c.HealthPath = DefaultHealthPath
	}
	if !strings.HasPrefix(c.HealthPath, "/") || strings.ContainsAny(c.HealthPath, "?#") {
		return t, fmt.Errorf("health path %q: must start with / and carry no query", c.HealthPath)
	}
	switch {
	case c.Attempts == 0:
		c.Attempts = DefaultAttempts
	case c.Attempts < 0 || c.Attempts > MaxAttempts:
		return t, fmt.Errorf("attempts %d outside [1, %d]", c.Attempts, MaxAttempts)
	}
	switch {
	case c.AttemptTimeout == 0:
		c.AttemptTimeout = DefaultAttemptTimeout
	case c.AttemptTimeout < 0:
		return t, fmt.Errorf("attempt timeout %v is negative", c.AttemptTimeout)
	}
	switch {
	case c.Backoff == 0:
		c.Backoff = DefaultBackoff
	case c.Backoff < 0:
		return t, fmt.Errorf("backoff %v is negative", c.Backoff)
	}
	if c.Sleep == nil {
		c.Sleep = sleep
	}
	if c.Dial == nil {
		c.Dial = (&net.Dialer{}).DialContext
	}
	if c.CA == nil {
		return t, errors.New("no CA certificate")
	}
	if len(c.ClientCert.Certificate) == 0 {
		return t, errors.New("no client certificate")
	}
	signer, ok := c.ClientCert.PrivateKey.(crypto.Signer)
	if !ok {
		return t, errors.New("client key is not a crypto.Signer")
	}
	if c.ClientCert.Leaf != nil {
		pub, ok := c.ClientCert.Leaf.PublicKey.(interface{ Equal(crypto.PublicKey) bool })
		if !ok || !pub.Equal(signer.Public()) {
			return t, errors.New("client key does not match the client certificate")
		}
	}
	port := u.Port()
	if port == "" {
		port = "443"
	}
	t.addr = net.JoinHostPort(u.Hostname(), port)
	t.serverName = u.Hostname()
	t.url = &url.URL{Scheme: "https", Host: u.Host, Path: strings.TrimSuffix(u.Path, "/") + c.HealthPath}
	return t, nil
}

// ParseServerURL checks the spec's serverUrl: https, a host, an optional
// port, an optional base path; no user information, query or fragment.
func ParseServerURL(s string) (*url.URL, error) {
	if s == "" {
		return nil, errors.New("server URL is empty")
	}
	if len(s) > 2048 {
		return nil, fmt.Errorf("server URL is %d bytes, limit 2048", len(s))
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("server URL: %w", err)
	}
	switch {
	case u.Scheme != "https":
		return nil, fmt.Errorf("server URL: scheme %q, want https", u.Scheme)
	case u.Opaque != "":
		return nil, errors.New("server URL: not of the form https://host[:port]")
	case u.User != nil:
		return nil, errors.New("server URL: user information not allowed")
	case u.Hostname() == "":
		return nil, errors.New("server URL: no host")
	case u.RawQuery != "" || u.ForceQuery:
		return nil, errors.New("server URL: query not allowed")
	case u.Fragment != "":
		return nil, errors.New("server URL: fragment not allowed")
	}
	if p := u.Port(); p != "" {
		var n int
		if _, err := fmt.Sscanf(p, "%d", &n); err != nil || n < 1 || n > 65535 || fmt.Sprint(n) != p {
			return nil, fmt.Errorf("server URL: port %q", p)
		}
	}
	return u, nil
}

// attempt makes one connection and request. It returns the HTTP status and
// the server's Date when a response arrived.
func (c *Config) attempt(parent context.Context, t target) (int, time.Time, *Error) {
	status, head, err := c.exchange(parent, t)
	return status, ResponseDate(head), err
}

// ResponseDate is the time of a response's Date header (RFC 9110 IMF-fixdate,
// the only form HTTP/1.1 servers send), or the zero time.
func ResponseDate(h http1.ResponseHead) time.Time {
	v := h.Header.Get("Date")
	if v == "" {
		return time.Time{}
	}
	d, err := time.Parse(time.RFC1123, v)
	if err != nil || d.Location().String() != "GMT" && d.Location() != time.UTC {
		return time.Time{}
	}
	return d.UTC()
}

// exchange is attempt's connection and request.
func (c *Config) exchange(parent context.Context, t target) (int, http1.ResponseHead, *Error) {
	var none http1.ResponseHead
	if err := parent.Err(); err != nil {
		return 0, none, &Error{Reason: Canceled, Err: err}
	}
	ctx, cancel := context.WithTimeout(parent, c.AttemptTimeout)
	defer cancel()

	raw, err := c.Dial(ctx, "tcp", t.addr)
	if err != nil {
		return 0, none, classify(parent, ctx, "connect", err)
	}
	defer raw.Close()
	// Close the connection when the attempt's context ends, so that no read
	// or write outlives it.
	stop := context.AfterFunc(ctx, func() { raw.Close() })
	defer stop()
	if d, ok := ctx.Deadline(); ok {
		raw.SetDeadline(d)
	}

	keyErr := &signerErr{}
	cert := c.ClientCert
	cert.PrivateKey = &recordingSigner{Signer: c.ClientCert.PrivateKey.(crypto.Signer), err: keyErr}
	conn := tls.Client(raw, &tls.Config{
		MinVersion: tls.VersionTLS13,
		MaxVersion: tls.VersionTLS13,
		RootCAs:    c.CA,
		ServerName: t.serverName,
		Time:       c.Now,
		// Always present the certificate; the server decides.
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil },
		NextProtos:           []string{"http/1.1"},
	})
	if err := conn.HandshakeContext(ctx); err != nil {
		if keyErr.err != nil {
			return 0, none, &Error{Reason: ClientKey, Err: fmt.Errorf("sign handshake with the client key: %w", keyErr.err)}
		}
		return 0, none, classify(parent, ctx, "TLS handshake", err)
	}

	target := t.url.EscapedPath()
	if target == "" {
		target = "/"
	}
	if _, err := fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: zmonitor-conncheck\r\nAccept: */*\r\nConnection: close\r\n\r\n", target, t.url.Host); err != nil {
		return 0, none, classify(parent, ctx, "send request", err)
	}
	// With TLS 1.3 the server's verdict on our certificate arrives after our
	// side of the handshake is done: a rejection surfaces here, on the first
	// read.
	lr := &io.LimitedReader{R: conn, N: MaxResponse}
	br := bufio.NewReader(lr)
	head, err := http1.ReadResponseHead(br)
	if err != nil {
		if lr.N == 0 {
			return 0, none, &Error{Reason: Protocol, Err: fmt.Errorf("read response: headers larger than %d bytes", MaxResponse)}
		}
		return 0, none, classify(parent, ctx, "read response", err)
	}
	if head.Status == 403 && revokedProblem(br, head) {
		return head.Status, head, &Error{Reason: Revoked, Status: head.Status, Err: fmt.Errorf("GET %s: %d %s: certificate revoked", t.url.Path, head.Status, head.Reason)}
	}
	if head.Status < 200 || head.Status > 299 {
		return head.Status, head, &Error{Reason: BadStatus, Status: head.Status, Err: fmt.Errorf("GET %s: %d %s", t.url.Path, head.Status, head.Reason)}
	}
	return head.Status, head, nil
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// signerErr records the client key's failure during a handshake.
type signerErr struct{ err error }

// recordingSigner passes through to the client key and keeps its error, so
// that a TPM failure is reported as such and not as a TLS failure.
type recordingSigner struct {
	crypto.Signer
	err *signerErr
}

func (r *recordingSigner) Sign(rand io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	sig, err := r.Signer.Sign(rand, digest, opts)
	if err != nil {
		r.err.err = err
	}
	return sig, err
}

// clientCertAlerts are the TLS alerts a server sends when it refuses the
// client certificate (RFC 8446 section 6.2).
var clientCertAlerts = []uint8{
	42,  // bad_certificate
	43,  // unsupported_certificate
	44,  // certificate_revoked
	45,  // certificate_expired
	46,  // certificate_unknown
	48,  // unknown_ca
	49,  // access_denied
	116, // certificate_required
}

// alertProtocolVersion is the alert a server sends when it does not speak
// TLS 1.3.
const alertProtocolVersion = 70

// remoteAlert returns the TLS alert the peer sent, if err carries one.
func remoteAlert(err error) (uint8, bool) {
	var ae tls.AlertError
	if errors.As(err, &ae) {
		return uint8(ae), true
	}
	// crypto/tls reports a received alert as a *net.OpError "remote error"
	// around its unexported alert type, whose text is the same as
	// AlertError's for the same number.
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "remote error" && op.Err != nil {
		msg := op.Err.Error()
		for a := 0; a < 256; a++ {
			if tls.AlertError(uint8(a)).Error() == msg {
				return uint8(a), true
			}
		}
	}
	return 0, false
}

// classify names the reason of an attempt's error. parent is the caller's
// context, ctx the attempt's.
func classify(parent, ctx context.Context, step string, err error) *Error {
	e := &Error{Err: fmt.Errorf("%s: %w", step, err)}
	var dnsErr *net.DNSError
	var verr *tls.CertificateVerificationError
	var hostErr x509.HostnameError
	var uaErr x509.UnknownAuthorityError
	var invErr x509.CertificateInvalidError
	var recErr tls.RecordHeaderError
	alert, isAlert := remoteAlert(err)
	switch {
	case parent.Err() != nil:
		e.Reason = Canceled
	case errors.As(err, &dnsErr):
		e.Reason = DNS
		e.transientDNS = dnsErr.IsTimeout || dnsErr.IsTemporary
	case errors.Is(err, syscall.ECONNREFUSED):
		e.Reason = Refused
	case errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.EHOSTUNREACH):
		e.Reason = Unreachable
	case errors.As(err, &verr), errors.As(err, &hostErr), errors.As(err, &uaErr), errors.As(err, &invErr):
		e.Reason = TLSVerify
	case isAlert && alert == alertProtocolVersion:
		e.Reason = TLSVersion
	case isAlert && isClientCertAlert(alert):
		e.Reason = ClientCertRejected
	case ctx.Err() != nil || isTimeout(err):
		e.Reason = Timeout
	case errors.As(err, &recErr):
		e.Reason = Protocol
		e.Err = fmt.Errorf("%s: server does not speak TLS: %w", step, err)
	case step == "read response" && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET)):
		e.Reason = Protocol
		e.Err = fmt.Errorf("%s: connection closed without a response (the server may have refused the client certificate without an alert): %w", step, err)
	default:
		e.Reason = Protocol
	}
	return e
}

func isClientCertAlert(a uint8) bool {
	for _, x := range clientCertAlerts {
		if a == x {
			return true
		}
	}
	return false
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
