package webapp

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/zmonitor/firmware/internal/base/clock/clocktest"
	"github.com/zmonitor/firmware/internal/central/job"
	"github.com/zmonitor/firmware/internal/central/server"
	"github.com/zmonitor/firmware/internal/central/store"
	"github.com/zmonitor/firmware/internal/proto/failure"
	"github.com/zmonitor/firmware/internal/proto/pairing"
	"github.com/zmonitor/firmware/internal/proto/state"
	"github.com/zmonitor/firmware/internal/testkit/browser"
)

// devicePlay is how a scripted device answers a push: the states it
// reports, then its outcome.
type devicePlay struct {
	states  []string
	outcome job.Outcome
	err     error
}

// provisioned is a device that goes all the way.
var provisioned = devicePlay{
	states:  []string{state.PairingReceived.String(), state.ApplyingConfig.String(), state.TestingConnection.String()},
	outcome: job.Outcome{State: state.Provisioned.String()},
}

// refuses is a device that ends PROVISIONING_FAILED with code after
// receiving the configuration.
func refuses(code failure.Code) devicePlay {
	return devicePlay{
		states:  []string{state.PairingReceived.String()},
		outcome: job.Outcome{State: state.ProvisioningFailed.String(), Code: code, Message: "the device refused the configuration"},
	}
}

// scriptedDevices is a hand-written job.Provisioner: a fake device per
// device ID plays its script. With hold set, each job waits at its gate
// (one per device ID) after the first state until the test opens it.
type scriptedDevices struct {
	mu    sync.Mutex
	plays map[string]devicePlay
	gates map[string]chan struct{}
	// steps: a device ID's job reports each state sent here, then
	// PROVISIONED when it is closed (the latency benchmark's device).
	steps map[string]chan string
	jobs  []job.Job
}

// stepped makes id's next job report the states the test sends, one by
// one, and end PROVISIONED when the channel is closed.
func (p *scriptedDevices) stepped(id string) chan<- string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.steps == nil {
		p.steps = map[string]chan string{}
	}
	c := make(chan string)
	p.steps[id] = c
	return c
}

func (p *scriptedDevices) set(id string, play devicePlay) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.plays == nil {
		p.plays = map[string]devicePlay{}
	}
	p.plays[id] = play
}

// hold makes id's next job wait after its first state until release.
func (p *scriptedDevices) hold(id string) (release func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.gates == nil {
		p.gates = map[string]chan struct{}{}
	}
	g := make(chan struct{})
	p.gates[id] = g
	var once sync.Once
	return func() { once.Do(func() { close(g) }) }
}

func (p *scriptedDevices) Provision(ctx context.Context, j job.Job, progress func(job.Progress)) (job.Outcome, error) {
	p.mu.Lock()
	p.jobs = append(p.jobs, j)
	play, ok := p.plays[j.DeviceID]
	gate := p.gates[j.DeviceID]
	steps := p.steps[j.DeviceID]
	p.mu.Unlock()
	if steps != nil {
		for {
			select {
			case st, open := <-steps:
				if !open {
					return provisioned.outcome, nil
				}
				progress(job.Progress{State: st})
			case <-ctx.Done():
				return job.Outcome{}, failure.New(failure.ConnectionFailed, "push", ctx.Err())
			}
		}
	}
	if !ok {
		play = provisioned
	}
	progress(job.Progress{Step: "push"}) // as the pusher reports it
	for i, s := range play.states {
		progress(job.Progress{State: s})
		if i == 0 && gate != nil {
			select {
			case <-gate:
			case <-ctx.Done():
				return job.Outcome{}, failure.New(failure.ConnectionFailed, "push", ctx.Err())
			}
		}
	}
	return play.outcome, play.err
}

// site is the web app on a TLS 1.3 test server at https://localhost:PORT,
// with a scripted provisioner, on SQLite (or the DSN given).
type site struct {
	t      testing.TB
	st     store.Store
	api    *server.Server
	app    *App
	srv    *browser.Server
	devs   *scriptedDevices
	origin string
}

type siteOpts struct {
	dsn   string
	clock *clocktest.Fake // the web app's and the store's clock; nil: the system's
	// front, when set, is the TLS server this site is a replica behind
	// (replicas_test.go); the site registers its handler there.
	front *front
}

