package tablet

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/zmonitor/firmware/internal/base/clock"
	"github.com/zmonitor/firmware/internal/proto/tabletwire"
)

// Defaults.
const (
	DefaultRequestTimeout = 30 * time.Second
	// DefaultRetryInterval is the wait before a broken progress stream is
	// opened again.
	DefaultRetryInterval = time.Second
	// DefaultMaxStreamFailures is how many progress streams in a row may
	// break (network) before Pair gives up following a pairing.
	DefaultMaxStreamFailures = 5
	// DefaultStreamIdle: a progress stream silent this long is dead (the
	// Central Station writes a keep-alive every 15 s).
	DefaultStreamIdle = 45 * time.Second
	// maxToken bounds a technician token.
	maxToken = 256
)

// Opts configures a Client. A nil *Opts is the zero Opts; the caller's
// struct is copied, never written to.
type Opts struct {
	// RootCAs is the trust for the Central Station's TLS certificate (its
	// device CA, device-ca.pem, written by `zm-central init`). Required
	// unless HTTPClient is set. The client speaks TLS 1.3 only and always
	// verifies the certificate.
	RootCAs *x509.CertPool
	// ServerName overrides the name checked in the Central Station's
	// certificate (default: the host of the base URL).
	ServerName string
	// DialContext, if set, opens the TCP connections (tests).
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// HTTPClient, if set, is used as it is instead of the client built
	// from the fields above (tests).
	HTTPClient *http.Client
	// RequestTimeout bounds one HTTP request (default 30 s).
	RequestTimeout time.Duration
	// RetryInterval, MaxStreamFailures, StreamIdle: see their defaults.
	RetryInterval     time.Duration
	MaxStreamFailures int
	StreamIdle        time.Duration
	// Clock measures the timeline and paces the stream retries (default
	// clock.System).
	Clock clock.Clock
}

// Client talks to one Central Station's tablet API as one technician.
type Client struct {
	base  *url.URL
	token string
	http  *http.Client
	opts  Opts
}

// New returns a client of the tablet API at baseURL (https only, e.g.
// "https://127.0.0.1:8443") that authenticates with the technician's bearer
// token.
func New(baseURL, token string, opts *Opts) (*Client, error) {
	var o Opts
	if opts != nil {
		o = *opts
	}
	base, err := parseBase(baseURL)
	if err != nil {
		return nil, err
	}
	if err := checkToken(token); err != nil {
		return nil, err
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = DefaultRequestTimeout
	}
	if o.RetryInterval <= 0 {
		o.RetryInterval = DefaultRetryInterval
	}
	if o.MaxStreamFailures <= 0 {
		o.MaxStreamFailures = DefaultMaxStreamFailures
	}
	if o.StreamIdle <= 0 {
		o.StreamIdle = DefaultStreamIdle
	}
	if o.Clock == nil {
		o.Clock = clock.System{}
	}
	hc := o.HTTPClient
	if hc == nil {
		if o.RootCAs == nil {
			return nil, errors.New("tablet: no trust for the Central Station's certificate: give its CA (device-ca.pem)")
		}
		tr := &http.Transport{
			TLSClientConfig: &tls.Config{
				MinVersion: tls.VersionTLS13,
				RootCAs:    o.RootCAs,
				ServerName: o.ServerName,
			},
			ForceAttemptHTTP2:   true,
			TLSHandshakeTimeout: 10 * time.Second,
			IdleConnTimeout:     time.Minute,
			Proxy:               nil, // the Central Station is on the hospital network
		}
		if o.DialContext != nil {
			tr.DialContext = o.DialContext
		} else {
			tr.DialContext = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
		}
		hc = &http.Client{
			Transport: tr,
			// A redirect would carry the bearer token elsewhere.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	return &Client{base: base, token: token, http: hc, opts: o}, nil
}

func parseBase(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("tablet: Central Station URL: %w", err)
	}
	switch {
	case u.Scheme != "https":
		return nil, fmt.Errorf("tablet: Central Station URL %q: https:// required (the token must not travel in clear)", s)
	case u.Host == "" || u.Opaque != "":
		return nil, fmt.Errorf("tablet: Central Station URL %q: no host", s)
	case u.User != nil || u.RawQuery != "" || u.Fragment != "":
		return nil, fmt.Errorf("tablet: Central Station URL %q: only https://host[:port][/path] is allowed", s)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawPath = ""
	return u, nil
}

// checkToken checks a token's shape: printable ASCII without spaces. It
// never repeats the token.
func checkToken(t string) error {
	if t == "" {
		return errors.New("tablet: empty technician token")
	}
	if len(t) > maxToken {
		return fmt.Errorf("tablet: technician token longer than %d bytes", maxToken)
	}
	for i := 0; i < len(t); i++ {
		if t[i] <= ' ' || t[i] >= 0x7f {
			return fmt.Errorf("tablet: technician token: byte %d is not printable ASCII", i+1)
		}
	}
	return nil
}

// endpoint returns the URL of path under the base.
func (c *Client) endpoint(path string) string {
	u := *c.base
	u.Path = c.base.Path + path
	return u.String()
}

// do sends one request and decodes a 2xx answer into out; any other answer
// is an *APIError.
func (c *Client) do(ctx context.Context, method, path string, body any, want int, out any) error {
	ctx, cancel := context.WithTimeout(ctx, c.opts.RequestTimeout)
	defer cancel()
	var rd *bytes.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("%s %s: encode: %w", method, path, err)
		}
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.endpoint(path), rd)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return fmt.Errorf("%s %s: %w", method, path, context.Canceled)
		}
		return explainTransport(c.base.Host, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != want {
		return apiError(resp)
	}
	if err := tabletwire.DecodeAnswer(resp.Body, out); err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	return nil
}

// TransportError is a failure to talk to the Central Station at all.
type TransportError struct {
	Host string
	Hint string // what is probably wrong, for the technician
	Err  error
}

func (e *TransportError) Error() string {
	return fmt.Sprintf("cannot talk to the Central Station at %s: %s: %v", e.Host, e.Hint, e.Err)
}

func (e *TransportError) Unwrap() error { return e.Err }

// explainTransport names the likely cause of a transport error.
func explainTransport(host string, err error) error {
	var (
		unknownCA   x509.UnknownAuthorityError
		hostErr     x509.HostnameError
		invalidCert x509.CertificateInvalidError
		verifyErr   *tls.CertificateVerificationError
		opErr       *net.OpError
	)
	hint := "check the tablet's network and the Central Station's address"
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		hint = "no answer in time; check the network, then retry"
	case errors.As(err, &unknownCA):
		hint = "its certificate is not signed by the CA given to this tablet (--ca): wrong CA file or wrong server"
	case errors.As(err, &hostErr):
		hint = "its certificate is not for this address: use the host name IT gave you"
	case errors.As(err, &invalidCert):
		hint = "its certificate is not valid now (expired, or this tablet's clock is wrong)"
	case errors.As(err, &verifyErr):
		hint = "its certificate could not be verified"
	case errors.As(err, &opErr) && opErr.Op == "dial":
		hint = "connection refused or unreachable: is zm-central serve running at this address?"
	}
	return &TransportError{Host: host, Hint: hint, Err: err}
}
