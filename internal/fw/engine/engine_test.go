package engine_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zmonitor/firmware/internal/base/clock"
	"github.com/zmonitor/firmware/internal/base/clock/clocktest"
	"github.com/zmonitor/firmware/internal/central/ca"
	"github.com/zmonitor/firmware/internal/central/deviceclient"
	"github.com/zmonitor/firmware/internal/central/job"
	"github.com/zmonitor/firmware/internal/central/pusher"
	"github.com/zmonitor/firmware/internal/fw/audit"
	"github.com/zmonitor/firmware/internal/fw/audit/audittest"
	"github.com/zmonitor/firmware/internal/fw/engine"
	"github.com/zmonitor/firmware/internal/fw/fault"
	"github.com/zmonitor/firmware/internal/fw/keys/softkeys"
	"github.com/zmonitor/firmware/internal/fw/screen"
	"github.com/zmonitor/firmware/internal/fw/settings"
	"github.com/zmonitor/firmware/internal/proto/failure"
	"github.com/zmonitor/firmware/internal/proto/pairing"
	"github.com/zmonitor/firmware/internal/proto/payload"
	"github.com/zmonitor/firmware/internal/proto/state"
	"github.com/zmonitor/firmware/internal/testkit/testpki"
)

var buildTime = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

// display records every view the engine shows.
type display struct {
	mu     sync.Mutex
	views  []screen.View
	warmed []screen.View
	ch     chan screen.View
}

func (d *display) Show(v screen.View) error {
	d.mu.Lock()
	d.views = append(d.views, v)
	d.mu.Unlock()
	d.ch <- v
	return nil
}

// Warm records the views rendered ahead of time.
func (d *display) Warm(v screen.View) error {
	d.mu.Lock()
	d.warmed = append(d.warmed, v)
	d.mu.Unlock()
	return nil
}

// rig is a device engine with software keys plus a Central Station side
// (provisioning root, signer, device CA) and a monitoring server, all on
// loopback.
type rig struct {
	t       *testing.T
	clk     *clocktest.Fake
	keys    *softkeys.Store
	set     *settings.Store
	aud     *audittest.Recorder
	disp    *display
	eng     *engine.Engine
	cancel  context.CancelFunc
	done    chan error
	root    *testpki.CA
	signer  pusher.Signer
	devCA   *ca.CA
	monitor *httptest.Server
	sleeps  int
	opts    engine.Options

	traceMu sync.Mutex
	traced  []string // Deps.Trace steps, in order

	healthMu   sync.Mutex
	healthGate chan struct{} // when set, the monitoring server's health check waits for it

	warning atomic.Int32 // Deps.Warning's answer (a fault.Warning)

	resetMu  sync.Mutex
	resetErr error // returned by the settings' FactoryReset, when set
	resetAt  int   // audit records when FactoryReset was called, -1 before
}

// spySettings is the rig's settings store, watching factory resets.
type spySettings struct {
	*settings.Store
	r *rig
}

func (s spySettings) FactoryReset() error {
	s.r.resetMu.Lock()
	s.r.resetAt = len(s.r.aud.Events())
	err := s.r.resetErr
	s.r.resetMu.Unlock()
	if err != nil {
		return err
	}
	return s.Store.FactoryReset()
}

func (r *rig) steps() []string {
	r.traceMu.Lock()
	defer r.traceMu.Unlock()
	return append([]string(nil), r.traced...)
}

func signerTemplate() *x509.Certificate {
	t := testpki.ClientTemplate("Central Station provisioning signer")
	t.UnknownExtKeyUsage = append(t.UnknownExtKeyUsage, payload.SignerEKU)
	return t
}

