package tablettest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zmonitor/firmware/internal/base/clock"
	"github.com/zmonitor/firmware/internal/base/clock/clocktest"
	"github.com/zmonitor/firmware/internal/central/job"
	"github.com/zmonitor/firmware/internal/central/server"
	"github.com/zmonitor/firmware/internal/central/store"
	"github.com/zmonitor/firmware/internal/proto/pairing"
	"github.com/zmonitor/firmware/internal/proto/tabletwire"
	"github.com/zmonitor/firmware/internal/testkit/testpki"
)

// Start is the fake clock's start.
var Start = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// Script is a hand-written job.Provisioner that plays a script: each
// reading of Central.Clock by the tablet releases one progress step, and
// the release after the last step returns the outcome.
type Script struct {
	steps   []job.Progress
	outcome job.Outcome
	err     error

	release chan struct{}
	ack     chan bool // true: that release ended the job

	mu   sync.Mutex
	jobs []job.Job
}

// NewScript returns a provisioner that reports steps, then returns
// outcome and err.
func NewScript(outcome job.Outcome, err error, steps ...job.Progress) *Script {
	return &Script{steps: steps, outcome: outcome, err: err, release: make(chan struct{}), ack: make(chan bool)}
}

// Provision implements job.Provisioner.
func (p *Script) Provision(ctx context.Context, j job.Job, progress func(job.Progress)) (job.Outcome, error) {
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
	// The outcome is recorded after Provision returns: the clock waits
	// for the server once it gets this ack.
	go func() { p.ack <- true }()
	return p.outcome, p.err
}

// Jobs returns the jobs Provision received.
func (p *Script) Jobs() []job.Job {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]job.Job(nil), p.jobs...)
}

// stepClock is the tablet's clock: a fake clock that moves the script
// along. Once the Central Station has accepted a pairing, each reading of
// the clock (the tablet reads it to stamp each progress event) returns the
// time, then advances it by Step and lets the provisioner take one step,
// waiting until the Central Station has recorded it: the event of that
// step reaches the tablet on its progress stream after it, and every
// event is one Step after the one before. No sleeps and no races. Its
// timers fire at once.
type stepClock struct {
	c    *Central
	mu   sync.Mutex
	fake *clocktest.Fake
	done bool
}

// Step is the time between two events of a scripted pairing.
const Step = 250 * time.Millisecond

func (c *stepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.fake.Now()
	if c.done || !c.c.accepted.Load() {
		return now
	}
	c.fake.Advance(Step)
	select {
	case c.c.Prov.release <- struct{}{}:
		if final := <-c.c.Prov.ack; final {
			c.c.Server.Wait() // the outcome is recorded
			c.done = true
		}
	case <-time.After(10 * time.Second): // a safety net against a hang, never reached when tests pass
		c.c.hung.Store(true)
		c.done = true
	}
	return now
}

func (c *stepClock) NewTimer(d time.Duration) clock.Timer {
	c.mu.Lock()
	c.fake.Advance(d)
	now := c.fake.Now()
	c.mu.Unlock()
	ch := make(chan time.Time, 1)
	ch <- now
	return firedTimer(ch)
}

type firedTimer chan time.Time

func (t firedTimer) C() <-chan time.Time { return t }
func (t firedTimer) Stop() bool          { return false }

// Central is the real tablet API (internal/central/server, SQLite in dir)
// behind a TLS 1.3 httptest server, with a scripted provisioner.
type Central struct {
	Store  store.Store
	Server *server.Server
	HTTP   *httptest.Server
	CA     *testpki.CA
	Prov   *Script
	// Clock is the clock to give the tablet client (tablet.Opts.Clock).
	Clock clock.Clock
	// Token is a valid technician token.
	Token string

	requests atomic.Int64
	hung     atomic.Bool
	// accepted is set once the API accepted a pairing: a provisioner runs.
	accepted atomic.Bool

	mu    sync.Mutex
	paths []string
	// BreakStreams, when above zero, is how many progress streams the
	// Central Station cuts after their first event (a network failure).
	BreakStreams atomic.Int32
}

// Requests lists the method and path of every request, in order.
func (c *Central) RequestLog() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.paths...)
}

