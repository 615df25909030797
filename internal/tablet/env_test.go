package tablet

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zmonitor/firmware/internal/central/job"
	"github.com/zmonitor/firmware/internal/central/server"
	"github.com/zmonitor/firmware/internal/central/store"
	"github.com/zmonitor/firmware/internal/clock"
	"github.com/zmonitor/firmware/internal/clock/clocktest"
	"github.com/zmonitor/firmware/internal/pairing"
	"github.com/zmonitor/firmware/internal/testpki"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// scriptProv is a hand-written job.Provisioner that plays a script: each
// poll of the tablet (each timer of the stepping clock) releases one
// progress step, and the last release returns the outcome.
type scriptProv struct {
	steps   []job.Progress
	outcome job.Outcome
	err     error

	release chan struct{}
	ack     chan bool // true: that release ended the job

	mu   sync.Mutex
	jobs []job.Job
}

func newScript(outcome job.Outcome, err error, steps ...job.Progress) *scriptProv {
	return &scriptProv{steps: steps, outcome: outcome, err: err, release: make(chan struct{}), ack: make(chan bool)}
}

func (p *scriptProv) Provision(ctx context.Context, j job.Job, progress func(job.Progress)) (job.Outcome, error) {
	p.mu.Lock()
	p.jobs = append(p.jobs, j)
	p.mu.Unlock()
	for _, s := range p.steps {
		select {
		case <-p.release:
		case <-ctx.Done():
			return job.Outcome{}, ctx.Err()
		}
		progress(s)
		p.ack <- false
	}
	select {
	case <-p.release:
	case <-ctx.Done():
		return job.Outcome{}, ctx.Err()
	}
	// The ack of the final release is sent by the clock's Wait on the
	// server: the outcome is recorded after Provision returns.
	go func() { p.ack <- true }()
	return p.outcome, p.err
}

func (p *scriptProv) calls() []job.Job {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]job.Job(nil), p.jobs...)
}

// stepClock is the tablet's clock in these tests: a fake clock whose timers
// fire at once, after advancing the time and letting the provisioner take
// one step. No sleeps, no races: every GET sees exactly one more step.
type stepClock struct {
	t    testing.TB
	fake *clocktest.Fake
	prov *scriptProv
	srv  *server.Server
	done bool
}

func (c *stepClock) Now() time.Time { return c.fake.Now() }

func (c *stepClock) NewTimer(d time.Duration) clock.Timer {
	c.fake.Advance(d)
	if !c.done {
		select {
		case c.prov.release <- struct{}{}:
			if final := <-c.prov.ack; final {
				c.srv.Wait() // the outcome is recorded
				c.done = true
			}
		case <-time.After(10 * time.Second): // safety net against a hang, never hit when the test passes
			c.t.Error("the provisioner was not running when the tablet polled")
			c.done = true
		}
	}
	ch := make(chan time.Time, 1)
	ch <- c.fake.Now()
	return firedTimer(ch)
}

type firedTimer chan time.Time

func (t firedTimer) C() <-chan time.Time { return t }
func (t firedTimer) Stop() bool          { return false }

// env is a real tablet API (server package, SQLite in a temp dir) behind a
// TLS 1.3 httptest server, with a scripted provisioner.
type env struct {
	t        testing.TB
	st       store.Store
	srv      *server.Server
	ts       *httptest.Server
	ca       *testpki.CA
	prov     *scriptProv
	clk      *stepClock
	token    string
	requests atomic.Int64
}

func newEnv(t testing.TB, prov *scriptProv) *env {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "c.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if prov == nil {
		prov = newScript(job.Outcome{State: "PROVISIONED"}, nil)
	}
	srv, err := server.New(server.Config{Store: st, Provisioner: prov})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	ca, err := testpki.NewCA("Test device CA", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.NewLeaf(testpki.ServerTemplate("central.test"), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, st: st, srv: srv, ca: ca, prov: prov}
	e.ts = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.requests.Add(1)
		srv.Handler().ServeHTTP(w, r)
	}))
	e.ts.TLS = server.TLSConfig(leaf.TLS())
	e.ts.StartTLS()
	t.Cleanup(e.ts.Close)
	tok, err := store.NewTechnicianToken(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.AddTechnician(ctx, tok.ID, "Ada", tok.Hash); err != nil {
		t.Fatal(err)
	}
	e.token = tok.Token
	e.clk = &stepClock{t: t, fake: clocktest.New(t0), prov: prov, srv: srv}
	return e
}

func (e *env) url() string { return "https://" + e.ts.Listener.Addr().String() }

// client returns a tablet client that trusts the test CA.
func (e *env) client(token string) *Client {
	e.t.Helper()
	c, err := New(e.url(), token, &Opts{RootCAs: e.ca.Pool(), Clock: e.clk})
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// device is an enrolled device with its identity key.
type device struct {
	id  string
	key *ecdsa.PrivateKey
}

func (e *env) enroll(id string) *device {
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
	return &device{id: id, key: k}
}

// unenrolled is a device the inventory does not know.
func unenrolled(id string) *device {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	return &device{id: id, key: k}
}

// session starts a pairing session on the device, as its screen would.
func (d *device) session(t testing.TB) *pairing.Session {
	t.Helper()
	s, err := pairing.NewSession(time.Now(), time.Now(), pairing.SessionOpts{
		DeviceID: d.id, DeviceSerial: "SN-" + d.id, IPAddress: "192.0.2.10", FirmwareVersion: "1.2.3", Signer: d.key,
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}