func newRig(t *testing.T, tweak func(*engine.Options)) *rig {
	t.Helper()
	now := time.Now()
	r := &rig{t: t, clk: clocktest.New(now), aud: &audittest.Recorder{}, disp: &display{ch: make(chan screen.View, 1024)}, resetAt: -1}
	var err error
	if r.keys, err = softkeys.New(rand.Reader); err != nil {
		t.Fatal(err)
	}
	if r.set, err = settings.Open(filepath.Join(t.TempDir(), settings.FileName), r.aud); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.set.Close() })
	if r.root, err = testpki.NewCA("provisioning root", now); err != nil {
		t.Fatal(err)
	}
	leaf, err := r.root.NewLeaf(signerTemplate(), now)
	if err != nil {
		t.Fatal(err)
	}
	r.signer = pusher.Signer{Key: leaf.Key, Chain: []*x509.Certificate{leaf.Cert}}
	hospital, err := testpki.NewCA("hospital CA", now)
	if err != nil {
		t.Fatal(err)
	}
	if r.devCA, err = ca.New(hospital.Cert, hospital.Key, nil); err != nil {
		t.Fatal(err)
	}
	// The monitoring server: mTLS, clients from the hospital CA.
	srvLeaf, err := hospital.NewLeaf(testpki.ServerTemplate("monitoring.test"), now)
	if err != nil {
		t.Fatal(err)
	}
	r.monitor = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path != "/health" || len(req.TLS.PeerCertificates) == 0 {
			http.Error(w, "no", http.StatusNotFound)
			return
		}
		r.healthMu.Lock()
		gate := r.healthGate
		r.healthMu.Unlock()
		if gate != nil {
			<-gate
		}
		w.Write([]byte("ok"))
	}))
	r.monitor.TLS = &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{srvLeaf.TLS()}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: hospital.Pool()}
	r.monitor.StartTLS()
	t.Cleanup(r.monitor.Close)

	r.opts = engine.Options{
		DeviceID: "ZM-001", DeviceSerial: "SN-2024-001234", DeviceLabel: "BENCH-01", FirmwareVersion: "1.2.3",
		ListenAddr: "127.0.0.1:0", ConnAttempts: 2, ConnTimeout: 2 * time.Second,
	}
	if tweak != nil {
		tweak(&r.opts)
	}
	r.start()
	return r
}

