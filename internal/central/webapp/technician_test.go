package webapp

import (
	"context"
	"image"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/zmonitor/firmware/internal/base/clock/clocktest"
	"github.com/zmonitor/firmware/internal/central/store"
	"github.com/zmonitor/firmware/internal/fw/screen"
	"github.com/zmonitor/firmware/internal/proto/failure"
	"github.com/zmonitor/firmware/internal/proto/pairing"
	"github.com/zmonitor/firmware/internal/proto/state"
	"github.com/zmonitor/firmware/internal/proto/tabletwire"
	"github.com/zmonitor/firmware/internal/testkit/browser"
)

// cameraOn writes a Y4M of the device's READY_TO_PAIR screen showing the
// session's QR code, as a tablet's camera sees it (perspective, blur,
// glare), and returns the camera that plays it.
func cameraOn(t testing.TB, d *device, sess *pairing.Session) browser.Camera {
	t.Helper()
	return cameraOnEach(t, 2, shown{d, sess})
}

// shown is a device's screen with its session's QR code.
type shown struct {
	d    *device
	sess *pairing.Session
}

// cameraOnEach writes a Y4M showing each screen in turn for perFrame
// frames (at 15 frames a second, looping), as a tablet's camera sees it,
// and returns the camera that plays it: the technician moving from
// monitor to monitor.
func cameraOnEach(t testing.TB, perScreen int, screens ...shown) browser.Camera {
	t.Helper()
	r, err := screen.NewRenderer()
	if err != nil {
		t.Fatal(err)
	}
	var view browser.View
	for _, cv := range browser.CameraViews(1280, 720) {
		if strings.HasPrefix(cv.Name, "all-") {
			view = cv
		}
	}
	var frames []image.Image
	for _, sc := range screens {
		v := screen.SampleView(state.ReadyToPair)
		v.DeviceID, v.DeviceSerial, v.IPAddress = sc.d.id, "SN-"+sc.d.id, "192.0.2.10"
		v.QRText, v.PairingCode = sc.sess.QR().Marshal(), sc.sess.Code().Display()
		f, err := r.Render(v, 240, 240)
		if err != nil {
			t.Fatal(err)
		}
		for seed := range uint64(perScreen) {
			s := view.Scene
			s.Seed = seed
			img, err := s.Render(f.Img)
			if err != nil {
				t.Fatal(err)
			}
			frames = append(frames, img)
		}
	}
	path := filepath.Join(t.TempDir(), "camera.y4m")
	if err := browser.WriteY4MFile(path, 15, frames...); err != nil {
		t.Fatal(err)
	}
	return browser.CameraFromFile(path)
}

