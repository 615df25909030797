package e2e

import (
	"github.com/zmonitor/firmware/internal/testkit/harness"

	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"image"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zmonitor/firmware/board"
	"github.com/zmonitor/firmware/internal/central/pusher"
	"github.com/zmonitor/firmware/internal/central/server"
	"github.com/zmonitor/firmware/internal/central/store"
	"github.com/zmonitor/firmware/internal/fw/screen"
	"github.com/zmonitor/firmware/internal/proto/failure"
	"github.com/zmonitor/firmware/internal/proto/pairing"
	"github.com/zmonitor/firmware/internal/proto/payload"
	"github.com/zmonitor/firmware/internal/proto/state"
	"github.com/zmonitor/firmware/internal/tablet"
	"github.com/zmonitor/firmware/internal/testkit/testpki"
)

// station is the Central Station's tablet API (real server, SQLite store,
// the real pusher) for a device on the QEMU board, and a tablet client.
type station struct {
	st     store.Store
	srv    *server.Server
	http   *httptest.Server
	tablet *tablet.Client
}

// newCentralAPI starts the Central Station's tablet API on a fresh SQLite
// inventory with the real pusher, reaching the board's provisioning port
// through QEMU's forwarded port. The caller serves its handler.
func newCentralAPI(t testing.TB, c *harness.Central, d *harness.Device) (store.Store, *server.Server) {
	t.Helper()
	st, err := store.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "central.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	p, err := c.Pusher(nil)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Config{Store: st, Provisioner: p,
		DeviceAddr: func(string, string) string { return d.GuestPort(harness.ProvisioningPort) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return st, srv
}

func newStation(t testing.TB, c *harness.Central, d *harness.Device) *station {
	t.Helper()
	ctx := context.Background()
	st, srv := newCentralAPI(t, c, d)
	tlsCA, _ := testpki.NewCA("tablet API CA", time.Now())
	leaf, _ := tlsCA.NewLeaf(testpki.ServerTemplate("central.test"), time.Now())
	hs := httptest.NewUnstartedServer(srv.Handler())
	hs.TLS = server.TLSConfig(leaf.TLS())
	hs.StartTLS()
	t.Cleanup(hs.Close)
	tok, err := store.NewTechnicianToken(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.AddTechnician(ctx, tok.ID, "biomed", tok.Hash); err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(tlsCA.Cert)
	tc, err := tablet.New("https://"+hs.Listener.Addr().String(), tok.Token, &tablet.Opts{RootCAs: roots, ServerName: "central.test"})
	if err != nil {
		t.Fatal(err)
	}
	// The manufacturing step: the enrollment record into the inventory.
	rec, err := d.Enroll(ctx)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(rec)
	items, err := store.ParseEnrollments(raw)
	if err != nil || len(items) != 1 || items[0].Err != nil {
		t.Fatalf("enrollment: %v %+v", err, items)
	}
	if _, err := st.ImportDevice(ctx, items[0].Enrollment); err != nil {
		t.Fatal(err)
	}
	return &station{st: st, srv: srv, http: hs, tablet: tc}
}

// scan is the technician's tablet reading the screen (a QMP screendump).
func scan(t *testing.T, ctx context.Context, d *harness.Device, not string) ([]byte, image.Image) {
	t.Helper()
	for {
		img, err := d.Screenshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if text, err := tablet.ScanImage(img); err == nil && string(text) != not {
			return text, img
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no pairing QR on the screen")
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// TestTabletPairsThroughCentralStation: the scan is a screendump decoded by
// the tablet library zm-pair is built on; the Central Station's real API
// validates and pushes; a second use of the same QR is refused, also when
// two requests race.
func TestTabletPairsThroughCentralStation(t *testing.T) {
	e := need(t)
	c := newCentral(t)
	d := boot(t, e, c, board.QEMUVirt(), t.TempDir())
	ctx := ctxT(t, 4*time.Minute)
	if err := d.WaitState(ctx, "UNPROVISIONED"); err != nil {
		t.Fatal(err)
	}
	s := newStation(t, c, d)

	if err := d.Press(ctx); err != nil {
		t.Fatal(err)
	}
	qr, _ := scan(t, ctx, d, "")
	// Two tablets send the same scan at once: exactly one gets through.
	var wg sync.WaitGroup
	results := make([]tablet.Result, 2)
	errs := make([]error, 2)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = s.tablet.Pair(ctx, tablet.Request{QR: qr, Label: "ICU-MON-04"})
		}()
	}
	wg.Wait()
	won, refused := 0, 0
	for i := range results {
		var api *tablet.APIError
		switch {
		case errs[i] == nil && results[i].Provisioned():
			won++
		case errors.As(errs[i], &api):
			refused++
		default:
			t.Errorf("request %d: %+v, %v", i, results[i], errs[i])
		}
	}
	if won != 1 || refused != 1 {
		t.Fatalf("racing requests: %d provisioned, %d refused; want 1 and 1", won, refused)
	}
	if err := d.WaitState(ctx, "PROVISIONED"); err != nil {
		t.Fatal(err)
	}
	// And a third, later use of the same scan is refused too.
	if _, err := s.tablet.Pair(ctx, tablet.Request{QR: qr}); err == nil {
		t.Fatal("a used QR was accepted again")
	}
	// The Central Station recorded the certificate it issued; the device
	// committed a certificate for the same key.
	q, _ := pairing.ParseQR(qr)
	certs, err := s.st.Certificates(ctx, q.DeviceID)
	if err != nil || len(certs) != 1 {
		t.Fatalf("issued certificates: %d, %v", len(certs), err)
	}
	cfg, err := d.Command(ctx, "config")
	if err != nil || !strings.Contains(cfg, "ICU-MON-04") || !strings.Contains(cfg, "provisioned") {
		t.Errorf("device config: %q %v", cfg, err)
	}
	var exported bytes.Buffer
	if err := s.st.ExportAudit(ctx, func(r store.AuditRecord) error {
		b, _ := json.Marshal(r)
		exported.Write(append(b, '\n'))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(exported.String(), q.DeviceID) {
		t.Errorf("Central Station audit does not mention %s:\n%s", q.DeviceID, exported.String())
	}
	// After a reboot the device is PROVISIONED and its connection test
	// passes again (audited on the device).
	if err := d.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := d.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if err := d.WaitState(ctx, "PROVISIONED"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		out, err := d.Command(ctx, "audit 20")
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(out, "CONNECTION_CHECK_PASSED") {
			break
		}
		if strings.Contains(out, "CONNECTION_CHECK_FAILED") || time.Now().After(deadline) {
			t.Fatalf("connection test after reboot: %s", out)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestSpecErrorsOnTheBoard drives each error of the spec's table for real on
// the booted image: each ends in PROVISIONING_FAILED with the spec's text on
// the screen and an audit record; a retry then succeeds.
func TestSpecErrorsOnTheBoard(t *testing.T) {
	e := need(t)
	c := newCentral(t)
	d := boot(t, e, c, board.QEMUVirt(), t.TempDir())
	ctx := ctxT(t, 8*time.Minute)
	if err := d.WaitState(ctx, "UNPROVISIONED"); err != nil {
		t.Fatal(err)
	}
	enr, err := d.Enroll(ctx)
	if err != nil {
		t.Fatal(err)
	}
	identity, _, err := enr.Keys()
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		code   failure.Code
		manual string // typed pairing code (manual path)
		tweak  func(*pusher.Config)
		before func()
		after  func()
	}{
		{name: "wrong pairing code typed", code: failure.PairingCodeMismatch, manual: "AAA-000-AAA"},
		{name: "payload older than 1 hour", code: failure.PayloadExpired, tweak: func(p *pusher.Config) {
			p.Now = func() time.Time { return time.Now().Add(-61 * time.Minute) }
		}},
		{name: "signature invalid", code: failure.SignatureInvalid, tweak: func(p *pusher.Config) {
			p.TamperSigned = func(c *payload.Config) { c.DeviceLabel = "TAMPERED" }
		}},
		{name: "certificate invalid", code: failure.CertificateInvalid, tweak: func(p *pusher.Config) {
			p.Tamper = func(c *payload.Config) { c.ClientCertificate = "bm90IGEgY2VydGlmaWNhdGU=" }
		}},
		{name: "connection failed", code: failure.ConnectionFailed,
			before: func() { c.Monitor.Close() },
			after: func() {
				if err := c.RestartMonitor(); err != nil {
					t.Fatal(err)
				}
			}},
	}
	last := ""
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.before != nil {
				tc.before()
			}
			if err := d.PressFor(ctx, "READY_TO_PAIR"); err != nil {
				t.Fatal(err)
			}
			q, _, err := d.ScanQR(ctx, last)
			if err != nil {
				t.Fatal(err)
			}
			last = string(q.Marshal())
			p, err := c.Pusher(tc.tweak)
			if err != nil {
				t.Fatal(err)
			}
			j := d.Job(q, identity)
			if tc.manual != "" {
				j.Token, j.PairingCode = "", tc.manual
			}
			out, err := p.Provision(ctx, j, nil)
			if err != nil || out.State != "PROVISIONING_FAILED" || out.Code != tc.code {
				t.Fatalf("outcome %+v, %v; want PROVISIONING_FAILED %s", out, err, tc.code)
			}
			st, _ := d.Command(ctx, "status")
			if !strings.Contains(st, "PROVISIONING_FAILED") || !strings.Contains(st, tc.code.Title()) || !strings.Contains(st, tc.code.UserAction()) {
				t.Errorf("status: %q", st)
			}
			// The screen shows exactly the failure screen for this code
			// (the panel is scanned out within a frame or two).
			want := screen.View{State: state.ProvisioningFailed, DeviceID: enr.DeviceID, DeviceSerial: enr.DeviceSerial,
				FirmwareVersion: enr.FirmwareVersion, IPAddress: q.IPAddress, Failure: tc.code}
			var diff float64
			for deadline := time.Now().Add(5 * time.Second); ; {
				img, err := d.Screenshot(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if diff = screenDiff(t, img, want); diff <= 0.01 || time.Now().After(deadline) {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			if diff > 0.01 {
				t.Errorf("screen differs from the %s failure screen in %.1f%% of pixels", tc.code, 100*diff)
				if *keepShots != "" {
					save(t, d, "failed-"+tc.code.String())
					f, _ := os.Create(filepath.Join(*keepShots, "want-"+tc.code.String()+".png"))
					screen.RenderPNG(want, 240, 240, f)
					f.Close()
				}
			}
			audit, _ := d.Command(ctx, "audit 30")
			if !strings.Contains(audit, "PROVISIONING_FAILED code="+tc.code.String()) {
				t.Errorf("no audit record for %s:\n%s", tc.code, audit)
			}
			if tc.after != nil {
				tc.after()
			}
			// The next case's one press gives a new QR, as the screen says.
		})
	}
	// The retry succeeds: one press on the failure screen, a new QR.
	if err := d.PressFor(ctx, "READY_TO_PAIR"); err != nil {
		t.Fatal(err)
	}
	q, _, err := d.ScanQR(ctx, last)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := c.Pusher(nil)
	if out, err := p.Provision(ctx, d.Job(q, identity), nil); err != nil || out.State != "PROVISIONED" {
		t.Fatalf("retry: %+v, %v", out, err)
	}
}

// screenDiff renders want locally and returns the share of pixels that
// differ from the screenshot.
func screenDiff(t *testing.T, got image.Image, want screen.View) float64 {
	t.Helper()
	r, err := screen.NewRenderer()
	if err != nil {
		t.Fatal(err)
	}
	b := got.Bounds()
	f, err := r.Render(want, b.Dx(), b.Dy())
	if err != nil {
		t.Fatal(err)
	}
	diff := 0
	for y := 0; y < b.Dy(); y++ {
		for x := 0; x < b.Dx(); x++ {
			r1, g1, b1, _ := got.At(b.Min.X+x, b.Min.Y+y).RGBA()
			r2, g2, b2, _ := f.Img.At(x, y).RGBA()
			if absDiff(r1, r2) > 0x1000 || absDiff(g1, g2) > 0x1000 || absDiff(b1, b2) > 0x1000 {
				diff++
			}
		}
	}
	return float64(diff) / float64(b.Dx()*b.Dy())
}

func absDiff(a, b uint32) uint32 {
	if a > b {
		return a - b
	}
	return b - a
}
