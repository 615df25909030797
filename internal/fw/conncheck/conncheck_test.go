package conncheck

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zmonitor/firmware/internal/fw/sys/http1"
	"github.com/zmonitor/firmware/internal/proto/failure"
	"github.com/zmonitor/firmware/internal/testkit/testpki"
)

type pki struct {
	serverCA, deviceCA, otherCA *testpki.CA
	server, client, stranger    *testpki.Leaf
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	now := time.Now()
	p := &pki{}
	var err error
	must := func(e error) {
		if e != nil {
			t.Fatal(e)
		}
	}
	p.serverCA, err = testpki.NewCA("monitoring CA", now)
	must(err)
	p.deviceCA, err = testpki.NewCA("device CA", now)
	must(err)
	p.otherCA, err = testpki.NewCA("other CA", now)
	must(err)
	p.server, err = p.serverCA.NewLeaf(testpki.ServerTemplate("monitoring.hospital.test"), now)
	must(err)
	p.client, err = p.deviceCA.NewLeaf(testpki.ClientTemplate("ZM-001"), now)
	must(err)
	p.stranger, err = p.otherCA.NewLeaf(testpki.ClientTemplate("ZM-666"), now)
	must(err)
	return p
}

// server is an HTTPS server requiring a client certificate from the device CA.
type server struct {
	*httptest.Server
	mu    sync.Mutex
	peers []string // client certificate CNs seen
	paths []string
	sni   []string
}

func newServer(t *testing.T, p *pki, tweak func(*tls.Config)) *server {
	t.Helper()
	s := &server{}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.paths = append(s.paths, r.URL.Path)
		if len(r.TLS.PeerCertificates) > 0 {
			s.peers = append(s.peers, r.TLS.PeerCertificates[0].Subject.CommonName)
		}
		s.mu.Unlock()
		switch r.URL.Path {
		case "/health", "/base/health":
			io.WriteString(w, "ok")
		case "/big":
			for i := 0; i < 1024; i++ {
				w.Write(make([]byte, 1024))
			}
		case "/bigheader":
			w.Header().Set("X-Big", strings.Repeat("a", MaxResponse))
		case "/fail":
			http.Error(w, "database down", http.StatusInternalServerError)
		default:
			http.NotFound(w, r)
		}
	})
	s.Server = httptest.NewUnstartedServer(mux)
	s.Server.Config.ErrorLog = log.New(io.Discard, "", 0)
	cfg := &tls.Config{
		Certificates: []tls.Certificate{p.server.TLS()},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    p.deviceCA.Pool(),
		GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
			s.mu.Lock()
			s.sni = append(s.sni, h.ServerName)
			s.mu.Unlock()
			return nil, nil
		},
	}
	if tweak != nil {
		tweak(cfg)
	}
	s.Server.TLS = cfg
	s.Server.StartTLS()
	t.Cleanup(s.Server.Close)
	return s
}

// sleeps records backoff waits instead of sleeping.
type sleeps struct{ d []time.Duration }

func (s *sleeps) sleep(ctx context.Context, d time.Duration) error {
	s.d = append(s.d, d)
	return ctx.Err()
}

func config(p *pki, url string, sl *sleeps) Config {
	return Config{ServerURL: url, CA: p.serverCA.Pool(), ClientCert: p.client.TLS(), Sleep: sl.sleep}
}

func wantReason(t *testing.T, err error, r Reason) *Error {
	t.Helper()
	if failure.CodeOf(err) != failure.ConnectionFailed {
		t.Fatalf("err = %v, want a ConnectionFailed failure", err)
	}
	if got := ReasonOf(err); got != r {
		t.Fatalf("reason %s, want %s (err: %v)", got, r, err)
	}
	t.Logf("%v", err)
	var e *Error
	errors.As(err, &e)
	return e
}

func TestSuccess(t *testing.T) {
	p := newPKI(t)
	s := newServer(t, p, nil)
	var sl sleeps
	res, err := Run(context.Background(), config(p, s.URL, &sl))
	if err != nil {
		t.Fatal(err)
	}
	if res.Attempts != 1 || res.Status != 200 || res.Duration <= 0 {
		t.Errorf("Result = %+v", res)
	}
	// net/http sends a Date: the time the device learns from the server.
	if d := time.Since(res.Date); res.Date.IsZero() || d < -time.Minute || d > time.Hour {
		t.Errorf("Result.Date = %v, not the server's time", res.Date)
	}
	if len(s.peers) != 1 || s.peers[0] != "ZM-001" || s.paths[0] != "/health" {
		t.Errorf("server saw peers %v paths %v", s.peers, s.paths)
	}
	if len(sl.d) != 0 {
		t.Errorf("slept %v", sl.d)
	}
}