// TestScanProvisionFollowsEachStep: the technician's path end to end in
// the browser: the fake camera shows the device's screen, the page reads
// the QR code, shows the device (ID, serial, inventory label, address,
// time left), Provision starts the pairing, and its page shows each step
// the device reports as it happens (server-sent events), then PROVISIONED
// with the label.
func TestScanProvisionFollowsEachStep(t *testing.T) {
	s := newSite(t, siteOpts{})
	_, link := s.addPerson("Grace", store.RoleTechnician)
	d := s.enroll("ZM-001", "ICU-MON-04")
	sess := d.session(t)
	b := s.browser(browser.Options{Camera: cameraOn(t, d, sess)})
	tb := s.tablet(b)
	tb.enrollWith(link) // lands on /scan: the camera reads the QR
	tb.waitPath("/preview")
	for sel, want := range map[string]string{
		"#device-id": "ZM-001", "#device-serial": "SN-ZM-001", "#device-label": "ICU-MON-04", "#device-address": "192.0.2.10",
	} {
		if got := tb.text(sel); got != want {
			t.Errorf("preview %s = %q, want %q", sel, got, want)
		}
	}
	if left := tb.text("#time-left"); !strings.Contains(left, ":") {
		t.Errorf("time left %q", left)
	}
	if scanner, _ := chromedp.Run(tb.ctx, chromedp.Evaluate[string](`document.body.dataset.scanner || ''`)); scanner != "" {
		t.Logf("scanner %s", scanner)
	}

	release := s.devs.hold("ZM-001")
	defer release()
	tb.click("#provision")
	tb.waitPath("/pairings/")
	// Held after PAIRING_RECEIVED: the page shows it as the current step.
	tb.poll(`document.querySelector('[data-step="PAIRING_RECEIVED"]').className.includes('current')`)
	if got := tb.text("#status"); !strings.Contains(got, "received the configuration") {
		t.Errorf("status while held: %q", got)
	}
	release()
	tb.waitText("#result-title", "PROVISIONED: ZM-001 is ready")
	if got := tb.text("#result-label"); got != "Label ICU-MON-04" {
		t.Errorf("label line %q", got)
	}
	for _, st := range []string{"PAIRING_RECEIVED", "APPLYING_CONFIG", "TESTING_CONNECTION", "PROVISIONED"} {
		cls, _ := chromedp.Run(tb.ctx, chromedp.Evaluate[string](`document.querySelector('[data-step="`+st+`"]').className`))
		if !strings.Contains(cls, "done") {
			t.Errorf("step %s is %q after PROVISIONED", st, cls)
		}
	}
	jobs := s.devs.Jobs()
	if len(jobs) != 1 || jobs[0].Token != sess.QR().PairingToken || jobs[0].Label != "ICU-MON-04" {
		t.Errorf("provisioner got %d jobs (%+v), want one with the screen's token and the label", len(jobs), jobs)
	}
}

// TestTypedCodePath: the QR code will not scan: the technician types the
// device ID, address and pairing code, sees the device and provisions it.
func TestTypedCodePath(t *testing.T) {
	s := newSite(t, siteOpts{})
	_, link := s.addPerson("Grace", store.RoleTechnician)
	d := s.enroll("ZM-002", "WARD-7")
	sess := d.session(t)
	b := s.browser(browser.Options{})
	tb := s.tablet(b)
	tb.enrollWith(link)
	tb.open("/code")
	code := strings.ToLower(strings.ReplaceAll(sess.Code().Display(), "-", " ")) // as typed: case and separators do not matter
	if err := chromedp.Do(tb.ctx,
		chromedp.SendKeys(chromedp.CSS("#deviceId"), "ZM-002"),
		chromedp.SendKeys(chromedp.CSS("#address"), "192.0.2.10"),
		chromedp.SendKeys(chromedp.CSS("#pairingCode"), code),
		chromedp.Submit(chromedp.CSS("#pairingCode")),
	); err != nil {
		t.Fatal(err)
	}
	tb.waitPath("/preview")
	if got := tb.text("#device-label"); got != "WARD-7" {
		t.Errorf("preview label %q", got)
	}
	tb.click("#provision")
	tb.waitText("#result-title", "PROVISIONED: ZM-002 is ready")
	jobs := s.devs.Jobs()
	if len(jobs) != 1 || jobs[0].PairingCode != sess.Code().Display() || jobs[0].Address != "192.0.2.10:8444" {
		t.Errorf("jobs %+v, want the typed code for 192.0.2.10:8444", jobs)
	}
}

