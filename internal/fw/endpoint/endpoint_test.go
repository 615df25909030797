package endpoint_test

import (
	"github.com/zmonitor/firmware/internal/proto/devicewire"

	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zmonitor/firmware/internal/central/deviceclient"
	"github.com/zmonitor/firmware/internal/fw/endpoint"
	"github.com/zmonitor/firmware/internal/proto/failure"
	"github.com/zmonitor/firmware/internal/testkit/testpki"
)

// fakeDevice answers like the engine would, recording what it was given.
type fakeDevice struct {
	identity *ecdsa.PrivateKey
	payload  *ecdh.PrivateKey

	mu        sync.Mutex
	tokens    []string
	envelopes [][]byte
	helloErr  error
	configErr error
	steps     []devicewire.Progress
	refusals  []string
}

func (d *fakeDevice) Hello(_ context.Context, req devicewire.HelloRequest, peer *x509.Certificate) (devicewire.HelloResponse, error) {
	d.mu.Lock()
	d.tokens = append(d.tokens, req.PairingToken)
	err := d.helloErr
	d.mu.Unlock()
	if err != nil {
		return devicewire.HelloResponse{}, err
	}
	if peer == nil {
		return devicewire.HelloResponse{}, errors.New("no peer certificate")
	}
	ck, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "ZM-001"}}, ck)
	if err != nil {
		return devicewire.HelloResponse{}, err
	}
	nonce := make([]byte, devicewire.NonceSize)
	_, _ = rand.Read(nonce)
	return devicewire.NewHello(d.identity, "ZM-001", nonce, d.payload.PublicKey(), csr)
}

func (d *fakeDevice) Config(_ context.Context, env []byte, _ *x509.Certificate) (<-chan devicewire.Progress, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.configErr != nil {
		return nil, d.configErr
	}
	d.envelopes = append(d.envelopes, env)
	ch := make(chan devicewire.Progress, len(d.steps))
	for _, s := range d.steps {
		ch <- s
	}
	close(ch)
	return ch, nil
}

func (d *fakeDevice) Refuse(_ context.Context, code failure.Code, nonce []byte, reason string, peer *x509.Certificate) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if peer == nil {
		return errors.New("no peer certificate")
	}
	d.refusals = append(d.refusals, fmt.Sprintf("%s %x %s", code, nonce[:4], reason))
	return nil
}

func (d *fakeDevice) Status() devicewire.Status { return devicewire.Status{State: "READY_TO_PAIR"} }

type rig struct {
	dev      *fakeDevice
	srv      *endpoint.Server
	addr     string
	anchor   *testpki.CA
	signer   *testpki.Leaf
	refusals chan endpoint.Refusal
}

func newRig(t *testing.T) *rig {
	t.Helper()
	return newRigWith(t, nil, nil)
}

// newRigWith serves dev (nil: the rig's fakeDevice) with the options tweak
// changes.
func newRigWith(t *testing.T, dev func(*fakeDevice) endpoint.Device, tweak func(*endpoint.Opts)) *rig {
	t.Helper()
	now := time.Now()
	id, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pk, _ := ecdh.P256().GenerateKey(rand.Reader)
	anchor, err := testpki.NewCA("provisioning root", now)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := anchor.NewLeaf(testpki.ClientTemplate("central station signer"), now)
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{dev: &fakeDevice{identity: id, payload: pk}, anchor: anchor, signer: signer, refusals: make(chan endpoint.Refusal, 16)}
	o := endpoint.Opts{Identity: id, DeviceID: "ZM-001", Anchors: anchor.Pool(), OnRefused: func(x endpoint.Refusal) { r.refusals <- x }}
	if tweak != nil {
		tweak(&o)
	}
	var d endpoint.Device = r.dev
	if dev != nil {
		d = dev(r.dev)
	}
	r.srv, err = endpoint.NewServer(d, o)
	if err != nil {
		t.Fatal(err)
	}
	a, err := r.srv.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.addr = a.String()
	t.Cleanup(func() {
		r.srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := r.srv.Wait(ctx); err != nil {
			t.Errorf("connections still open 15 s after Close: %v", err)
		}
	})
	return r
}

func (r *rig) client(cert tls.Certificate) *deviceclient.Client {
	return deviceclient.New(r.addr, &r.dev.identity.PublicKey, "ZM-001", deviceclient.Opts{Certificate: cert, Timeout: 10 * time.Second})
}