// start builds an engine over the rig's keys and stores (a boot) and runs it.
// It starts PROVISIONED over committed settings, as the boot plan
// (internal/fw/boot) decides for a device whose client key matches them.
func (r *rig) start() {
	t := r.t
	r.opts.Start = engine.Start{}
	if cur, ok, err := r.set.Current(); err == nil && ok {
		r.opts.Start = engine.Start{State: state.Provisioned, Committed: &cur}
	}
	var err error
	r.eng, err = engine.New(r.opts, engine.Deps{
		Clock:     r.clk,
		Wall:      clock.NewWall(r.clk, buildTime, nil),
		Keys:      r.keys,
		Settings:  spySettings{r.set, r},
		Audit:     r.aud,
		Display:   r.disp,
		Anchors:   r.root.Pool(),
		Address:   func() string { return "127.0.0.1" },
		ConnSleep: func(context.Context, time.Duration) error { r.sleeps++; return nil },
		Warning:   func() fault.Warning { return fault.Warning(r.warning.Load()) },
		Trace: func(step string) {
			r.traceMu.Lock()
			r.traced = append(r.traced, step)
			r.traceMu.Unlock()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel, r.done = cancel, make(chan error, 1)
	go func() { r.done <- r.eng.Run(ctx) }()
	<-r.eng.Ready()
	r.t.Cleanup(r.stop)
}

func (r *rig) stop() {
	if r.cancel == nil {
		return
	}
	r.cancel()
	select {
	case <-r.done:
	case <-time.After(15 * time.Second):
		r.t.Error("the engine did not stop within 15 s: it is frozen")
	}
	r.cancel = nil
}

// waitView returns the first view shown from now on that satisfies ok.
func (r *rig) waitView(what string, ok func(screen.View) bool) screen.View {
	r.t.Helper()
	timeout := time.After(15 * time.Second)
	for {
		select {
		case v := <-r.disp.ch:
			if ok(v) {
				return v
			}
		case <-timeout:
			r.t.Fatalf("no %s view within 15 s; status %+v", what, r.eng.Status())
		}
	}
}

func (r *rig) waitState(ss ...state.State) screen.View {
	r.t.Helper()
	return r.waitView(ss[0].String(), func(v screen.View) bool {
		for _, s := range ss {
			if v.State == s {
				return true
			}
		}
		return false
	})
}

func (r *rig) press() {
	r.t.Helper()
	if err := r.eng.Press(); err != nil {
		r.t.Fatalf("press: %v", err)
	}
}

// pair presses the button and returns the QR shown.
func (r *rig) pair() pairing.QRContent {
	r.t.Helper()
	r.press()
	return r.shownQR()
}

// retry presses the button on the PROVISIONING_FAILED screen: one press
// gives a new QR, as the screen says (through UNPROVISIONED, both
// transitions audited).
func (r *rig) retry() pairing.QRContent {
	r.t.Helper()
	if st := r.eng.Status().State; st != state.ProvisioningFailed {
		r.t.Fatalf("retry from %s", st)
	}
	r.press()
	return r.shownQR()
}

// shownQR waits for READY_TO_PAIR and returns the QR on the screen.
func (r *rig) shownQR() pairing.QRContent {
	r.t.Helper()
	v := r.waitState(state.ReadyToPair)
	q, err := pairing.ParseQR(v.QRText)
	if err != nil {
		r.t.Fatalf("QR on screen does not parse: %v", err)
	}
	if q.PairingCode != v.PairingCode {
		r.t.Fatalf("screen code differs from QR code")
	}
	return q
}

func (r *rig) pusher(tweak func(*pusher.Config)) *pusher.Pusher {
	r.t.Helper()
	c := pusher.Config{CA: r.devCA, Signer: r.signer, ServerURL: r.monitor.URL}
	if tweak != nil {
		tweak(&c)
	}
	p, err := pusher.New(c)
	if err != nil {
		r.t.Fatal(err)
	}
	return p
}

func (r *rig) job(q pairing.QRContent) job.Job {
	return job.Job{
		PairingID:   "test",
		DeviceID:    q.DeviceID,
		Address:     r.eng.EndpointAddr(),
		IdentityKey: r.keys.Identity().Public().(*ecdsa.PublicKey),
		Token:       q.PairingToken,
		PairingCode: q.PairingCode,
		Label:       "ICU-MON-04",
	}
}

func (r *rig) provision(q pairing.QRContent, tweak func(*pusher.Config)) (job.Outcome, error) {
	return r.pusher(tweak).Provision(context.Background(), r.job(q), nil)
}

func (r *rig) portClosed(addr string) bool {
	// The screen shows the final state before the port closes.
	for deadline := time.Now().Add(10 * time.Second); r.eng.Status().Listening && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err == nil {
		c.Close()
		return false
	}
	return true
}

func (r *rig) mustSucceed(q pairing.QRContent) {
	r.t.Helper()
	addr := r.eng.EndpointAddr()
	out, err := r.provision(q, nil)
	if err != nil {
		r.t.Fatalf("provision: %v", err)
	}
	if out.State != "PROVISIONED" || out.Code != failure.None {
		r.t.Fatalf("outcome %+v", out)
	}
	v := r.waitState(state.Provisioned)
	if v.DeviceLabel != "ICU-MON-04" || !strings.HasPrefix(v.ServerHost, "127.0.0.1:") {
		r.t.Errorf("provisioned screen: label %q host %q", v.DeviceLabel, v.ServerHost)
	}
	cur, ok, err := r.set.Current()
	if err != nil || !ok || cur.ServerURL == "" || cur.DeviceLabel != "ICU-MON-04" {
		r.t.Fatalf("committed settings: %+v %v %v", cur, ok, err)
	}
	if _, ok, _ := r.set.Staged(); ok {
		r.t.Error("a stage is left after commit")
	}
	if _, err := r.keys.CommittedClientKey(); err != nil {
		r.t.Errorf("client key not committed: %v", err)
	}
	if !r.portClosed(addr) {
		r.t.Error("provisioning port still open in PROVISIONED")
	}
}

func TestWholePairingInOneProcess(t *testing.T) {
	r := newRig(t, nil)
	if r.eng.Status().Listening {
		t.Fatal("port open while UNPROVISIONED")
	}
	q := r.pair()
	if q.DeviceID != "ZM-001" || q.IPAddress != "127.0.0.1" || q.FirmwareVersion != "1.2.3" {
		t.Errorf("QR = %+v", q)
	}
	if _, err := pairing.VerifyToken(r.keys.Identity().Public().(*ecdsa.PublicKey), q); err != nil {
		t.Fatalf("token does not verify with the identity key: %v", err)
	}
	var steps []string
	out, err := r.pusher(nil).Provision(context.Background(), r.job(q), func(p job.Progress) {
		if p.State != "" && (len(steps) == 0 || steps[len(steps)-1] != p.State) {
			steps = append(steps, p.State)
		}
	})
	if err != nil || out.State != "PROVISIONED" {
		t.Fatalf("provision: %+v, %v", out, err)
	}
	if got := strings.Join(steps, " "); got != "PAIRING_RECEIVED APPLYING_CONFIG TESTING_CONNECTION PROVISIONED" {
		t.Errorf("progress states: %s", got)
	}
	r.waitState(state.Provisioned)
	if !r.portClosed(r.eng.EndpointAddr()) {
		t.Fatal("port still open after PROVISIONED")
	}
	for _, name := range []string{"HELLO", "CONFIG_RECEIVED", "CONFIG_VERIFIED", "PROVISIONED", "PORT_OPENED", "PORT_CLOSED"} {
		if len(r.aud.Named(name)) == 0 {
			t.Errorf("no %s audit record", name)
		}
	}
	var path []string
	for _, ev := range r.aud.Named("STATE_CHANGED") {
		path = append(path, ev.To)
	}
	if got := strings.Join(path, " "); got != "READY_TO_PAIR PAIRING_RECEIVED APPLYING_CONFIG TESTING_CONNECTION PROVISIONED" {
		t.Errorf("audited path: %s", got)
	}
	cur, _, _ := r.set.Current()
	leaf, err := x509.ParseCertificate(cur.ClientCertDER)
	if err != nil {
		t.Fatal(err)
	}
	ck, _ := r.keys.CommittedClientKey()
	if !leaf.PublicKey.(*ecdsa.PublicKey).Equal(ck.Public()) {
		t.Error("committed certificate is not for the committed client key")
	}
	// The button does nothing harmful now; it is refused and audited.
	if err := r.eng.Press(); !errors.Is(err, state.ErrInvalid) {
		t.Errorf("press in PROVISIONED: %v", err)
	}
	if len(r.aud.Named("EVENT_REFUSED")) == 0 {
		t.Error("refused event not audited")
	}
	// A restart comes back PROVISIONED.
	r.stop()
	r.start()
	if st := r.eng.Status().State; st != state.Provisioned {
		t.Errorf("after restart: %s", st)
	}
}

// failCase drives one failure and checks the code, that nothing was
// committed, and that a retry then succeeds.
type failCase struct {
	name   string
	code   failure.Code
	tweak  func(*pusher.Config)
	before func(r *rig)
	after  func(r *rig)
}

func TestEachFailureThenRetrySucceeds(t *testing.T) {
	cases := []failCase{
		{name: "pairing code mismatch", code: failure.PairingCodeMismatch, tweak: func(c *pusher.Config) {
			c.Tamper = func(p *payload.Config) { p.PairingCode = otherCode(p.PairingCode) }
		}},
		{name: "payload expired", code: failure.PayloadExpired, tweak: func(c *pusher.Config) {
			c.Now = func() time.Time { return time.Now().Add(-61 * time.Minute) }
		}},
		{name: "signature invalid", code: failure.SignatureInvalid, tweak: func(c *pusher.Config) {
			c.TamperSigned = func(p *payload.Config) { p.DeviceLabel = "EVIL" }
		}},
		{name: "signer untrusted", code: failure.SignerUntrusted, tweak: func(c *pusher.Config) {
			rogue, _ := testpki.NewCA("rogue root", time.Now())
			leaf, _ := rogue.NewLeaf(signerTemplate(), time.Now())
			c.Tamper = func(p *payload.Config) { p.SignerChain = []string{b64(leaf.Cert.Raw)} }
		}},
		{name: "certificate invalid", code: failure.CertificateInvalid, tweak: func(c *pusher.Config) {
			c.Tamper = func(p *payload.Config) { p.ClientCertificate = b64([]byte("not a certificate")) }
		}},
		{name: "wrong device", code: failure.WrongDevice, tweak: func(c *pusher.Config) {
			c.Tamper = func(p *payload.Config) { p.DeviceID = "ZM-999" }
		}},
		{name: "connection failed", code: failure.ConnectionFailed,
			before: func(r *rig) { r.monitorDown() }, after: func(r *rig) { r.monitorUp() }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := newRig(t, nil)
			if c.before != nil {
				c.before(r)
			}
			q := r.pair()
			addr := r.eng.EndpointAddr()
			out, err := r.provision(q, c.tweak)
			if err != nil {
				t.Fatalf("provision: %v", err)
			}
			if out.State != "PROVISIONING_FAILED" || out.Code != c.code {
				t.Fatalf("outcome %+v, want PROVISIONING_FAILED %s", out, c.code)
			}
			r.expectFailed(c.code, addr)
			if c.after != nil {
				c.after(r)
			}
			r.mustSucceed(r.retry()) // one press: a new QR
		})
	}
}

func (r *rig) expectFailed(code failure.Code, addr string) {
	r.t.Helper()
	v := r.waitState(state.ProvisioningFailed)
	if v.Failure != code {
		r.t.Errorf("screen shows %s, want %s", v.Failure, code)
	}
	if st := r.eng.Status(); st.LastError != code {
		r.t.Errorf("status last error %s, want %s", st.LastError, code)
	}
	if _, ok, _ := r.set.Current(); ok {
		r.t.Error("settings committed after a failure")
	}
	if _, ok, _ := r.set.Staged(); ok {
		r.t.Error("stage left after a failure")
	}
	if _, err := r.keys.CommittedClientKey(); err == nil {
		r.t.Error("client key committed after a failure")
	}
	if !r.portClosed(addr) {
		r.t.Error("provisioning port open in PROVISIONING_FAILED")
	}
	found := false
	for _, ev := range r.aud.Named("PROVISIONING_FAILED") {
		found = found || ev.Code == code.String()
	}
	if !found {
		r.t.Errorf("no PROVISIONING_FAILED audit record with %s", code)
	}
}

func (r *rig) monitorDown() {
	r.monitor.Listener.Close()
}

func (r *rig) monitorUp() {
	addr := r.monitor.Listener.Addr().String()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		r.t.Fatalf("reopen monitoring server: %v", err)
	}
	r.monitor.Listener = ln
	r.monitor.Config.TLSConfig = r.monitor.TLS
	go r.monitor.Config.ServeTLS(ln, "", "")
}

func otherCode(c string) string {
	for {
		code, err := pairing.NewCode(rand.Reader)
		if err == nil && code.Display() != c {
			return code.Display()
		}
	}
}

func TestDecryptFailure(t *testing.T) {
	r := newRig(t, nil)
	q := r.pair()
	addr := r.eng.EndpointAddr()
	out, err := r.provision(q, func(c *pusher.Config) {
		c.TamperEnvelope = func(env []byte) []byte {
			// Keep the envelope's JSON shape; damage the ciphertext.
			i := strings.LastIndex(string(env), `"`) - 3
			env[i] ^= 0x01
			return env
		}
	})
	if err != nil || out.Code != failure.DecryptFailed {
		t.Fatalf("outcome %+v, %v", out, err)
	}
	r.expectFailed(failure.DecryptFailed, addr)
}

func TestStaleTokenRefusedAndRotation(t *testing.T) {
	r := newRig(t, nil)
	q0 := r.pair()
	// Two rotations later the first token is worthless.
	for i := 0; i < 2; i++ {
		r.clk.Advance(30 * time.Second)
		r.waitView("rotated QR", func(v screen.View) bool {
			return v.State == state.ReadyToPair && string(v.QRText) != string(q0.Marshal())
		})
	}
	_, err := r.provision(q0, nil)
	if failure.CodeOf(err) != failure.TokenInvalid {
		t.Fatalf("stale token: %v", err)
	}
	if st := r.eng.Status().State; st != state.ReadyToPair {
		t.Fatalf("a refused hello changed the state to %s", st)
	}
	if len(r.aud.Named("TOKEN_REFUSED")) == 0 {
		t.Error("stale token not audited")
	}
	// The current QR still works.
	v := r.disp.views[len(r.disp.views)-1]
	q, _ := pairing.ParseQR(v.QRText)
	r.mustSucceed(q)
}

func TestSessionExpires(t *testing.T) {
	r := newRig(t, func(o *engine.Options) { o.SessionLifetime = 2 * time.Minute })
	q := r.pair()
	addr := r.eng.EndpointAddr()
	r.clk.Advance(2 * time.Minute)
	if v := r.waitState(state.Unprovisioned); !v.SessionExpired {
		t.Errorf("the UNPROVISIONED screen after the expiry does not say the code expired: %+v", v)
	}
	if !r.portClosed(addr) {
		t.Error("port open after the session expired")
	}
	if _, err := r.provision(q, nil); err == nil {
		t.Fatal("provisioned with an expired session")
	}
	// The next session's screens no longer say it.
	r.pair()
	r.clk.Advance(time.Minute)
	if v := r.waitState(state.ReadyToPair); v.SessionExpired {
		t.Errorf("READY_TO_PAIR says the code expired: %+v", v)
	}
}

// A press in READY_TO_PAIR gives a fresh QR at once: a new code and token,
// the full lifetime again; the QR shown before is refused, the new one
// pairs (issue 14 item 11: a push that failed after the Central Station
// claimed the code left the device showing a QR that would always be
// refused, and the press was refused). Before, the press was refused.
func TestPressInReadyToPairGivesAFreshQR(t *testing.T) {
	r := newRig(t, nil)
	old := r.pair()
	r.clk.Advance(time.Minute)
	r.press()
	v := r.waitView("a new QR", func(v screen.View) bool {
		return v.State == state.ReadyToPair && v.PairingCode != old.PairingCode
	})
	fresh, err := pairing.ParseQR(v.QRText)
	if err != nil || fresh.PairingToken == old.PairingToken || fresh.PairingCode != v.PairingCode {
		t.Fatalf("new QR %+v, %v", fresh, err)
	}
	if v.Remaining != pairing.DefaultLifetime {
		t.Errorf("time left %s after the renewal, want the full %s", v.Remaining, pairing.DefaultLifetime)
	}
	if out, err := r.provision(old, nil); err == nil && out.State == "PROVISIONED" {
		t.Fatal("provisioned with the QR shown before the press")
	}
	if len(r.aud.Named("PAIRING_RENEWED")) != 1 {
		t.Error("the renewal was not audited")
	}
	r.mustSucceed(fresh)
}

func TestReplayedPayloadFromEarlierSession(t *testing.T) {
	r := newRig(t, nil)
	q := r.pair()
	var captured []byte
	out, err := r.provision(q, func(c *pusher.Config) {
		c.Tamper = func(p *payload.Config) { p.PairingCode = otherCode(p.PairingCode) }
		c.TamperEnvelope = func(env []byte) []byte { captured = append([]byte(nil), env...); return env }
	})
	if err != nil || out.Code != failure.PairingCodeMismatch {
		t.Fatalf("first attempt: %+v %v", out, err)
	}
	r.waitState(state.ProvisioningFailed)
	q2 := r.retry()
	// A new hello (new session nonce), then the old envelope.
	c := deviceclient.New(r.eng.EndpointAddr(), r.keys.Identity().Public().(*ecdsa.PublicKey), "ZM-001", deviceclient.Opts{Certificate: r.signer.TLSCertificate()})
	defer c.Close()
	if _, err := c.Hello(context.Background(), q2.PairingToken); err != nil {
		t.Fatal(err)
	}
	final, err := c.PushConfig(context.Background(), captured, nil)
	if err != nil {
		t.Fatal(err)
	}
	if final.State != "PROVISIONING_FAILED" || final.Error == nil || final.Error.Code != failure.DecryptFailed.String() {
		t.Fatalf("replay: %+v", final)
	}
	r.waitState(state.ProvisioningFailed)
	if _, ok, _ := r.set.Current(); ok {
		t.Fatal("replayed payload was committed")
	}
}

func TestFiveWrongCodesLockProvisioning(t *testing.T) {
	r := newRig(t, nil)
	wrong := func(c *pusher.Config) {
		c.Tamper = func(p *payload.Config) { p.PairingCode = otherCode(p.PairingCode) }
	}
	q := r.pair()
	for i := 1; i <= pairing.MaxWrongCodes; i++ {
		out, err := r.provision(q, wrong)
		if err != nil || out.Code != failure.PairingCodeMismatch {
			t.Fatalf("attempt %d: %+v %v", i, out, err)
		}
		r.waitState(state.ProvisioningFailed)
		if i < pairing.MaxWrongCodes {
			q = r.retry()
		}
	}
	// The press on the fifth failure leaves PROVISIONING_FAILED, but the
	// new session it would open is refused: the start screen says how long
	// provisioning stays locked.
	if err := r.eng.Press(); !errors.Is(err, state.ErrLockedOut) {
		t.Fatalf("press after the fifth wrong code: %v, want locked out", err)
	}
	if v := r.waitState(state.Unprovisioned); v.Locked <= 0 {
		t.Fatalf("start screen while locked: %+v", v)
	}
	if err := r.eng.Press(); !errors.Is(err, state.ErrLockedOut) {
		t.Fatalf("sixth press: %v, want locked out", err)
	}
	if st := r.eng.Status(); st.State != state.Unprovisioned || st.Locked <= 0 {
		t.Fatalf("status while locked: %+v", st)
	}
	// The lock lifts with time.
	r.clk.Advance(10*time.Minute + time.Second)
	r.mustSucceed(r.pair())
}

// The wrong-code lockout survives a restart of the engine over the same
// settings (a power cycle): still locked, with the time that was left, and
// lifted when it runs out. Before, the lockout lived only in memory and a
// power cycle cleared it.
func TestWrongCodeLockoutSurvivesARestart(t *testing.T) {
	r := newRig(t, nil)
	wrong := func(c *pusher.Config) {
		c.Tamper = func(p *payload.Config) { p.PairingCode = otherCode(p.PairingCode) }
	}
	q := r.pair()
	for i := 1; i <= pairing.MaxWrongCodes; i++ {
		out, err := r.provision(q, wrong)
		if err != nil || out.Code != failure.PairingCodeMismatch {
			t.Fatalf("attempt %d: %+v %v", i, out, err)
		}
		r.waitState(state.ProvisioningFailed)
		if i < pairing.MaxWrongCodes {
			q = r.retry()
		}
	}
	if err := r.eng.Press(); !errors.Is(err, state.ErrLockedOut) {
		t.Fatalf("press after the fifth wrong code: %v, want locked out", err)
	}
	r.waitState(state.Unprovisioned)
	before := r.eng.Status().Locked
	if before <= 0 {
		t.Fatalf("not locked after %d wrong codes", pairing.MaxWrongCodes)
	}
	r.clk.Advance(3 * time.Minute)
	r.stop() // the power cycle
	r.start()
	if err := r.eng.Press(); !errors.Is(err, state.ErrLockedOut) {
		t.Fatalf("press after the restart: %v, want locked out", err)
	}
	st := r.eng.Status()
	if want := before - 3*time.Minute; st.State != state.Unprovisioned || st.Locked != want {
		t.Fatalf("status after the restart: %+v, want UNPROVISIONED locked for %s", st, want)
	}
	if len(r.aud.Named("LOCKOUT_RESTORED")) != 1 {
		t.Error("the restored lockout was not audited")
	}
	r.clk.Advance(st.Locked + time.Second)
	r.mustSucceed(r.pair())
	// A success forgets the wrong codes, also across the next restart.
	r.stop()
	r.start()
	if st := r.eng.Status(); st.Locked != 0 {
		t.Fatalf("locked after a success and a restart: %+v", st)
	}
}

func TestConfigWithoutHelloRefused(t *testing.T) {
	r := newRig(t, nil)
	r.pair()
	c := deviceclient.New(r.eng.EndpointAddr(), r.keys.Identity().Public().(*ecdsa.PublicKey), "ZM-001", deviceclient.Opts{Certificate: r.signer.TLSCertificate()})
	defer c.Close()
	_, err := c.PushConfig(context.Background(), []byte(`{"version":1}`), nil)
	var re *deviceclient.RefusedError
	if !errors.As(err, &re) || re.Code() != failure.SessionMismatch {
		t.Fatalf("config without hello: %v", err)
	}
	if st := r.eng.Status().State; st != state.ReadyToPair {
		t.Fatalf("state %s", st)
	}
	// The refusal was posted to the engine before the answer was sent; a
	// call through the engine after it sees its audit record.
	_ = r.eng.QRText()
	var refused []audit.Event
	for _, ev := range r.aud.Named("REQUEST_REFUSED") {
		if ev.Code == failure.SessionMismatch.String() {
			refused = append(refused, ev)
		}
	}
	if len(refused) == 0 {
		t.Error("refusal not audited")
	}
}
func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// After boot an unprovisioned device renders a pairing screen with its own
// identity off-screen, so the first press finds the glyphs made.
func TestBootWarmsThePairingScreen(t *testing.T) {
	r := newRig(t, nil)
	_ = r.eng.QRText() // the boot (and its warm-up) is done once a call returns
	r.disp.mu.Lock()
	warmed := append([]screen.View(nil), r.disp.warmed...)
	r.disp.mu.Unlock()
	if len(warmed) != 1 || warmed[0].State != state.ReadyToPair || warmed[0].DeviceID != "ZM-001" || len(warmed[0].QRText) == 0 {
		t.Fatalf("warmed %+v, want one READY_TO_PAIR view of ZM-001 with a QR", warmed)
	}
}

// TestTraceFollowsThePress checks the steps a press reports to Deps.Trace
// (the device's own timing of press → QR, logged with zmonitor.verbose=1)
// come in the order the work is done, and only once the work is done: the
// screen step comes after the QR view was shown.
func TestTraceFollowsThePress(t *testing.T) {
	r := newRig(t, nil)
	r.waitState(state.Unprovisioned)
	if err := r.eng.Press(); err != nil {
		t.Fatal(err)
	}
	r.waitView("pairing QR", func(v screen.View) bool { return v.State == state.ReadyToPair && len(v.QRText) > 0 })
	want := []string{"button press received", "state change recorded", "pairing token signed", "provisioning port open", "pairing screen drawn"}
	// The last step is reported right after Show returns, so it may trail
	// the view by a moment.
	got := r.steps()
	for deadline := time.Now().Add(5 * time.Second); !slices.Contains(got, want[len(want)-1]) && time.Now().Before(deadline); got = r.steps() {
		time.Sleep(time.Millisecond)
	}
	i := slices.Index(got, want[0])
	if i < 0 || len(got) < i+len(want) || !slices.Equal(got[i:i+len(want)], want) {
		t.Fatalf("trace %q, want %q in order after the press", got, want)
	}
	if !r.eng.Status().Listening {
		t.Error("the trace said the port was open but the engine is not listening")
	}
}
