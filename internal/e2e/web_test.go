package e2e

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zmonitor/firmware/board"
	"github.com/zmonitor/firmware/internal/central/store"
	"github.com/zmonitor/firmware/internal/central/webapp"
	"github.com/zmonitor/firmware/internal/testkit/browser"
	"github.com/zmonitor/firmware/internal/testkit/harness"
)

// TestWebAppProvisionsTheBoard is the technician's path through the web
// app on the real image: sign in on the tablet with a passkey (registered
// from a one-time enrollment link), point the tablet's camera (Chromium's
// fake camera playing the board's QMP screendump as a hand-held camera
// sees it) at the device's screen, check the device the page shows,
// Provision, and watch the page reach PROVISIONED with the label while
// the device's console says PROVISIONED.
func TestWebAppProvisionsTheBoard(t *testing.T) {
	e := need(t)
	if _, err := browser.Chromium(); err != nil {
		if browserRequired() {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	c := newCentral(t)
	d := boot(t, e, c, board.QEMUVirt(), t.TempDir())
	ctx := ctxT(t, 4*time.Minute)
	if err := d.WaitState(ctx, "UNPROVISIONED"); err != nil {
		t.Fatal(err)
	}

	w := newWebStation(ctx, t, c, d)
	st, srv := w.st, w.srv
	link, err := webapp.CreateEnrollmentLink(ctx, st, w.techID, "cli", srv.Origin, time.Now(), nil)
	if err != nil {
		t.Fatal(err)
	}

	// The technician presses the button; the tablet's camera sees the
	// screen.
	if err := d.Press(ctx); err != nil {
		t.Fatal(err)
	}
	qr, shot := scan(t, ctx, d, "")
	y4m := filepath.Join(t.TempDir(), "camera.y4m")
	if err := browser.WriteHandheldVideo(shot, y4m); err != nil {
		t.Fatal(err)
	}
	b := browser.ForTest(t, browser.Options{Camera: browser.CameraFromFile(y4m), Trust: []*x509.Certificate{srv.Cert}})
	tb := browser.NewTablet(b.Tab(t), srv.Origin)
	if err := tb.Enroll(link.URL); err != nil { // signed in on the scan page: the camera reads the QR
		t.Fatal(err)
	}
	if err := tb.WaitPath("/preview"); err != nil {
		t.Fatal(err)
	}
	if got := tb.Text("#device-id") + " " + tb.Text("#device-label"); got != w.deviceID+" ICU-MON-04" {
		t.Errorf("preview shows %q", got)
	}
	if err := tb.Tap("#provision"); err != nil {
		t.Fatal(err)
	}
	if err := tb.WaitText("#result-title", "PROVISIONED: "+w.deviceID+" is ready"); err != nil {
		t.Fatalf("%v\nconsole:\n%s", err, harness.Tail(d.ConsoleText(), 30))
	}
	if got := tb.Text("#result-label"); got != "Label ICU-MON-04" {
		t.Errorf("result label %q", got)
	}
	if err := d.WaitState(ctx, "PROVISIONED"); err != nil {
		t.Fatal(err)
	}
	ps, err := st.TechnicianPairings(ctx, w.techID, time.Time{}, 10)
	if err != nil || len(ps) != 1 || ps[0].State != store.PairingSucceeded || ps[0].Method != store.MethodQR || ps[0].Label != "ICU-MON-04" {
		t.Errorf("pairings %+v %v", ps, err)
	}
	if len(qr) == 0 {
		t.Error("the screen showed no QR")
	}
}

func browserRequired() bool { return os.Getenv(browser.EnvRequired) == "1" }

// webStation is the Central Station for the web app on the board: the
// real API with the real pusher, the web app on https://localhost:PORT,
// the device's enrollment record in the inventory with the label
// ICU-MON-04, and a technician (techID) with no passkey yet.
type webStation struct {
	st       store.Store
	srv      *browser.Server
	techID   string
	deviceID string
}

func newWebStation(ctx context.Context, t testing.TB, c *harness.Central, d *harness.Device) *webStation {
	t.Helper()
	st, api := newCentralAPI(t, c, d)
	var h atomic.Value
	srv := browser.NewServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.Load().(http.Handler).ServeHTTP(w, r) }))
	app, err := webapp.New(webapp.Config{Store: st, API: api, Origin: srv.Origin})
	if err != nil {
		t.Fatal(err)
	}
	h.Store(app.Handler())
	// Manufacturing: the enrollment record; the operator's label.
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
	if err := st.SetDeviceLabel(ctx, rec.DeviceID, "ICU-MON-04"); err != nil {
		t.Fatal(err)
	}
	// The operator adds the technician (the tablet's passkey comes from an
	// enrollment link).
	tok, _ := store.NewTechnicianToken(nil)
	if _, err := st.AddTechnician(ctx, tok.ID, "biomed", tok.Hash); err != nil {
		t.Fatal(err)
	}
	return &webStation{st: st, srv: srv, techID: tok.ID, deviceID: rec.DeviceID}
}
