package engine_test

import (
	"context"
	"crypto/x509"
	"strings"
	"testing"
	"time"

	"github.com/zmonitor/firmware/internal/base/clock"
	"github.com/zmonitor/firmware/internal/base/clock/clocktest"
	"github.com/zmonitor/firmware/internal/central/pusher"
	"github.com/zmonitor/firmware/internal/central/store"
	"github.com/zmonitor/firmware/internal/central/store/pgtest"
	"github.com/zmonitor/firmware/internal/fw/audit"
	"github.com/zmonitor/firmware/internal/fw/audit/audittest"
	"github.com/zmonitor/firmware/internal/fw/conncheck"
	"github.com/zmonitor/firmware/internal/fw/engine"
	"github.com/zmonitor/firmware/internal/fw/keys"
	"github.com/zmonitor/firmware/internal/fw/screen"
	"github.com/zmonitor/firmware/internal/proto/failure"
	"github.com/zmonitor/firmware/internal/proto/state"
	"github.com/zmonitor/firmware/internal/testkit/fleet"
)

// fleetEngine runs the engine of a fleet device, started PROVISIONED as the
// boot plan would, on a fake clock.
type fleetEngine struct {
	t    *testing.T
	dev  *fleet.Device
	clk  *clocktest.Fake
	eng  *engine.Engine
	disp *display
	rec  chan struct{} // a signal after each audit record
}

// notifying is the device's audit recorder that signals each record.
type notifying struct {
	*audittest.Recorder
	ch chan struct{}
}

func (n notifying) Record(ev audit.Event) error {
	err := n.Recorder.Record(ev)
	select {
	case n.ch <- struct{}{}:
	default:
	}
	return err
}

func startFleetEngine(t *testing.T, d *fleet.Device) *fleetEngine {
	t.Helper()
	return startFleetEngineAhead(t, d, 0)
}