// The server's DNS name works too (localhost is in the certificate), and a
// base path in serverUrl prefixes the health path.
func TestSuccessByNameWithBasePath(t *testing.T) {
	p := newPKI(t)
	s := newServer(t, p, nil)
	url := strings.Replace(s.URL, "127.0.0.1", "monitoring.hospital.test", 1) + "/base/"
	c := config(p, url, &sleeps{})
	addr := s.Listener.Addr().String()
	c.Dial = func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}
	if _, err := Run(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	if s.paths[0] != "/base/health" || s.sni[0] != "monitoring.hospital.test" {
		t.Errorf("path %v, SNI %v", s.paths, s.sni)
	}
}

func TestUntrustedServer(t *testing.T) {
	p := newPKI(t)
	s := newServer(t, p, nil)
	var sl sleeps
	c := config(p, s.URL, &sl)
	c.CA = p.otherCA.Pool()
	res, err := Run(context.Background(), c)
	wantReason(t, err, TLSVerify)
	if res.Attempts != 1 || len(sl.d) != 0 {
		t.Errorf("certificate failure retried: %+v, sleeps %v", res, sl.d)
	}
	if !strings.Contains(err.Error(), "not trusted by the configured CA") {
		t.Errorf("err = %v", err)
	}
}

func TestServerNameMismatch(t *testing.T) {
	p := newPKI(t)
	s := newServer(t, p, nil)
	var sl sleeps
	url := strings.Replace(s.URL, "127.0.0.1", "monitoring.other.test", 1)
	c := config(p, url, &sl)
	addr := s.Listener.Addr().String()
	c.Dial = func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}
	_, err := Run(context.Background(), c)
	wantReason(t, err, TLSVerify)
	var he x509.HostnameError
	if !errors.As(err, &he) {
		t.Errorf("err = %v, want a hostname error in the chain", err)
	}
}

func TestClientCertRejected(t *testing.T) {
	p := newPKI(t)
	s := newServer(t, p, nil)
	var sl sleeps
	c := config(p, s.URL, &sl)
	c.ClientCert = p.stranger.TLS()
	res, err := Run(context.Background(), c)
	wantReason(t, err, ClientCertRejected)
	if res.Attempts != 1 || len(sl.d) != 0 {
		t.Errorf("rejection retried: %+v", res)
	}
	if len(s.paths) != 0 {
		t.Error("request reached the handler")
	}
}

func TestRefusedRetried(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	p := newPKI(t)
	var sl sleeps
	res, err := Run(context.Background(), config(p, "https://"+addr, &sl))
	e := wantReason(t, err, Refused)
	if res.Attempts != 3 || e.Attempts != 3 {
		t.Errorf("attempts %d / %d, want 3", res.Attempts, e.Attempts)
	}
	if len(sl.d) != 2 || sl.d[0] != time.Second || sl.d[1] != 2*time.Second {
		t.Errorf("backoff %v, want [1s 2s]", sl.d)
	}
}

func TestBackoffDoublesToCap(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	var sl sleeps
	c := config(newPKI(t), "https://"+addr, &sl)
	c.Attempts, c.Backoff = MaxAttempts, 10*time.Second
	if _, err := Run(context.Background(), c); ReasonOf(err) != Refused {
		t.Fatal(err)
	}
	want := []time.Duration{10 * time.Second, 20 * time.Second, 30 * time.Second}
	if len(sl.d) != MaxAttempts-1 || sl.d[0] != want[0] || sl.d[1] != want[1] || sl.d[2] != want[2] || sl.d[8] != MaxBackoff {
		t.Errorf("backoff %v", sl.d)
	}
}

// A server that accepts and never speaks: a real (short) timeout.
func TestTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var held []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range held {
			c.Close()
		}
		mu.Unlock()
	})
	var sl sleeps
	c := config(newPKI(t), "https://"+ln.Addr().String(), &sl)
	c.AttemptTimeout, c.Attempts = 200*time.Millisecond, 2
	start := time.Now()
	res, err := Run(context.Background(), c)
	wantReason(t, err, Timeout)
	if res.Attempts != 2 || len(sl.d) != 1 {
		t.Errorf("timeout not retried once: %+v, %v", res, sl.d)
	}
	if d := time.Since(start); d < 400*time.Millisecond || d > time.Second {
		t.Errorf("took %v, want about 400 ms", d)
	}
}