// TestFailuresShowTitleActionAndNextStep: the spec's five errors, as the
// device reports them, and refusals of the Central Station, each shown
// with its title and what to do, and the next step as a button.
func TestFailuresShowTitleActionAndNextStep(t *testing.T) {
	s := newSite(t, siteOpts{})
	_, link := s.addPerson("Grace", store.RoleTechnician)
	b := s.browser(browser.Options{})
	tb := s.tablet(b)
	tb.enrollWith(link)
	for i, code := range []failure.Code{failure.PairingCodeMismatch, failure.PayloadExpired, failure.SignatureInvalid, failure.CertificateInvalid, failure.ConnectionFailed} {
		t.Run(code.String(), func(t *testing.T) {
			tb := tb.on(t)
			id := "ZM-10" + string(rune('0'+i))
			d := s.enroll(id, "")
			s.devs.set(id, refuses(code))
			tb.typeCode(id, d.session(t).Code().Display())
			tb.click("#provision")
			tb.waitText("#result-title", code.Title())
			if got := tb.text("#result-action"); got != "What to do: "+code.UserAction()+"." {
				t.Errorf("action %q, want %q", got, code.UserAction())
			}
			if got := tb.text(".next a.primary"); got == "" {
				t.Error("no next step button")
			}
		})
	}
	t.Run("refusals", func(t *testing.T) {
		tb := tb.on(t)
		// Not in the inventory: refused at the preview, before anything.
		stranger := &device{id: "ZM-999", key: s.enroll("ZM-998", "").key}
		tb.typeCode("ZM-999", stranger.session(t).Code().Display())
		tb.waitText("#problem-title", "Device not in the inventory")
		if got := tb.text("#problem-action"); !strings.Contains(got, "Contact IT support") {
			t.Errorf("action %q", got)
		}
		// A typo in the code: caught before the device is asked.
		s.enroll("ZM-200", "")
		tb.typeCode("ZM-200", "ABC-123-DEF")
		tb.waitText("#problem-title", "Pairing code mistyped")
		if got := tb.text(".next a.primary"); got != "Type the code" {
			t.Errorf("after a typo the first button is %q, want Type the code", got)
		}
		// The same code twice: the second provision is refused and the
		// refusal recorded, its page says why.
		d := s.enroll("ZM-201", "")
		c := d.session(t).Code().Display()
		tb.typeCode("ZM-201", c)
		tb.click("#provision")
		tb.waitText("#result-title", "PROVISIONED")
		tb.typeCode("ZM-201", c)
		tb.click("#provision")
		tb.waitText("#result-title", "Pairing code already used")
	})
}

// typeCode fills the typed-code form and submits it.
func (tb *tablet) typeCode(id, code string) {
	tb.t.Helper()
	tb.open("/code")
	if err := chromedp.Do(tb.ctx,
		chromedp.SetValue(chromedp.CSS("#deviceId"), id),
		chromedp.SetValue(chromedp.CSS("#address"), "192.0.2.10"),
		chromedp.SetValue(chromedp.CSS("#pairingCode"), code),
		chromedp.Submit(chromedp.CSS("#pairingCode")),
	); err != nil {
		tb.t.Fatal(err)
	}
	tb.poll(`document.readyState === 'complete' && location.pathname === '/preview'`)
}

// TestCameraDeniedOrAbsent: without a camera, or with the camera refused,
// the scan page says so and offers the typed-code path.
func TestCameraDeniedOrAbsent(t *testing.T) {
	for name, c := range map[string]struct {
		cam   browser.Camera
		title string
	}{
		"denied": {browser.CameraDenied(), "Camera not allowed"},
		"absent": {browser.CameraAbsent(), "No camera found"},
	} {
		t.Run(name, func(t *testing.T) {
			s := newSite(t, siteOpts{})
			_, link := s.addPerson("Grace", store.RoleTechnician)
			tb := s.tablet(s.browser(browser.Options{Camera: c.cam}))
			tb.enrollWith(link)
			tb.waitText("#no-camera-title", c.title)
			if hidden, _ := chromedp.Run(tb.ctx, chromedp.Evaluate[bool](`document.getElementById('no-camera').hidden`)); hidden {
				t.Error("the camera message is hidden")
			}
			tb.click("#no-camera a.button")
			tb.waitPath("/code")
		})
	}
}