func newSite(t testing.TB, o siteOpts) *site {
	t.Helper()
	ctx := context.Background()
	if o.dsn == "" {
		o.dsn = "sqlite:" + filepath.Join(t.TempDir(), "central.db")
	}
	var so *store.Opts
	if o.clock != nil {
		so = &store.Opts{Clock: o.clock}
	}
	st, err := store.Open(ctx, o.dsn, so)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	devs := &scriptedDevices{}
	api, err := server.New(server.Config{Store: st, Provisioner: devs})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(api.Close)
	var h atomic.Value
	var srv *browser.Server
	if o.front != nil {
		srv = o.front.srv
		o.front.add(func(w http.ResponseWriter, r *http.Request) { h.Load().(http.Handler).ServeHTTP(w, r) })
	} else {
		srv = browser.NewServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h.Load().(http.Handler).ServeHTTP(w, r)
		}))
	}
	cfg := Config{Store: st, API: api, Origin: srv.Origin}
	if o.clock != nil {
		cfg.Clock = o.clock
	}
	app, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.Store(app.Handler())
	return &site{t: t, st: st, api: api, app: app, srv: srv, devs: devs, origin: srv.Origin}
}

// addPerson adds a technician (or operator) and returns them with an
// enrollment link.
func (s *site) addPerson(name string, role store.Role) (store.Technician, EnrollmentLink) {
	s.t.Helper()
	ctx := context.Background()
	tok, err := store.NewTechnicianToken(nil)
	if err != nil {
		s.t.Fatal(err)
	}
	tech, err := s.st.AddTechnician(ctx, tok.ID, name, tok.Hash)
	if err != nil {
		s.t.Fatal(err)
	}
	if role == store.RoleOperator {
		if err := s.st.SetTechnicianRole(ctx, tech.ID, role); err != nil {
			s.t.Fatal(err)
		}
		tech.Role = role
	}
	return tech, s.link(tech.ID)
}

func (s *site) link(techID string) EnrollmentLink {
	s.t.Helper()
	l, err := CreateEnrollmentLink(context.Background(), s.st, techID, "cli", s.origin, time.Now(), nil)
	if err != nil {
		s.t.Fatal(err)
	}
	return l
}

// device is an enrolled device with its identity key.
type device struct {
	id  string
	key *ecdsa.PrivateKey
}

func (s *site) enroll(id, label string) *device {
	s.t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	idDER, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	pDER, _ := x509.MarshalPKIXPublicKey(&p.PublicKey)
	ctx := context.Background()
	if _, err := s.st.ImportDevice(ctx, store.Enrollment{DeviceID: id, DeviceSerial: "SN-" + id, IdentitySPKI: idDER, PayloadSPKI: pDER, FirmwareVersion: "1.2.3"}); err != nil {
		s.t.Fatal(err)
	}
	if label != "" {
		if err := s.st.SetDeviceLabel(ctx, id, label); err != nil {
			s.t.Fatal(err)
		}
	}
	return &device{id: id, key: k}
}

