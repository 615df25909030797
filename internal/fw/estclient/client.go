package estclient

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/zmonitor/firmware/internal/fw/conncheck"
	"github.com/zmonitor/firmware/internal/fw/sys/http1"
	"github.com/zmonitor/firmware/internal/proto/est"
)

// DefaultTimeout bounds one request: dial, handshake, request, answer.
const DefaultTimeout = 30 * time.Second

// maxProblem bounds what is read of a refusal's body.
const maxProblem = 4 << 10

// Client talks to one EST server.
type Client struct {
	// Base is the server's base URL, https://host[:port]/.well-known/est[/label].
	Base *url.URL
	// CA is the only root the server's certificate is verified against.
	CA *x509.CertPool
	// Cert is the client certificate and its key (a TPM key) that
	// authenticates the device.
	Cert tls.Certificate
	// Now is the time certificates are verified at (the device's wall
	// clock); default time.Now.
	Now func() time.Time
	// Dial replaces the TCP dialer (tests, QEMU guestfwd). Optional.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Timeout bounds each request (DefaultTimeout when zero).
	Timeout time.Duration
}

// Answer is what every successful request returns besides its content.
type Answer struct {
	// Date is the server's Date header (zero when absent or unreadable).
	Date time.Time
}

// Error is an EST server's refusal: its HTTP status and, when it sent an
// RFC 9457 problem, the problem's type and detail.
type Error struct {
	Status int
	Type   string // problem type URI, "" without a problem body
	Detail string // problem detail or title, sanitized by the caller before display
	Date   time.Time
}

func (e *Error) Error() string {
	s := fmt.Sprintf("EST server answered %d", e.Status)
	if e.Type != "" {
		s += " (" + e.Type + ")"
	}
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

// SimpleReenroll sends the certification request csrDER (DER PKCS#10,
// signed by the new key) and returns the certificate the server issued.
func (c *Client) SimpleReenroll(ctx context.Context, csrDER []byte) (*x509.Certificate, Answer, error) {
	body, ans, err := c.do(ctx, "POST", est.PathSimpleReenroll, est.EncodeCSR(csrDER),
		http1.Field{Name: "Content-Type", Value: est.TypeCSR},
		http1.Field{Name: "Content-Transfer-Encoding", Value: est.TransferEncoding})
	if err != nil {
		return nil, ans, fmt.Errorf("est: simple re-enrollment: %w", err)
	}
	certs, err := est.DecodeCerts(body)
	if err != nil {
		return nil, ans, fmt.Errorf("est: simple re-enrollment: %w", err)
	}
	return certs[0], ans, nil
}

// CACerts returns the server's current CA certificates.
func (c *Client) CACerts(ctx context.Context) ([]*x509.Certificate, Answer, error) {
	body, ans, err := c.do(ctx, "GET", est.PathCACerts, nil)
	if err != nil {
		return nil, ans, fmt.Errorf("est: CA certificates: %w", err)
	}
	certs, err := est.DecodeCerts(body)
	if err != nil {
		return nil, ans, fmt.Errorf("est: CA certificates: %w", err)
	}
	return certs, ans, nil
}

// do makes one request and returns the body of a 200 answer whose media
// type is certs-only.
func (c *Client) do(ctx context.Context, method, op string, reqBody []byte, fields ...http1.Field) ([]byte, Answer, error) {
	var ans Answer
	if c.Base == nil || c.CA == nil || len(c.Cert.Certificate) == 0 {
		return nil, ans, errors.New("client not configured (base URL, CA, certificate)")
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	port := c.Base.Port()
	if port == "" {
		port = "443"
	}
	addr := net.JoinHostPort(c.Base.Hostname(), port)
	dial := c.Dial
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	raw, err := dial(ctx, "tcp", addr)
	if err != nil {
		return nil, ans, fmt.Errorf("connect %s: %w", addr, err)
	}
	defer raw.Close()
	stop := context.AfterFunc(ctx, func() { raw.Close() })
	defer stop()
	if d, ok := ctx.Deadline(); ok {
		_ = raw.SetDeadline(d)
	}
	cert := c.Cert
	conn := tls.Client(raw, &tls.Config{
		MinVersion:           tls.VersionTLS13,
		MaxVersion:           tls.VersionTLS13,
		RootCAs:              c.CA,
		ServerName:           c.Base.Hostname(),
		Time:                 c.Now,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil },
		NextProtos:           []string{"http/1.1"},
	})
	if err := conn.HandshakeContext(ctx); err != nil {
		return nil, ans, fmt.Errorf("TLS handshake with %s: %w", addr, err)
	}
	path := strings.TrimSuffix(c.Base.EscapedPath(), "/") + op
	if err := http1.WriteRequest(conn, method, path, c.Base.Host, reqBody, append(fields, http1.Field{Name: "User-Agent", Value: "zmonitor-est"})...); err != nil {
		return nil, ans, fmt.Errorf("send %s %s: %w", method, path, err)
	}
	br := bufio.NewReader(io.LimitReader(conn, est.MaxCertsBody+16<<10))
	head, err := http1.ReadResponseHead(br)
	if err != nil {
		return nil, ans, fmt.Errorf("read answer to %s %s: %w", method, path, err)
	}
	ans.Date = conncheck.ResponseDate(head)
	if head.Status != 200 {
		e := &Error{Status: head.Status, Date: ans.Date}
		if b, err := http1.ReadResponseBody(br, head, maxProblem); err == nil {
			e.Type, e.Detail = problemOf(head, b)
		}
		return nil, ans, e
	}
	mt, params, err := mime.ParseMediaType(head.Header.Get("Content-Type"))
	if err != nil || mt != est.TypeCertsOnlyBare || params["smime-type"] != "" && params["smime-type"] != "certs-only" {
		return nil, ans, fmt.Errorf("answer to %s %s has Content-Type %.80q, want %s", method, path, head.Header.Get("Content-Type"), est.TypeCertsOnly)
	}
	body, err := http1.ReadResponseBody(br, head, est.MaxCertsBody)
	if err != nil {
		return nil, ans, fmt.Errorf("answer to %s %s: %w", method, path, err)
	}
	return body, ans, nil
}

// problemOf reads an RFC 9457 problem body (application/problem+json);
// it returns "" for anything else.
func problemOf(h http1.ResponseHead, body []byte) (typ, detail string) {
	mt, _, err := mime.ParseMediaType(h.Header.Get("Content-Type"))
	if err != nil || mt != "application/problem+json" {
		return "", ""
	}
	var p struct {
		Type   string `json:"type"`
		Title  string `json:"title"`
		Detail string `json:"detail"`
	}
	if json.Unmarshal(body, &p) != nil {
		return "", ""
	}
	detail = p.Detail
	if detail == "" {
		detail = p.Title
	}
	const maxText = 200
	if len(detail) > maxText {
		detail = detail[:maxText]
	}
	if len(p.Type) > maxText {
		p.Type = ""
	}
	return p.Type, detail
}
