package deviceclient

import (
	"encoding/base64"
	"github.com/zmonitor/firmware/internal/proto/devicewire"

	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"reflect"
	"time"

	"github.com/zmonitor/firmware/internal/proto/failure"
	"github.com/zmonitor/firmware/internal/proto/strictjson"
)

// RefusedError is a refusal by the device.
type RefusedError struct {
	HTTPStatus int
	Body       devicewire.ErrorBody
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("device refused (%d %s): %s", e.HTTPStatus, e.Body.Code, e.Body.Message)
}

// Code is the failure code the device gave.
func (e *RefusedError) Code() failure.Code {
	c, err := failure.Parse(e.Body.Code)
	if err != nil {
		return failure.Internal
	}
	return c
}

// ErrIdentityMismatch: the device's TLS certificate is not of the identity
// key the inventory holds for the device: another device (or something
// else) answers at the address.
var ErrIdentityMismatch = errors.New("the device's certificate is not of the identity key enrolled for it")

// ConnectError is a failure to connect or to complete the TLS handshake:
// no request reached the device.
type ConnectError struct {
	Addr string
	Err  error
}

func (e *ConnectError) Error() string { return fmt.Sprintf("connect to %s: %v", e.Addr, e.Err) }

func (e *ConnectError) Unwrap() error { return e.Err }

// RemoteAlert returns the TLS alert the device sent, if err is one (the
// device refused the handshake).
func RemoteAlert(err error) (uint8, bool) {
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "remote error" {
		return 0, false
	}
	// crypto/tls reports a received alert as an OpError "remote error"
	// around its unexported alert type, a uint8.
	if v := reflect.ValueOf(op.Err); v.IsValid() && v.Kind() == reflect.Uint8 {
		return uint8(v.Uint()), true
	}
	return 0, false
}

// Client talks to one device's provisioning endpoint. The device's TLS
// certificate is accepted only if its key is the pinned identity key.
type Client struct {
	addr     string
	identity *ecdsa.PublicKey
	deviceID string
	http     *http.Client
}

// Opts configure a Client.
type Opts struct {
	// Certificate is the provisioning signer's certificate and key (with
	// its chain up to, not including, the anchor).
	Certificate tls.Certificate
	// Dial overrides how the TCP connection is made (tests, tunnels).
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Timeout bounds each request (default 2 minutes: a push waits for the
	// device's connection test).
	Timeout time.Duration
}

// New returns a client for the device at addr ("host:port").
func New(addr string, identity *ecdsa.PublicKey, deviceID string, o Opts) *Client {
	if o.Timeout == 0 {
		o.Timeout = 2 * time.Minute
	}
	tlsConf := &tls.Config{
		MinVersion:   tls.VersionTLS13,
		MaxVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{o.Certificate},
		// The device's certificate is self-signed: it is checked against
		// the pinned identity key below instead of a CA.
		InsecureSkipVerify: true, //nolint:gosec // pinned in VerifyPeerCertificate
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			return verifyPinned(raw, identity)
		},
	}
	tr := &http.Transport{
		TLSClientConfig:     tlsConf,
		ForceAttemptHTTP2:   false,
		TLSHandshakeTimeout: 15 * time.Second,
		DisableKeepAlives:   false,
		MaxIdleConnsPerHost: 1,
		Proxy:               nil,
	}
	dial := o.Dial
	if dial == nil {
		dial = (&net.Dialer{Timeout: 15 * time.Second}).DialContext
	}
	// The TLS handshake is made here rather than by the transport, so
	// that a failure before any request was sent is known as such
	// (ConnectError).
	tr.DialTLSContext = func(ctx context.Context, network, a string) (net.Conn, error) {
		raw, err := dial(ctx, network, a)
		if err != nil {
			return nil, &ConnectError{Addr: a, Err: err}
		}
		conn := tls.Client(raw, tlsConf)
		hctx, cancel := context.WithTimeout(ctx, tr.TLSHandshakeTimeout)
		defer cancel()
		if err := conn.HandshakeContext(hctx); err != nil {
			raw.Close()
			return nil, &ConnectError{Addr: a, Err: fmt.Errorf("TLS handshake: %w", err)}
		}
		return conn, nil
	}
	return &Client{addr: addr, identity: identity, deviceID: deviceID, http: &http.Client{Transport: tr, Timeout: o.Timeout}}
}

func verifyPinned(raw [][]byte, identity *ecdsa.PublicKey) error {
	if len(raw) == 0 {
		return errors.New("device presented no certificate")
	}
	cert, err := x509.ParseCertificate(raw[0])
	if err != nil {
		return fmt.Errorf("device certificate: %w", err)
	}
	pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
	if !ok || !pub.Equal(identity) {
		return ErrIdentityMismatch
	}
	if err := cert.CheckSignature(cert.SignatureAlgorithm, cert.RawTBSCertificate, cert.Signature); err != nil {
		return fmt.Errorf("device certificate self-signature: %w", err)
	}
	return nil
}

