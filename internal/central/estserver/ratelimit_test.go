package estserver

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zmonitor/firmware/internal/central/ca"
	"github.com/zmonitor/firmware/internal/central/store"
	"github.com/zmonitor/firmware/internal/central/store/pgtest"
	"github.com/zmonitor/firmware/internal/proto/est"
	"github.com/zmonitor/firmware/internal/testkit/testpki"
)

// fakeNow is a clock the test moves.
type fakeNow struct {
	mu sync.Mutex
	t  time.Time
}

func (f *fakeNow) Now() time.Time { f.mu.Lock(); defer f.mu.Unlock(); return f.t }
func (f *fakeNow) Add(d time.Duration) {
	f.mu.Lock()
	f.t = f.t.Add(d)
	f.mu.Unlock()
}

// station is an EST server on SQLite with one provisioned device.
type station struct {
	srv   *Server
	st    store.Store
	clock *fakeNow
	leafs map[string]*x509.Certificate
}

func newStation(t *testing.T, limit RateLimit, devices ...string) *station {
	t.Helper()
	ctx := context.Background()
	clk := &fakeNow{t: time.Now()}
	root, err := testpki.NewCA("est test CA", clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, pgtest.SQLiteDSN(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	issuer, err := ca.New(root.Cert, root.Key, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(Config{CA: issuer, Store: st, Now: clk.Now, RateLimit: limit})
	if err != nil {
		t.Fatal(err)
	}
	s := &station{srv: srv, st: st, clock: clk, leafs: map[string]*x509.Certificate{}}
	for _, id := range devices {
		if _, err := st.ImportDevice(ctx, store.Enrollment{DeviceID: id, DeviceSerial: "SN-" + id, IdentitySPKI: spki(t), PayloadSPKI: spki(t), FirmwareVersion: "1.0.0"}); err != nil {
			t.Fatal(err)
		}
		leaf, err := issuer.IssueClient(csr(t, id), id, clk.Now())
		if err != nil {
			t.Fatal(err)
		}
		if err := st.RecordCertificate(ctx, id, "p-"+id, leaf.Raw); err != nil {
			t.Fatal(err)
		}
		if err := st.MarkCertificateInUse(ctx, store.CertificateSerial(leaf)); err != nil {
			t.Fatal(err)
		}
		s.leafs[id] = leaf
	}
	return s
}

func spki(t *testing.T) []byte {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	return der
}

func csr(t *testing.T, id string) *x509.CertificateRequest {
	t.Helper()
	der := csrDER(t, id)
	c, err := x509.ParseCertificateRequest(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func csrDER(t *testing.T, id string) []byte {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leafTmpl := x509.CertificateRequest{}
	leafTmpl.Subject.CommonName = id
	der, err := x509.CreateCertificateRequest(rand.Reader, &leafTmpl, k)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// reenroll sends a simple re-enrollment of device id with its current
// certificate (the TLS layer's verified chain, as the listener sets it).
func (s *station) reenroll(t *testing.T, id string) *httptest.ResponseRecorder {
	t.Helper()
	leaf := s.leafs[id]
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: leaf.Subject, DNSNames: leaf.DNSNames}, k)
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodPost, est.WellKnown+est.PathSimpleReenroll, strings.NewReader(string(est.EncodeCSR(der))))
	r.Header.Set("Content-Type", est.TypeCSR)
	r.TLS = &tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{leaf}}}
	w := httptest.NewRecorder()
	s.srv.Handler().ServeHTTP(w, r)
	return w
}

func (s *station) events(t *testing.T, event string) []store.AuditRecord {
	t.Helper()
	var out []store.AuditRecord
	if err := s.st.ExportAudit(context.Background(), func(r store.AuditRecord) error {
		if r.Event == event {
			out = append(out, r)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestRenewalRateLimitPerDevice(t *testing.T) {
	s := newStation(t, RateLimit{Requests: 2, Interval: time.Hour}, "ZM-001", "ZM-002")
	for i := range 2 {
		if w := s.reenroll(t, "ZM-001"); w.Code != http.StatusOK {
			t.Fatalf("request %d within the limit: %d %s", i+1, w.Code, w.Body)
		}
		s.clock.Add(10 * time.Minute)
	}
	// Third request 20 min after the first: refused until the first is an
	// hour old (40 min).
	w := s.reenroll(t, "ZM-001")
	if w.Code != http.StatusTooManyRequests {
		t.Fatalf("third request in an hour: %d %s, want 429", w.Code, w.Body)
	}
	if got := w.Header().Get("Retry-After"); got != "2400" {
		t.Errorf("Retry-After %q, want 2400 (the first request leaves the window in 40 min)", got)
	}
	var p struct{ Type string }
	if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil || p.Type != ProblemTooManyRequests {
		t.Errorf("problem %s: %v", w.Body, err)
	}
	// Refused again: audited once per interval, not per request.
	s.clock.Add(time.Minute)
	if w := s.reenroll(t, "ZM-001"); w.Code != http.StatusTooManyRequests {
		t.Fatalf("fourth request: %d", w.Code)
	}
	if got := s.events(t, "est.rate_limited"); len(got) != 1 || got[0].DeviceID != "ZM-001" {
		t.Fatalf("est.rate_limited records %+v, want one for ZM-001", got)
	}
	// Another device is not limited by this one.
	if w := s.reenroll(t, "ZM-002"); w.Code != http.StatusOK {
		t.Fatalf("another device: %d %s", w.Code, w.Body)
	}
	// The refused requests issued nothing: 2 renewals of ZM-001.
	if got := len(s.events(t, "certificate.renewed")); got != 3 {
		t.Errorf("%d certificate.renewed records, want 3 (2 of ZM-001, 1 of ZM-002)", got)
	}
	// Once the first request is an hour old, one more is allowed.
	s.clock.Add(39 * time.Minute)
	if w := s.reenroll(t, "ZM-001"); w.Code != http.StatusOK {
		t.Fatalf("after the window: %d %s", w.Code, w.Body)
	}
	// And a new burst of refusals an interval later is audited again.
	s.reenroll(t, "ZM-001")
	s.clock.Add(time.Hour)
	for range 3 {
		s.reenroll(t, "ZM-001")
	}
	if got := len(s.events(t, "est.rate_limited")); got != 2 {
		t.Errorf("%d est.rate_limited records after a second interval of refusals, want 2", got)
	}
}

func TestRateLimitRefusedSettings(t *testing.T) {
	root, err := testpki.NewCA("x", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	issuer, _ := ca.New(root.Cert, root.Key, nil)
	st, err := store.Open(context.Background(), pgtest.SQLiteDSN(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, l := range []RateLimit{{Requests: 0, Interval: time.Hour}, {Requests: 3, Interval: -time.Second}} {
		if _, err := New(Config{CA: issuer, Store: st, RateLimit: l}); err == nil {
			t.Errorf("rate limit %+v accepted", l)
		}
	}
}

func TestLimiterForgetsIdleDevices(t *testing.T) {
	l := newLimiter(RateLimit{Requests: 1, Interval: time.Minute})
	t0 := time.Now()
	for i := range 1023 {
		l.take(string(rune('a'+i%26))+string(rune(i)), t0)
	}
	l.take("last", t0.Add(2*time.Minute)) // the 1024th call prunes
	if len(l.dev) != 1 {
		t.Fatalf("%d devices kept after an idle interval, want 1", len(l.dev))
	}
}