func TestHelloRoundTrip(t *testing.T) {
	r := newRig(t)
	c := r.client(r.signer.TLS())
	defer c.Close()
	h, err := c.Hello(context.Background(), "tok-123")
	if err != nil {
		t.Fatal(err)
	}
	if h.DeviceID != "ZM-001" || len(h.SessionNonce) != devicewire.NonceSize || !h.PayloadKey.Equal(r.dev.payload.PublicKey()) {
		t.Errorf("hello = %+v", h)
	}
	if r.dev.tokens[0] != "tok-123" {
		t.Errorf("device saw token %q", r.dev.tokens[0])
	}
}

func TestClientCertificateMustChainToAnchor(t *testing.T) {
	r := newRig(t)
	rogue, _ := testpki.NewCA("rogue root", time.Now())
	imposter, _ := rogue.NewLeaf(testpki.ClientTemplate("central station signer"), time.Now())
	c := r.client(imposter.TLS())
	defer c.Close()
	if _, err := c.Hello(context.Background(), "tok"); err == nil {
		t.Fatal("hello from an untrusted signer succeeded")
	}
	select {
	case ref := <-r.refusals:
		// The refused certificate is named in the reason, never as the
		// peer: anyone can write any subject into a certificate.
		if ref.Code != failure.SignerUntrusted || ref.Peer != "" || !strings.Contains(ref.Err.Error(), "central station signer") || !strings.HasPrefix(ref.Remote, "127.0.0.1:") {
			t.Errorf("refusal = %+v", ref)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("refused handshake was not reported for the audit log")
	}
	if len(r.dev.tokens) != 0 {
		t.Error("the device saw a request from an untrusted signer")
	}
	// No certificate at all.
	c2 := r.client(tls.Certificate{})
	defer c2.Close()
	if _, err := c2.Hello(context.Background(), "tok"); err == nil {
		t.Fatal("hello without a client certificate succeeded")
	}
}

func TestClientRefusesDeviceWithOtherKey(t *testing.T) {
	r := newRig(t)
	stranger, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	c := deviceclient.New(r.addr, &stranger.PublicKey, "ZM-001", deviceclient.Opts{Certificate: r.signer.TLS()})
	defer c.Close()
	_, err := c.Hello(context.Background(), "tok")
	if !errors.Is(err, deviceclient.ErrIdentityMismatch) {
		t.Fatalf("want the identity-key mismatch, got %v", err)
	}
}

func TestTLS12Refused(t *testing.T) {
	r := newRig(t)
	conf := &tls.Config{MaxVersion: tls.VersionTLS12, InsecureSkipVerify: true, Certificates: []tls.Certificate{r.signer.TLS()}}
	conn, err := tls.Dial("tcp", r.addr, conf)
	if err == nil {
		conn.Close()
		t.Fatal("TLS 1.2 handshake succeeded")
	}
}

func TestRefusals(t *testing.T) {
	r := newRig(t)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS13, InsecureSkipVerify: true, Certificates: []tls.Certificate{r.signer.TLS()}}}}
	defer hc.CloseIdleConnections()
	cases := []struct {
		name, method, path, body string
		status                   int
		code                     failure.Code
	}{
		{"unknown field", "POST", "/v1/hello", `{"pairingToken":"x","admin":true}`, 400, failure.PayloadMalformed},
		{"trailing data", "POST", "/v1/hello", `{"pairingToken":"x"} {}`, 400, failure.PayloadMalformed},
		{"not json", "POST", "/v1/hello", "\x00\xff", 400, failure.PayloadMalformed},
		{"too large hello", "POST", "/v1/hello", `{"pairingToken":"` + strings.Repeat("A", devicewire.MaxHelloRequest) + `"}`, 413, failure.PayloadMalformed},
		{"too large envelope", "POST", "/v1/config", strings.Repeat("A", devicewire.MaxEnvelope+1), 413, failure.PayloadMalformed},
		{"wrong method", "GET", "/v1/hello", "", 405, failure.PayloadMalformed},
		{"unknown path", "GET", "/admin", "", 404, failure.PayloadMalformed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest(c.method, "https://"+r.addr+c.path, strings.NewReader(c.body))
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != c.status {
				t.Errorf("status %d, want %d", resp.StatusCode, c.status)
			}
			select {
			case ref := <-r.refusals:
				if ref.Code != c.code || ref.Err == nil {
					t.Errorf("refusal %+v, want code %s", ref, c.code)
				}
			case <-time.After(5 * time.Second):
				t.Error("refusal not reported")
			}
		})
	}
}