// Close releases idle connections.
func (c *Client) Close() { c.http.CloseIdleConnections() }

func (c *Client) do(ctx context.Context, method, path string, body []byte) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, "https://"+c.addr+path, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		var eb devicewire.ErrorBody
		b, _ := io.ReadAll(io.LimitReader(resp.Body, devicewire.MaxResponse))
		if strictjson.Decode(b, &eb) != nil || eb.Code == "" {
			eb = devicewire.ErrorBody{Code: failure.Internal.String(), Message: fmt.Sprintf("unexpected answer: %.200q", b)}
		}
		return nil, &RefusedError{HTTPStatus: resp.StatusCode, Body: eb}
	}
	return resp, nil
}

// Hello opens a pairing exchange. token is the scanned pairing token, or
// empty for a typed pairing code. The answer is verified against the pinned
// identity key.
func (c *Client) Hello(ctx context.Context, token string) (*devicewire.VerifiedHello, error) {
	return c.AttestedHello(ctx, token, nil)
}

// AttestedHello is Hello with an attestation nonce (nil: none) for the
// device's quote; the answer's Evidence (or Unmeasured) is still to be
// checked (internal/central/attestation).
func (c *Client) AttestedHello(ctx context.Context, token string, attestationNonce []byte) (*devicewire.VerifiedHello, error) {
	req := devicewire.HelloRequest{PairingToken: token}
	if attestationNonce != nil {
		req.AttestationNonce = base64.RawURLEncoding.EncodeToString(attestationNonce)
	}
	body, _ := json.Marshal(req)
	resp, err := c.do(ctx, http.MethodPost, "/v1/hello", body)
	if err != nil {
		return nil, fmt.Errorf("hello: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, devicewire.MaxResponse))
	if err != nil {
		return nil, fmt.Errorf("hello: read answer: %w", err)
	}
	h, err := devicewire.ParseHelloResponse(b)
	if err != nil {
		return nil, fmt.Errorf("hello: %w", err)
	}
	return h.Verify(c.identity, c.deviceID)
}

// PushConfig sends the envelope and follows the device's progress to the
// final step, calling onProgress (if not nil) for each. It returns the final
// progress; a final PROVISIONING_FAILED is returned with a nil error: the
// push was delivered, the device refused it.
func (c *Client) PushConfig(ctx context.Context, envelope []byte, onProgress func(devicewire.Progress)) (devicewire.Progress, error) {
	resp, err := c.do(ctx, http.MethodPost, "/v1/config", envelope)
	if err != nil {
		return devicewire.Progress{}, fmt.Errorf("push config: %w", err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 4096), devicewire.MaxResponse)
	var last devicewire.Progress
	for sc.Scan() {
		var p devicewire.Progress
		if err := strictjson.Decode(sc.Bytes(), &p); err != nil {
			return last, fmt.Errorf("push config: progress line: %w", err)
		}
		if onProgress != nil {
			onProgress(p)
		}
		last = p
		if p.Final {
			return p, nil
		}
	}
	if err := sc.Err(); err != nil {
		return last, fmt.Errorf("push config: progress stream: %w", err)
	}
	return last, errors.New("push config: stream ended before the final state")
}

// Refuse tells the device that the Central Station will not provision it
// in the exchange whose hello had sessionNonce (FIRMWARE_NOT_TRUSTED): the
// device shows the failure instead of waiting for a push. It returns the
// device's state after it.
func (c *Client) Refuse(ctx context.Context, sessionNonce []byte, code failure.Code, reason string) (devicewire.Status, error) {
	body, _ := json.Marshal(devicewire.NewRefusal(sessionNonce, code, reason))
	resp, err := c.do(ctx, http.MethodPost, "/v1/refusal", body)
	if err != nil {
		return devicewire.Status{}, fmt.Errorf("refusal: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, devicewire.MaxResponse))
	if err != nil {
		return devicewire.Status{}, fmt.Errorf("refusal: read answer: %w", err)
	}
	var st devicewire.Status
	if err := strictjson.Decode(b, &st); err != nil {
		return devicewire.Status{}, fmt.Errorf("refusal: answer: %w", err)
	}
	return st, nil
}

// Status asks for the device's state.
func (c *Client) Status(ctx context.Context) (devicewire.Status, error) {
	resp, err := c.do(ctx, http.MethodGet, "/v1/status", nil)
	if err != nil {
		return devicewire.Status{}, fmt.Errorf("status: %w", err)
	}
	defer resp.Body.Close()
	var s devicewire.Status
	b, err := io.ReadAll(io.LimitReader(resp.Body, devicewire.MaxResponse))
	if err != nil {
		return devicewire.Status{}, fmt.Errorf("status: %w", err)
	}
	if err := strictjson.Decode(b, &s); err != nil {
		return devicewire.Status{}, fmt.Errorf("status: %w", err)
	}
	return s, nil
}