func TestBadStatus(t *testing.T) {
	p := newPKI(t)
	s := newServer(t, p, nil)
	var sl sleeps
	c := config(p, s.URL, &sl)
	c.HealthPath = "/fail"
	res, err := Run(context.Background(), c)
	e := wantReason(t, err, BadStatus)
	if e.Status != 500 || res.Status != 500 || !strings.Contains(err.Error(), "500") {
		t.Errorf("status %d / %d, err %v", e.Status, res.Status, err)
	}
	if res.Attempts != 3 {
		t.Errorf("5xx tried %d times, want 3", res.Attempts)
	}

	sl = sleeps{}
	c = config(p, s.URL, &sl)
	c.HealthPath = "/nope"
	res, err = Run(context.Background(), c)
	if e := wantReason(t, err, BadStatus); e.Status != 404 || res.Attempts != 1 {
		t.Errorf("404: status %d, attempts %d", e.Status, res.Attempts)
	}
}

func TestResponseSizeLimited(t *testing.T) {
	p := newPKI(t)
	s := newServer(t, p, nil)
	c := config(p, s.URL, &sleeps{})
	c.HealthPath = "/big" // 1 MiB body: read up to the limit, then closed
	if _, err := Run(context.Background(), c); err != nil {
		t.Errorf("big body: %v", err)
	}
	c.HealthPath = "/bigheader"
	c.Attempts = 1
	_, err := Run(context.Background(), c)
	wantReason(t, err, Protocol)
	if !strings.Contains(err.Error(), "headers larger than") {
		t.Errorf("err = %v", err)
	}
}

func TestTLS12OnlyServer(t *testing.T) {
	p := newPKI(t)
	s := newServer(t, p, func(c *tls.Config) { c.MaxVersion = tls.VersionTLS12 })
	var sl sleeps
	res, err := Run(context.Background(), config(p, s.URL, &sl))
	wantReason(t, err, TLSVersion)
	if res.Attempts != 1 {
		t.Errorf("attempts %d", res.Attempts)
	}
}

func TestNotTLS(t *testing.T) {
	p := newPKI(t)
	plain := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(plain.Close)
	c := config(p, strings.Replace(plain.URL, "http:", "https:", 1), &sleeps{})
	_, err := Run(context.Background(), c)
	wantReason(t, err, Protocol)
}

func TestDNS(t *testing.T) {
	p := newPKI(t)
	for _, tc := range []struct {
		name     string
		err      *net.DNSError
		attempts int
	}{
		{"not found", &net.DNSError{Err: "no such host", Name: "monitoring.hospital.test", IsNotFound: true}, 1},
		{"timeout", &net.DNSError{Err: "i/o timeout", Name: "monitoring.hospital.test", IsTimeout: true}, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var sl sleeps
			c := config(p, "https://monitoring.hospital.test:8443", &sl)
			var dialed string
			c.Dial = func(_ context.Context, _, addr string) (net.Conn, error) {
				dialed = addr
				return nil, &net.OpError{Op: "dial", Net: "tcp", Err: tc.err}
			}
			res, err := Run(context.Background(), c)
			wantReason(t, err, DNS)
			if res.Attempts != tc.attempts || dialed != "monitoring.hospital.test:8443" {
				t.Errorf("attempts %d (want %d), dialed %q", res.Attempts, tc.attempts, dialed)
			}
		})
	}
}

// failingKey is a client key whose signing fails (a TPM error).
type failingKey struct{ crypto.Signer }

func (failingKey) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	return nil, errors.New("tpm: TPM_RC_LOCKOUT")
}

func TestClientKeyFailure(t *testing.T) {
	p := newPKI(t)
	s := newServer(t, p, nil)
	c := config(p, s.URL, &sleeps{})
	c.ClientCert.PrivateKey = failingKey{p.client.Key}
	_, err := Run(context.Background(), c)
	wantReason(t, err, ClientKey)
	if !strings.Contains(err.Error(), "TPM_RC_LOCKOUT") {
		t.Errorf("err = %v", err)
	}
}

func TestCanceled(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	p := newPKI(t)
	ctx, cancel := context.WithCancel(context.Background())
	c := config(p, "https://"+addr, nil)
	c.Sleep = func(ctx context.Context, d time.Duration) error {
		cancel()
		return ctx.Err()
	}
	res, err := Run(ctx, c)
	wantReason(t, err, Canceled)
	if res.Attempts != 1 || !errors.Is(err, context.Canceled) {
		t.Errorf("attempts %d, err %v", res.Attempts, err)
	}
	// Already canceled: no attempt is made.
	_, err = Run(ctx, config(p, "https://"+addr, &sleeps{}))
	wantReason(t, err, Canceled)
}