func TestDeviceRefusalCarriesCode(t *testing.T) {
	r := newRig(t)
	r.dev.helloErr = failure.Errorf(failure.TokenInvalid, "check token", "not the current or previous token")
	c := r.client(r.signer.TLS())
	defer c.Close()
	_, err := c.Hello(context.Background(), "stale")
	var re *deviceclient.RefusedError
	if !errors.As(err, &re) || re.Code() != failure.TokenInvalid || re.HTTPStatus != http.StatusForbidden {
		t.Fatalf("err = %v", err)
	}
	if !strings.Contains(re.Body.Message, "not the current or previous token") {
		t.Errorf("message lost: %q", re.Body.Message)
	}
}

func TestConfigStreamsProgressToFinal(t *testing.T) {
	r := newRig(t)
	r.dev.steps = []devicewire.Progress{
		{State: "PAIRING_RECEIVED", Step: "verifying"},
		{State: "APPLYING_CONFIG"},
		{State: "TESTING_CONNECTION"},
		{State: "PROVISIONED", Final: true},
	}
	c := r.client(r.signer.TLS())
	defer c.Close()
	var seen []string
	final, err := c.PushConfig(context.Background(), []byte(`{"version":1}`), func(p devicewire.Progress) { seen = append(seen, p.State) })
	if err != nil {
		t.Fatal(err)
	}
	if final.State != "PROVISIONED" || strings.Join(seen, ",") != "PAIRING_RECEIVED,APPLYING_CONFIG,TESTING_CONNECTION,PROVISIONED" {
		t.Errorf("final %+v, seen %v", final, seen)
	}
	if string(r.dev.envelopes[0]) != `{"version":1}` {
		t.Errorf("device got %q", r.dev.envelopes[0])
	}
	// A stream that ends without a final step is an error.
	r.dev.steps = []devicewire.Progress{{State: "PAIRING_RECEIVED"}}
	if _, err := c.PushConfig(context.Background(), []byte(`{}`), nil); err == nil {
		t.Error("a stream without a final step was accepted")
	}
	st, err := c.Status(context.Background())
	if err != nil || st.State != "READY_TO_PAIR" {
		t.Errorf("status = %+v, %v", st, err)
	}
}

func TestCloseClosesThePort(t *testing.T) {
	r := newRig(t)
	if !r.srv.Listening() {
		t.Fatal("not listening after Start")
	}
	if _, err := r.srv.Start("127.0.0.1:0"); err == nil {
		t.Error("second Start succeeded")
	}
	r.srv.Close()
	if r.srv.Listening() {
		t.Error("Listening after Close")
	}
	if conn, err := net.DialTimeout("tcp", r.addr, time.Second); err == nil {
		conn.Close()
		t.Fatal("port still open after Close")
	}
	// It can open again (next READY_TO_PAIR).
	if _, err := r.srv.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
}

