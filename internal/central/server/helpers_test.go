package server

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/zmonitor/firmware/internal/base/clock/clocktest"
	"github.com/zmonitor/firmware/internal/central/job"
	"github.com/zmonitor/firmware/internal/central/store"
	"github.com/zmonitor/firmware/internal/proto/failure"
	"github.com/zmonitor/firmware/internal/proto/pairing"
	"github.com/zmonitor/firmware/internal/proto/state"
	"github.com/zmonitor/firmware/internal/proto/tabletwire"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// fakeProv is a hand-written job.Provisioner: it records calls, can hold
// them at a gate, and tracks how many run at once.
type fakeProv struct {
	mu       sync.Mutex
	calls    []job.Job
	inFlight int
	max      int
	gate     chan struct{} // nil: do not wait; else wait until closed
	entered  chan string   // if not nil, receives the device ID on entry
	result   func(job.Job) (job.Outcome, error)
}

func (f *fakeProv) Provision(ctx context.Context, j job.Job, progress func(job.Progress)) (job.Outcome, error) {
	f.mu.Lock()
	f.calls = append(f.calls, j)
	f.inFlight++
	f.max = max(f.max, f.inFlight)
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.inFlight--
		f.mu.Unlock()
	}()
	if f.entered != nil {
		f.entered <- j.DeviceID
	}
	if f.gate != nil {
		select {
		case <-f.gate:
		case <-ctx.Done():
			return job.Outcome{}, failure.New(failure.ConnectionFailed, "push", ctx.Err())
		}
	}
	progress(job.Progress{State: state.ApplyingConfig.String(), Step: "push"})
	if f.result != nil {
		return f.result(j)
	}
	return job.Outcome{State: state.Provisioned.String()}, nil
}

func (f *fakeProv) callCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

// testDevice is an enrolled device with its identity key.
type testDevice struct {
	id  string
	key *ecdsa.PrivateKey
}

// session starts a pairing session on the device, as its screen would.
func (d *testDevice) session(t testing.TB, now time.Time) *pairing.Session {
	t.Helper()
	s, err := pairing.NewSession(now, now, pairing.SessionOpts{
		DeviceID: d.id, DeviceSerial: "SN-" + d.id, IPAddress: "192.0.2.10", FirmwareVersion: "1.2.3", Signer: d.key,
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (d *testDevice) qr(t testing.TB, now time.Time) string {
	return string(d.session(t, now).QR().Marshal())
}

type env struct {
	t     testing.TB
	st    store.Store
	srv   *Server
	prov  *fakeProv
	clk   *clocktest.Fake
	token string // a valid technician token
	techs map[string]store.TechnicianToken
}

func newEnv(t testing.TB, prov *fakeProv, tweak func(*Config)) *env {
	t.Helper()
	if prov == nil {
		prov = &fakeProv{}
	}
	e := newEnvAt(t, "sqlite:"+filepath.Join(t.TempDir(), "c.db"), prov, tweak)
	e.prov = prov
	return e
}

// newEnvAt is newEnv on the database dsn, with any Provisioner.
func newEnvAt(t testing.TB, dsn string, prov job.Provisioner, tweak func(*Config)) *env {
	t.Helper()
	clk := clocktest.New(t0)
	st, err := store.Open(context.Background(), dsn, &store.Opts{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cfg := Config{Store: st, Provisioner: prov, Clock: clk}
	if tweak != nil {
		tweak(&cfg)
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	e := &env{t: t, st: st, srv: srv, clk: clk, techs: map[string]store.TechnicianToken{}}
	e.token = e.addTechnician("Ada").Token
	return e
}

func (e *env) addTechnician(name string) store.TechnicianToken {
	tok, err := store.NewTechnicianToken(nil)
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.st.AddTechnician(context.Background(), tok.ID, name, tok.Hash); err != nil {
		e.t.Fatal(err)
	}
	e.techs[name] = tok
	return tok
}

func (e *env) enroll(id string) *testDevice {
	e.t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	idDER, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	pDER, _ := x509.MarshalPKIXPublicKey(&p.PublicKey)
	if _, err := e.st.ImportDevice(context.Background(), store.Enrollment{
		DeviceID: id, DeviceSerial: "SN-" + id, IdentitySPKI: idDER, PayloadSPKI: pDER, FirmwareVersion: "1.2.3",
	}); err != nil {
		e.t.Fatal(err)
	}
	return &testDevice{id: id, key: k}
}

// do sends a request with the given bearer token ("" for none).
func (e *env) do(method, path, token string, body any) *httptest.ResponseRecorder {
	e.t.Helper()
	var rd *bytes.Reader
	switch b := body.(type) {
	case nil:
		rd = bytes.NewReader(nil)
	case string:
		rd = bytes.NewReader([]byte(b))
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req := httptest.NewRequest(method, path, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	w := httptest.NewRecorder()
	e.srv.Handler().ServeHTTP(w, req)
	return w
}

func decode[T any](t testing.TB, w *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
		t.Fatalf("answer %d %q: %v", w.Code, w.Body.String(), err)
	}
	return v
}

func (e *env) pairing(id string) tabletwire.PairingView {
	e.t.Helper()
	w := e.do(http.MethodGet, "/v1/pairings/"+id, e.token, nil)
	if w.Code != http.StatusOK {
		e.t.Fatalf("GET pairing %s: %d %s", id, w.Code, w.Body)
	}
	return decode[tabletwire.PairingView](e.t, w)
}

// wantRefusal checks that w is a refusal with code r.
func wantRefusal(t testing.TB, w *httptest.ResponseRecorder, r Refusal) tabletwire.ErrorResponse {
	t.Helper()
	if w.Code != r.HTTPStatus() {
		t.Errorf("status %d, want %d (%s): %s", w.Code, r.HTTPStatus(), r, w.Body)
	}
	er := decode[tabletwire.ErrorResponse](t, w)
	if er.Error.Code != r.String() || er.Error.Title == "" {
		t.Errorf("refusal %+v, want %s", er.Error, r)
	}
	return er
}

func netSplit(s string) (string, string, error) { return net.SplitHostPort(s) }