func TestDefaultSleep(t *testing.T) {
	if err := sleep(context.Background(), time.Millisecond); err != nil {
		t.Error(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Errorf("sleep on a canceled context: %v", err)
	}
}

func TestConfigErrors(t *testing.T) {
	p := newPKI(t)
	tests := []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"empty URL", func(c *Config) { c.ServerURL = "" }, "empty"},
		{"http", func(c *Config) { c.ServerURL = "http://monitoring.hospital.test" }, `scheme "http"`},
		{"no scheme", func(c *Config) { c.ServerURL = "monitoring.hospital.test:8443" }, "scheme"},
		{"no host", func(c *Config) { c.ServerURL = "https://" }, "no host"},
		{"port only", func(c *Config) { c.ServerURL = "https://:8443" }, "no host"},
		{"user info", func(c *Config) { c.ServerURL = "https://admin:pw@monitoring.hospital.test" }, "user information"},
		{"query", func(c *Config) { c.ServerURL = "https://monitoring.hospital.test/?x=1" }, "query"},
		{"fragment", func(c *Config) { c.ServerURL = "https://monitoring.hospital.test/#x" }, "fragment"},
		{"port zero", func(c *Config) { c.ServerURL = "https://monitoring.hospital.test:0" }, "port"},
		{"port too big", func(c *Config) { c.ServerURL = "https://monitoring.hospital.test:65536" }, "port"},
		{"bad URL", func(c *Config) { c.ServerURL = "https://monitoring hospital" }, "server URL"},
		{"huge URL", func(c *Config) { c.ServerURL = "https://a/" + strings.Repeat("a", 3000) }, "limit 2048"},
		{"no CA", func(c *Config) { c.CA = nil }, "no CA"},
		{"no client cert", func(c *Config) { c.ClientCert = tls.Certificate{} }, "no client certificate"},
		{"key not a signer", func(c *Config) { c.ClientCert.PrivateKey = "secret" }, "not a crypto.Signer"},
		{"key mismatch", func(c *Config) { c.ClientCert.PrivateKey = p.stranger.Key }, "does not match"},
		{"health path", func(c *Config) { c.HealthPath = "health" }, "health path"},
		{"health query", func(c *Config) { c.HealthPath = "/health?x" }, "health path"},
		{"attempts", func(c *Config) { c.Attempts = -1 }, "attempts"},
		{"too many attempts", func(c *Config) { c.Attempts = 100 }, "attempts"},
		{"timeout", func(c *Config) { c.AttemptTimeout = -1 }, "timeout"},
		{"backoff", func(c *Config) { c.Backoff = -1 }, "backoff"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := config(p, "https://monitoring.hospital.test:8443", &sleeps{})
			c.Dial = func(context.Context, string, string) (net.Conn, error) {
				t.Fatal("dialed with a bad configuration")
				return nil, nil
			}
			tc.mod(&c)
			res, err := Run(context.Background(), c)
			wantReason(t, err, BadConfig)
			if !strings.Contains(err.Error(), tc.want) || res.Attempts != 0 {
				t.Errorf("err = %v (attempts %d), want it to mention %q", err, res.Attempts, tc.want)
			}
		})
	}
}

func TestReasons(t *testing.T) {
	seen := map[string]bool{}
	for r := None; r < reasonCount; r++ {
		if r.String() == "" || r.Text() == "" || seen[r.String()] {
			t.Errorf("reason %d: %q %q", int(r), r.String(), r.Text())
		}
		seen[r.String()] = true
	}
	if Reason(99).String() != "REASON(99)" || Reason(-1).Text() != "unknown" {
		t.Error("out of range reason")
	}
	if ReasonOf(nil) != None || ReasonOf(errors.New("x")) != Protocol {
		t.Error("ReasonOf of nil or a foreign error")
	}
}

func TestRemoteAlert(t *testing.T) {
	if a, ok := remoteAlert(tls.AlertError(116)); !ok || a != 116 {
		t.Errorf("AlertError: %d %v", a, ok)
	}
	if _, ok := remoteAlert(errors.New("remote error: tls: bad certificate")); ok {
		t.Error("a plain error taken for an alert")
	}
}

func TestResponseDate(t *testing.T) {
	h := func(v string) http1.ResponseHead {
		return http1.ResponseHead{Header: textproto.MIMEHeader{"Date": {v}}}
	}
	if got := ResponseDate(h("Sun, 06 Nov 2033 08:49:37 GMT")); !got.Equal(time.Date(2033, 11, 6, 8, 49, 37, 0, time.UTC)) {
		t.Errorf("IMF-fixdate read as %v", got)
	}
	for _, v := range []string{"", "yesterday", "Sun, 06 Nov 2033 08:49:37 CET", "Sunday, 06-Nov-33 08:49:37 GMT"} {
		if got := ResponseDate(h(v)); !got.IsZero() {
			t.Errorf("%q read as %v", v, got)
		}
	}
}