// startFleetEngineAhead is startFleetEngine with the device's own clock
// ahead by ahead (its RTC says so: no server has to).
func startFleetEngineAhead(t *testing.T, d *fleet.Device, ahead time.Duration) *fleetEngine {
	t.Helper()
	f := &fleetEngine{t: t, dev: d, clk: clocktest.New(time.Now().Add(ahead)), disp: &display{ch: make(chan screen.View, 1<<16)}, rec: make(chan struct{}, 1)}
	cur := d.Current(t)
	var err error
	f.eng, err = engine.New(engine.Options{
		DeviceID: d.ID, ListenAddr: "127.0.0.1:0", ConnAttempts: 1,
		Start: engine.Start{State: state.Provisioned, Committed: &cur},
	}, engine.Deps{
		Clock: f.clk, Wall: clock.NewWall(f.clk, buildTime, nil), Keys: d.Keys, Settings: d.Settings,
		Audit: notifying{d.Audit, f.rec}, Display: f.disp, Anchors: x509.NewCertPool(),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.eng.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	<-f.eng.Ready()
	return f
}

// waitFor waits, record by record, until the device has recorded n events
// named ev; it returns the last view shown once the engine has finished
// the step that recorded it.
func (f *fleetEngine) waitFor(ev string, n int) screen.View {
	f.t.Helper()
	for len(f.dev.Audit.Named(ev)) < n {
		<-f.rec
	}
	// The record is made on the engine's goroutine, before it shows and
	// publishes the status: a round trip to it waits for both.
	f.eng.Current()
	f.disp.mu.Lock()
	defer f.disp.mu.Unlock()
	return f.disp.views[len(f.disp.views)-1]
}

// waitView waits, view by view, for a view that satisfies ok.
func (f *fleetEngine) waitView(ok func(screen.View) bool) screen.View {
	for {
		if v := <-f.disp.ch; ok(v) {
			return v
		}
	}
}

// The --clock-offset drill in one process: the Central Station's clock is
// 9 months ahead; the device learns it from the connection check after
// boot, corroborated by its check-in with the EST server (clock.MaxStep), finds its certificate due, renews with a new key in slot B, and
// stays PROVISIONED on the new pair.
func TestRenewalWhenTheClockSaysSo(t *testing.T) {
	s := fleet.NewStation(t, pgtest.SQLiteDSN(t))
	d := s.NewDevice(t, "ZM-001")
	old := d.Current(t)
	s.SetOffset(273 * 24 * time.Hour)
	f := startFleetEngine(t, d)
	f.waitFor("RENEWAL_SUCCEEDED", 1)

	cur, ok := f.eng.Current()
	if !ok || cur.ClientKeyRef != keys.SlotB.Ref() || string(cur.ClientCertDER) == string(old.ClientCertDER) {
		t.Fatalf("after the renewal the engine holds key %q", cur.ClientKeyRef)
	}
	if _, err := d.Keys.ClientKeyAt(keys.SlotA); err == nil {
		t.Error("the old key is still in slot A")
	}
	st := f.eng.Status()
	if st.State != state.Provisioned || st.Renewal.Failures != 0 || !st.Renewal.Enabled {
		t.Errorf("status after the renewal: %+v", st)
	}
	cert, _ := x509.ParseCertificate(cur.ClientCertDER)
	if !st.Renewal.Expires.Equal(cert.NotAfter) {
		t.Errorf("status shows expiry %v, the new certificate's is %v", st.Renewal.Expires, cert.NotAfter)
	}
	for _, ev := range []string{"RENEWAL_STARTED", "RENEWAL_ISSUED"} {
		if len(d.Audit.Named(ev)) != 1 {
			t.Errorf("%s recorded %d times", ev, len(d.Audit.Named(ev)))
		}
	}
	f.waitFor("RENEWAL_CONFIRMED", 1)
	if got, err := s.Store.Certificate(context.Background(), store.CertificateSerial(cert)); err != nil || got.State != store.CertificateInUse {
		t.Errorf("the station's record of the new certificate: %v, %v", got.State, err)
	}
	// The last known good time was persisted.
	if lk, err := d.Settings.LastKnownTime(); err != nil || lk.Before(time.Now().Add(272*24*time.Hour)) {
		t.Errorf("last known time persisted: %v, %v", lk, err)
	}
	// Not due again: no second attempt until the new certificate is.
	if next := f.eng.Status().Renewal.Next; !next.After(time.Now().Add(273 * 24 * time.Hour)) {
		t.Errorf("next renewal look at %v", next)
	}
}

// Renewal keeps failing near expiry: the screen warns, the retries back
// off, the device stays PROVISIONED on its old pair.
func TestRenewalFailingNearExpiryWarns(t *testing.T) {
	s := fleet.NewStation(t, pgtest.SQLiteDSN(t))
	d := s.NewDevice(t, "ZM-001")
	old := d.Current(t)
	cert, _ := x509.ParseCertificate(old.ClientCertDER)
	s.StopEST()
	// 10 days left by the device's own clock: with the EST server down,
	// no second server could corroborate a server's jump (clock.MaxStep).
	f := startFleetEngineAhead(t, d, time.Until(cert.NotAfter)-10*24*time.Hour)
	f.waitFor("RENEWAL_FAILED", 1)
	v := f.waitView(func(v screen.View) bool { return v.Notice != "" })
	if v.State != state.Provisioned || !strings.Contains(v.Notice, "renewal failing") || !strings.Contains(v.Notice, cert.NotAfter.UTC().Format("2006-01-02")) {
		t.Fatalf("screen after a failed renewal near expiry: %+v", v)
	}
	st := f.eng.Status()
	if !st.Renewal.Warn || st.Renewal.Failures != 1 || st.Renewal.LastErr == "" {
		t.Errorf("status: %+v", st.Renewal)
	}
	if cur, _ := f.eng.Current(); string(cur.ClientCertDER) != string(old.ClientCertDER) {
		t.Error("a failed renewal changed the committed certificate")
	}
	// The retry: at most a minute (jittered), then the second attempt.
	f.clk.Advance(time.Minute)
	f.waitFor("RENEWAL_FAILED", 2)
	if st := f.eng.Status(); st.Renewal.Failures != 2 {
		t.Errorf("after the retry: %+v", st.Renewal)
	}
	// The console's renew starts a third attempt at once.
	if err := f.eng.RenewNow("console"); err != nil {
		t.Fatal(err)
	}
	f.waitFor("RENEWAL_FAILED", 3)
}

// Renewal failing while expiry is far: no warning on the screen (status
// and the audit say it), the device stays PROVISIONED on its old pair.
func TestRenewalFailingFarFromExpiryDoesNotWarn(t *testing.T) {
	s := fleet.NewStation(t, pgtest.SQLiteDSN(t))
	d := s.NewDevice(t, "ZM-001")
	old := d.Current(t)
	s.StopEST()
	f := startFleetEngineAhead(t, d, 273*24*time.Hour) // due, 124 days left
	v := f.waitFor("RENEWAL_FAILED", 1)
	st := f.eng.Status()
	if st.Renewal.Failures != 1 || st.Renewal.Warn || st.State != state.Provisioned {
		t.Errorf("status: %+v", st)
	}
	if v.Notice != "" || f.eng.Status().Renewal.Warn {
		t.Errorf("the screen warns 124 days before expiry: %q", v.Notice)
	}
	if err := f.eng.RenewNow("console"); err != nil {
		t.Fatal(err)
	}
	v = f.waitFor("RENEWAL_FAILED", 2)
	if v.Notice != "" {
		t.Errorf("the screen warns 124 days before expiry: %q", v.Notice)
	}
	if cur, _ := f.eng.Current(); string(cur.ClientCertDER) != string(old.ClientCertDER) {
		t.Error("a failed renewal changed the committed certificate")
	}
}

// The verified payload's timestamp becomes the last known good time (the
// Central Station's clock a few minutes ahead of the monitoring server's
// and the device's).
func TestPairingKeepsThePayloadTimeAsLastKnownGood(t *testing.T) {
	r := newRig(t, nil)
	q := r.pair()
	ahead := r.clk.Now().Add(4 * time.Minute)
	if _, err := r.pusher(func(c *pusher.Config) { c.Now = func() time.Time { return ahead } }).Provision(context.Background(), r.job(q), nil); err != nil {
		t.Fatal(err)
	}
	r.waitState(state.Provisioned)
	lk, err := r.set.LastKnownTime()
	if err != nil || lk.Before(ahead.Truncate(time.Second)) {
		t.Errorf("last known good time %v (%v), want at least the payload's %v", lk, err, ahead)
	}
}

// A revoked certificate: the monitoring server (enforcing the device CA's
// CRL) refuses it at the boot's connection check; the device stays
// PROVISIONED and its screen says so with the code; the audit has the code.
func TestRevokedCertificateOnTheScreen(t *testing.T) {
	s := fleet.NewStation(t, pgtest.SQLiteDSN(t))
	d := s.NewDevice(t, "ZM-001")
	cert, _ := x509.ParseCertificate(d.Current(t).ClientCertDER)
	if err := s.Store.RevokeCertificate(context.Background(), store.CertificateSerial(cert), store.ReasonKeyCompromise); err != nil {
		t.Fatal(err)
	}
	f := startFleetEngine(t, d)
	v := f.waitFor("CONNECTION_CHECK_FAILED", 1)
	if v.State != state.Provisioned || v.Notice != engine.RevokedNotice || !strings.Contains(v.Notice, "Certificate revoked") {
		t.Errorf("screen: %+v", v)
	}
	if ev := d.Audit.Named("CONNECTION_CHECK_FAILED")[0]; ev.Code != failure.CertificateRevoked.String() {
		t.Errorf("audit: %+v", ev)
	}
	if st := f.eng.Status(); st.ConnCheck.Verdict != conncheck.Failed || !strings.Contains(st.ConnCheck.Detail, "revoked") {
		t.Errorf("status: %+v", st.ConnCheck)
	}
}