// TestTechnicianSeesOnlyOwnPairings: another technician's pairing is not
// in My pairings, its page is "No such pairing" and its events are
// refused; an operator sees it.
func TestTechnicianSeesOnlyOwnPairings(t *testing.T) {
	s := newSite(t, siteOpts{})
	ada, _ := s.addPerson("Ada", store.RoleTechnician)
	_, bobLink := s.addPerson("Bob", store.RoleTechnician)
	_, opLink := s.addPerson("Olga", store.RoleOperator)
	d := s.enroll("ZM-001", "")
	acc, err := s.api.Pair(context.Background(), ada, tabletwireQR(d.session(t)))
	if err != nil {
		t.Fatal(err)
	}
	s.api.Wait()

	bob := s.tablet(s.browser(browser.Options{}))
	bob.enrollWith(bobLink)
	bob.open("/pairings")
	if strings.Contains(bob.text("main"), "ZM-001") {
		t.Error("Bob's pairings list Ada's")
	}
	bob.open("/pairings/" + acc.PairingID)
	if got := bob.text("h1"); got != "No such pairing" {
		t.Errorf("Bob opening Ada's pairing sees %q", got)
	}
	if st := bob.fetch("GET", "/pairings/"+acc.PairingID+"/events", "", ""); st != 404 {
		t.Errorf("Bob following Ada's pairing: %d, want 404", st)
	}

	op := s.tablet(s.browser(browser.Options{}))
	op.enrollWith(opLink)
	op.open("/pairings/" + acc.PairingID)
	op.waitText("#result-title", "PROVISIONED: ZM-001 is ready")
}

// TestRevokedPasskeyEndsTheSession: the operator revokes a tablet's
// passkey: that tablet's next request finds its session ended, and its
// passkey no longer signs in (refused, audited).
func TestRevokedPasskeyEndsTheSession(t *testing.T) {
	s := newSite(t, siteOpts{})
	tech, link := s.addPerson("Grace", store.RoleTechnician)
	tb := s.tablet(s.browser(browser.Options{}))
	tb.enrollWith(link)
	tb.open("/pairings")
	tb.waitPath("/pairings")
	ks, _ := s.st.Passkeys(context.Background(), tech.ID)
	if err := s.st.RevokePasskey(context.Background(), ks[0].ID); err != nil {
		t.Fatal(err)
	}
	tb.open("/pairings")
	tb.waitPath("/sign-in")
	tb.click("#sign-in")
	tb.waitText("#status", "Sign-in refused")
	if !s.audited("web.sign_in_failed", tech.ID) {
		t.Errorf("no web.sign_in_failed for %s: %v", tech.ID, s.auditEvents())
	}
}

// TestSessionExpiresMidPairing: the session ends (idle timeout) while a
// device is being provisioned; the pairing goes on, and after signing in
// again the technician lands on its page and sees the result.
func TestSessionExpiresMidPairing(t *testing.T) {
	clk := clocktest.New(time.Now())
	s := newSite(t, siteOpts{clock: clk})
	_, link := s.addPerson("Grace", store.RoleTechnician)
	d := s.enroll("ZM-001", "ICU-1")
	tb := s.tablet(s.browser(browser.Options{}))
	tb.enrollWith(link)
	release := s.devs.hold("ZM-001")
	defer release()
	tb.typeCode("ZM-001", d.session(t).Code().Display())
	tb.click("#provision")
	tb.waitPath("/pairings/")
	pairingPath := tb.path()
	clk.Advance(DefaultIdleTimeout + time.Minute) // the tablet lies idle
	release()
	// The stream that was open gives the outcome; the page loads again to
	// show it, and finds its session over.
	tb.waitPath("/sign-in")
	if !s.audited("web.session_expired", s.techID("Grace")) {
		t.Errorf("no web.session_expired in %v", s.auditEvents())
	}
	tb.click("#sign-in")
	tb.waitPath(pairingPath)
	tb.waitText("#result-title", "PROVISIONED: ZM-001 is ready")
}

func (s *site) techID(name string) string {
	ts, err := s.st.Technicians(context.Background())
	if err != nil {
		s.t.Fatal(err)
	}
	for _, t := range ts {
		if t.Name == name {
			return t.ID
		}
	}
	s.t.Fatalf("no technician %s", name)
	return ""
}

func tabletwireQR(sess *pairing.Session) tabletwire.PairingRequest {
	return tabletwire.PairingRequest{QR: string(sess.QR().Marshal())}
}