// NewCentral starts a Central Station with a database in dir. A nil prov
// provisions every device at the first poll.
func NewCentral(dir string, prov *Script) (*Central, error) {
	ctx := context.Background()
	st, err := store.Open(ctx, "sqlite:"+filepath.Join(dir, "central.db"), nil)
	if err != nil {
		return nil, err
	}
	if prov == nil {
		prov = NewScript(job.Outcome{State: "PROVISIONED"}, nil)
	}
	srv, err := server.New(server.Config{Store: st, Provisioner: prov})
	if err != nil {
		st.Close()
		return nil, err
	}
	c := &Central{Store: st, Server: srv, Prov: prov}
	fail := func(err error) (*Central, error) {
		c.Close()
		return nil, err
	}
	if c.CA, err = testpki.NewCA("Test device CA", time.Now()); err != nil {
		return fail(err)
	}
	leaf, err := c.CA.NewLeaf(testpki.ServerTemplate("central.test"), time.Now())
	if err != nil {
		return fail(err)
	}
	c.HTTP = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.requests.Add(1)
		c.mu.Lock()
		c.paths = append(c.paths, r.Method+" "+r.URL.Path)
		c.mu.Unlock()
		if strings.HasSuffix(r.URL.Path, "/events") && c.BreakStreams.Add(-1) >= 0 {
			w = &breakingWriter{ResponseWriter: w}
		}
		srv.Handler().ServeHTTP(&statusRecorder{ResponseWriter: w, central: c, pairing: r.Method == http.MethodPost && r.URL.Path == tabletwire.PairingsPath}, r)
	}))
	c.HTTP.TLS = server.TLSConfig(leaf.TLS())
	c.HTTP.StartTLS()
	tok, err := store.NewTechnicianToken(nil)
	if err != nil {
		return fail(err)
	}
	if _, err := st.AddTechnician(ctx, tok.ID, "Ada", tok.Hash); err != nil {
		return fail(err)
	}
	c.Token = tok.Token
	c.Clock = &stepClock{c: c, fake: clocktest.New(Start)}
	return c, nil
}

// URL is the tablet API's base URL.
func (c *Central) URL() string { return "https://" + c.HTTP.Listener.Addr().String() }

// CAPEM is the CA the tablet must trust, PEM encoded.
func (c *Central) CAPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.CA.Cert.Raw})
}

// Requests is how many HTTP requests the API received.
func (c *Central) Requests() int64 { return c.requests.Load() }

// Err reports a test harness failure (a step released but no provisioner
// took it).
func (c *Central) Err() error {
	if c.hung.Load() {
		return errors.New("tablettest: the tablet read the clock after a pairing was accepted, but no provisioner was running")
	}
	return nil
}

// statusRecorder notes a 202 to POST /v1/pairings: a provisioner runs.
type statusRecorder struct {
	http.ResponseWriter
	central *Central
	pairing bool
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.pairing && code == http.StatusAccepted {
		r.central.accepted.Store(true)
	}
	r.ResponseWriter.WriteHeader(code)
}

// Flush passes the event stream's flushes through.
func (r *statusRecorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection's deadlines.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// Close stops everything.
func (c *Central) Close() {
	if c.HTTP != nil {
		c.HTTP.Close()
	}
	c.Server.Close()
	c.Store.Close()
}

// Device is an enrolled (or not) device with its identity key.
type Device struct {
	ID  string
	Key *ecdsa.PrivateKey
}

// NewDevice makes a device identity (not enrolled).
func NewDevice(id string) (*Device, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	return &Device{ID: id, Key: k}, nil
}

// Enroll makes a device and imports it into the inventory.
func (c *Central) Enroll(id string) (*Device, error) {
	d, err := NewDevice(id)
	if err != nil {
		return nil, err
	}
	p, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	idDER, err := x509.MarshalPKIXPublicKey(&d.Key.PublicKey)
	if err != nil {
		return nil, err
	}
	pDER, err := x509.MarshalPKIXPublicKey(&p.PublicKey)
	if err != nil {
		return nil, err
	}
	if _, err := c.Store.ImportDevice(context.Background(), store.Enrollment{
		DeviceID: id, DeviceSerial: "SN-" + id, IdentitySPKI: idDER, PayloadSPKI: pDER, FirmwareVersion: "1.2.3",
	}); err != nil {
		return nil, fmt.Errorf("enroll %s: %w", id, err)
	}
	return d, nil
}

// Session starts a pairing session on the device, as its screen would.
func (d *Device) Session() (*pairing.Session, error) {
	return pairing.NewSession(time.Now(), time.Now(), pairing.SessionOpts{
		DeviceID: d.ID, DeviceSerial: "SN-" + d.ID, IPAddress: "192.0.2.10", FirmwareVersion: "1.2.3", Signer: d.Key,
	})
}

// breakingWriter ends the stream after the first event it writes, as a
// proxy or a restarting Central Station would.
type breakingWriter struct {
	http.ResponseWriter
	wrote bool
}

func (b *breakingWriter) Write(p []byte) (int, error) {
	if b.wrote {
		return 0, errors.New("tablettest: stream cut")
	}
	b.wrote = true
	return b.ResponseWriter.Write(p)
}

func (b *breakingWriter) Flush() {
	if f, ok := b.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (b *breakingWriter) Unwrap() http.ResponseWriter { return b.ResponseWriter }