// session starts a pairing session on the device, as its screen does.
func (d *device) session(t testing.TB) *pairing.Session {
	t.Helper()
	now := time.Now()
	s, err := pairing.NewSession(now, now, pairing.SessionOpts{
		DeviceID: d.id, DeviceSerial: "SN-" + d.id, IPAddress: "192.0.2.10", FirmwareVersion: "1.2.3", Signer: d.key,
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// tablet is a browser tab with a passkey authenticator: a technician's
// tablet.
type tablet struct {
	t    testing.TB
	ctx  context.Context
	auth *browser.Authenticator
	s    *site
}

func (s *site) browser(opts browser.Options) *browser.Browser {
	opts.Trust = append(opts.Trust, s.srv.Cert)
	return browser.ForTest(s.t, opts)
}

func (s *site) tablet(b *browser.Browser) *tablet {
	s.t.Helper()
	ctx := b.Tab(s.t)
	if err := chromedp.Do(ctx, chromedp.Navigate(s.origin+"/sign-in")); err != nil {
		s.t.Fatal(err)
	}
	auth, err := browser.AddPasskeyAuthenticator(ctx)
	if err != nil {
		s.t.Fatal(err)
	}
	return &tablet{t: s.t, ctx: ctx, auth: auth, s: s}
}

// open navigates to path and waits for the page.
func (tb *tablet) open(path string) {
	tb.t.Helper()
	if err := chromedp.Do(tb.ctx, chromedp.Navigate(tb.s.origin+path), chromedp.WaitReady(chromedp.CSS("body"))); err != nil {
		tb.t.Fatalf("open %s: %v", path, err)
	}
}

// waitPath waits until the tab shows path (a prefix).
func (tb *tablet) waitPath(prefix string) {
	tb.t.Helper()
	js := fmt.Sprintf(`location.pathname.startsWith(%q) && document.readyState === 'complete'`, prefix)
	if err := tb.poll(js); err != nil {
		tb.t.Fatalf("never reached %s (at %s, status %q): %v", prefix, tb.path(), tb.text("#status"), err)
	}
}

// poll waits until the expression is true in the tab, across page loads
// (a poll that a navigation interrupts starts again on the new page).
func (tb *tablet) poll(js string) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		_, err := chromedp.Run(tb.ctx, chromedp.Poll[bool](js, chromedp.WithPollingTimeout(time.Until(deadline))))
		if err == nil || time.Now().After(deadline) || tb.ctx.Err() != nil {
			return err
		}
	}
}

func (tb *tablet) path() string {
	p, _ := chromedp.Run(tb.ctx, chromedp.Evaluate[string](`location.pathname + location.search`))
	return p
}

// text returns the text of the first element matching sel ("" if none).
func (tb *tablet) text(sel string) string {
	s, err := chromedp.Run(tb.ctx, chromedp.Evaluate[string](fmt.Sprintf(`(document.querySelector(%q) || {textContent: ''}).textContent.trim()`, sel)))
	if err != nil {
		tb.t.Fatalf("text of %s: %v", sel, err)
	}
	return strings.Join(strings.Fields(s), " ")
}

// click clicks sel once it is visible.
func (tb *tablet) click(sel string) {
	tb.t.Helper()
	if err := chromedp.Do(tb.ctx, chromedp.Click(chromedp.CSS(sel))); err != nil {
		tb.t.Fatalf("click %s: %v", sel, err)
	}
}

// enrollWith opens an enrollment link, creates the passkey and waits to be
// signed in on the scan page.
func (tb *tablet) enrollWith(l EnrollmentLink) {
	tb.t.Helper()
	path := strings.TrimPrefix(l.URL, tb.s.origin)
	tb.open(path)
	tb.click("#enroll")
	tb.waitPath("/scan")
}

// waitText waits until sel's text contains want.
func (tb *tablet) waitText(sel, want string) {
	tb.t.Helper()
	js := fmt.Sprintf(`((document.querySelector(%q) || {}).textContent || '').includes(%q)`, sel, want)
	if err := tb.poll(js); err != nil {
		tb.t.Fatalf("%s never said %q (it says %q; page %s): %v", sel, want, tb.text(sel), tb.path(), err)
	}
}

// fetch runs a fetch in the page and returns the status.
func (tb *tablet) fetch(method, path, contentType, body string) int {
	tb.t.Helper()
	js := fmt.Sprintf(`fetch(%q, {method: %q, headers: %s, body: %s, redirect: 'manual'}).then(r => r.status)`,
		path, method, headersJS(contentType), bodyJS(method, body))
	status, err := chromedp.Run(tb.ctx, chromedp.Evaluate[int](js, chromedp.EvalAwaitPromise))
	if err != nil {
		tb.t.Fatalf("fetch %s %s: %v", method, path, err)
	}
	return status
}

func headersJS(ct string) string {
	if ct == "" {
		return "{}"
	}
	return fmt.Sprintf("{'Content-Type': %q}", ct)
}

func bodyJS(method, body string) string {
	if method == http.MethodGet {
		return "undefined"
	}
	return fmt.Sprintf("%q", body)
}

// Jobs returns the jobs the devices received.
func (p *scriptedDevices) Jobs() []job.Job {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]job.Job(nil), p.jobs...)
}

// on returns the tablet reporting to t (a subtest).
func (tb *tablet) on(t testing.TB) *tablet {
	c := *tb
	c.t = t
	return &c
}