// Requests net/http would have taken apart are refused by the device's own
// HTTP/1.1 reader with a status and an audited refusal.
func TestMalformedHTTPRefused(t *testing.T) {
	r := newRig(t)
	for _, c := range []struct {
		name, raw string
		status    string
	}{
		{"chunked body", "POST /v1/hello HTTP/1.1\r\nHost: d\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "HTTP/1.1 501 "},
		{"http/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "HTTP/1.1 505 "},
		{"huge head", "GET /v1/status HTTP/1.1\r\nX: " + strings.Repeat("a", 9000) + "\r\n\r\n", "HTTP/1.1 431 "},
	} {
		t.Run(c.name, func(t *testing.T) {
			conn, err := tls.Dial("tcp", r.addr, &tls.Config{MinVersion: tls.VersionTLS13, InsecureSkipVerify: true, Certificates: []tls.Certificate{r.signer.TLS()}})
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.WriteString(conn, c.raw); err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(conn)
			if !strings.HasPrefix(string(b), c.status) || !strings.Contains(string(b), "Connection: close") {
				t.Errorf("answer %.120q, want %q", b, c.status)
			}
			select {
			case ref := <-r.refusals:
				if ref.Code != failure.PayloadMalformed {
					t.Errorf("refusal %+v", ref)
				}
			case <-time.After(5 * time.Second):
				t.Error("refusal not reported")
			}
		})
	}
	if len(r.dev.tokens) != 0 {
		t.Error("the device saw a malformed request")
	}
}

// Close returns at once; a connection that proved its certificate but
// never sends its request is cut after the grace period.
func TestCloseCutsIdleConnections(t *testing.T) {
	r := newRig(t)
	conn, err := tls.Dial("tcp", r.addr, &tls.Config{MinVersion: tls.VersionTLS13, InsecureSkipVerify: true, Certificates: []tls.Certificate{r.signer.TLS()}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	r.srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := r.srv.Wait(ctx); err != nil {
		t.Fatalf("idle connection not cut after the grace period: %v", err)
	}
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Read(make([]byte, 1)); err == nil {
		t.Error("connection still open after Close")
	}
}

// A body over the limit is refused with 413 before it is read; the client,
// still sending, must get that answer and not a connection reset (the
// server drains a little before closing).
func TestOversizedBodyGetsItsAnswer(t *testing.T) {
	r := newRig(t)
	conn, err := tls.Dial("tcp", r.addr, &tls.Config{MinVersion: tls.VersionTLS13, InsecureSkipVerify: true, Certificates: []tls.Certificate{r.signer.TLS()}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := fmt.Fprintf(conn, "POST /v1/config HTTP/1.1\r\nHost: d\r\nContent-Length: %d\r\n\r\n", 10<<20); err != nil {
		t.Fatal(err)
	}
	// Part of the body, more than the server reads, then read the answer.
	if _, err := conn.Write(make([]byte, 300<<10)); err != nil {
		t.Fatalf("write body: %v", err)
	}
	b, err := io.ReadAll(conn)
	if !strings.HasPrefix(string(b), "HTTP/1.1 413 ") {
		t.Fatalf("answer %.80q, %v; want 413", b, err)
	}
}

// stuckDevice's Hello waits for the connection's context: an engine that
// is busy, from the connection's point of view.
type stuckDevice struct {
	*fakeDevice
	entered chan struct{}
	ended   chan error
}

func (d stuckDevice) Hello(ctx context.Context, _ devicewire.HelloRequest, _ *x509.Certificate) (devicewire.HelloResponse, error) {
	d.entered <- struct{}{}
	<-ctx.Done()
	d.ended <- ctx.Err()
	return devicewire.HelloResponse{}, failure.New(failure.SessionExpired, "hello", ctx.Err())
}

// Close never waits for a connection, not even one whose request is stuck
// in the device: it returns at once and the request's context ends with
// the port, so the connection ends too.
func TestCloseNeverWaitsForAConnection(t *testing.T) {
	stuck := stuckDevice{entered: make(chan struct{}, 1), ended: make(chan error, 1)}
	r := newRigWith(t, func(f *fakeDevice) endpoint.Device { stuck.fakeDevice = f; return stuck }, nil)
	c := r.client(r.signer.TLS())
	defer c.Close()
	helloErr := make(chan error, 1)
	go func() { _, err := c.Hello(context.Background(), "tok"); helloErr <- err }()
	<-stuck.entered
	closed := make(chan struct{})
	go func() { r.srv.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(15 * time.Second):
		t.Fatal("Close waited for a connection")
	}
	if err := <-stuck.ended; !errors.Is(err, context.Canceled) {
		t.Errorf("the request's context ended with %v, want canceled by Close", err)
	}
	if err := <-helloErr; err == nil {
		t.Error("hello succeeded on a closed port")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := r.srv.Wait(ctx); err != nil {
		t.Fatalf("connections left after Close: %v", err)
	}
}

// dialFrom opens a TLS connection with the signer's certificate from the
// local address ip and completes the handshake: the connection is open and
// idle on the device.
func (r *rig) dialFrom(t *testing.T, ip string) *tls.Conn {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 10 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", r.addr, &tls.Config{MinVersion: tls.VersionTLS13, InsecureSkipVerify: true, Certificates: []tls.Certificate{r.signer.TLS()}})
	if err != nil {
		t.Fatalf("connection from %s: %v", ip, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// closedAtOnce opens a TCP connection from ip and reports whether the
// device closed it without a word, and the refusal it reported.
func (r *rig) closedAtOnce(t *testing.T, ip string) (bool, endpoint.Refusal) {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 10 * time.Second}
	c, err := d.Dial("tcp", r.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var ref endpoint.Refusal
	select {
	case ref = <-r.refusals:
	case <-time.After(5 * time.Second): // the handshake timeout is 10 s
		return false, ref
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = c.Read(make([]byte, 1))
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout()), ref
}

// Connections over the caps (per address, then in all) are closed at once
// and each is reported; one address cannot take the whole port.
func TestConnectionCaps(t *testing.T) {
	r := newRigWith(t, nil, func(o *endpoint.Opts) { o.MaxConns, o.MaxConnsPerHost = 4, 2 })
	r.dialFrom(t, "127.0.0.1")
	first := r.dialFrom(t, "127.0.0.1")
	closed, ref := r.closedAtOnce(t, "127.0.0.1")
	if !closed || ref.Code != failure.TooManyAttempts || !strings.Contains(ref.Err.Error(), "from this address") || !strings.HasPrefix(ref.Remote, "127.0.0.1:") {
		t.Errorf("third connection from one address: closed %v, refusal %+v", closed, ref)
	}
	// Another address still gets in, up to the total.
	r.dialFrom(t, "127.0.0.2")
	r.dialFrom(t, "127.0.0.2")
	closed, ref = r.closedAtOnce(t, "127.0.0.3")
	if !closed || ref.Code != failure.TooManyAttempts || !strings.Contains(ref.Err.Error(), "4 connections open") {
		t.Errorf("fifth connection in all: closed %v, refusal %+v", closed, ref)
	}
	// A connection that ends frees its place.
	first.Close()
	deadline := time.Now().Add(time.Minute)
	for {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.3")}, Timeout: 10 * time.Second}
		c, err := tls.DialWithDialer(d, "tcp", r.addr, &tls.Config{MinVersion: tls.VersionTLS13, InsecureSkipVerify: true, Certificates: []tls.Certificate{r.signer.TLS()}})
		if err == nil {
			c.Close()
			break
		}
		<-r.refusals
		if time.Now().After(deadline) {
			t.Fatal("the place of a closed connection was not freed")
		}
	}
}

// The signer's certificate is no secret: a client that presents it
// without its key fails the handshake (TLS 1.3 checks the signature after
// the chain), and that refusal is reported too.
func TestSignerCertificateWithoutItsKeyIsReported(t *testing.T) {
	r := newRig(t)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	stolen := tls.Certificate{Certificate: [][]byte{r.signer.Cert.Raw}, PrivateKey: other}
	c := r.client(stolen)
	defer c.Close()
	if _, err := c.Hello(context.Background(), "tok"); err == nil {
		t.Fatal("hello with the signer's certificate and another key succeeded")
	}
	select {
	case ref := <-r.refusals:
		if ref.Code != failure.SignerUntrusted || ref.Peer != "" || !strings.Contains(ref.Err.Error(), "chains to the provisioning anchor, but the handshake failed") || !strings.Contains(ref.Err.Error(), "invalid signature") || !strings.HasPrefix(ref.Remote, "127.0.0.1:") {
			t.Errorf("refusal = %+v", ref)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a handshake with the signer's certificate and another key was not reported")
	}
	if len(r.dev.tokens) != 0 {
		t.Error("the device saw the request")
	}
}

// The Central Station's refusal of an exchange reaches the device with its
// code, the hello's nonce and the reason; a refusal the device does not
// take answers its error.
func TestRefusalReachesTheDevice(t *testing.T) {
	r := newRig(t)
	c := r.client(r.signer.TLS())
	defer c.Close()
	h, err := c.Hello(context.Background(), "tok")
	if err != nil {
		t.Fatal(err)
	}
	st, err := c.Refuse(context.Background(), h.SessionNonce, failure.FirmwareNotTrusted, "image not allowed")
	if err != nil || st.State != "READY_TO_PAIR" {
		t.Fatalf("Refuse = %+v, %v", st, err)
	}
	r.dev.mu.Lock()
	got := r.dev.refusals
	r.dev.mu.Unlock()
	if want := fmt.Sprintf("FIRMWARE_NOT_TRUSTED %x image not allowed", h.SessionNonce[:4]); len(got) != 1 || got[0] != want {
		t.Fatalf("device got %q, want %q", got, want)
	}
	// A code a Central Station may not refuse a device with: 400, the
	// device never sees it.
	_, err = c.Refuse(context.Background(), h.SessionNonce, failure.ConnectionFailed, "x")
	var re *deviceclient.RefusedError
	if !errors.As(err, &re) || re.HTTPStatus != 400 || re.Body.Code != failure.PayloadMalformed.String() {
		t.Fatalf("refusal with CONNECTION_FAILED: %v", err)
	}
	if r.dev.mu.Lock(); len(r.dev.refusals) != 1 {
		t.Errorf("the device saw %d refusals", len(r.dev.refusals))
	}
	r.dev.mu.Unlock()
}
