package webapp

import (
	"context"
	"crypto/x509"
	"fmt"
	"image"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/zmonitor/firmware/internal/central/store"
	"github.com/zmonitor/firmware/internal/proto/failure"
	"github.com/zmonitor/firmware/internal/testkit/browser"
)

// EnvScreenshots names a directory where TestEveryPageAccessibleOnTablets
// writes each page's screenshot at both tablet sizes (docs/img/web is where
// the committed ones live).
const EnvScreenshots = "ZM_WEB_SCREENSHOTS"

// smallTargets lists the visible buttons, links and inputs smaller than
// 48×48 CSS pixels.
const smallTargets = `[...document.querySelectorAll('a, button, input:not([type=hidden]), select, textarea')]
	.filter(e => e.offsetParent !== null)
	.map(e => [e, e.getBoundingClientRect()])
	.filter(([e, r]) => r.width < 48 || r.height < 48)
	.map(([e, r]) => e.tagName + (e.id ? '#' + e.id : '') + ' "' + e.textContent.trim().slice(0, 30) + '" ' + Math.round(r.width) + 'x' + Math.round(r.height))`

// TestEveryPageAccessibleOnTablets opens every page of the technician's
// path in its states (sign-in, enrollment, scan, no camera, typed code,
// preview, refusal, progress, provisioned, failed, my pairings, not
// found) at 768×1024 and 1280×800, and checks: axe-core finds no serious
// or critical violation, and every button, link and field is at least
// 48×48 CSS pixels. With ZM_WEB_SCREENSHOTS set it saves screenshots.
func TestEveryPageAccessibleOnTablets(t *testing.T) {
	s := newSite(t, siteOpts{})
	tech, link := s.addPerson("Grace Hopper", store.RoleTechnician)
	ready := s.enroll("ZM-001", "ICU-MON-04")
	failed := s.enroll("ZM-002", "ICU-MON-05")
	s.devs.set("ZM-002", refuses(failure.PairingCodeMismatch))
	running := s.enroll("ZM-003", "WARD-7")
	release := s.devs.hold("ZM-003")
	defer release()
	ctx := context.Background()
	accOK, err := s.api.Pair(ctx, tech, tabletwireQR(ready.session(t)))
	if err != nil {
		t.Fatal(err)
	}
	accFailed, err := s.api.Pair(ctx, tech, tabletwireQR(failed.session(t)))
	if err != nil {
		t.Fatal(err)
	}
	accRunning, err := s.api.Pair(ctx, tech, tabletwireQR(running.session(t)))
	if err != nil {
		t.Fatal(err)
	}
	preview := s.enroll("ZM-004", "ICU-MON-06")
	previewSess := preview.session(t)

	shots := os.Getenv(EnvScreenshots)
	b := s.browser(browser.Options{Camera: blankCamera(t)})
	tb := s.tablet(b)
	noCam := s.tablet(s.browser(browser.Options{Camera: browser.CameraDenied()}))
	_, link2 := s.addPerson("Alan", store.RoleTechnician)

	type visit struct {
		name string
		tab  *tablet
		go_  func(tb *tablet)
	}
	visits := []visit{
		{"sign-in", tb, func(tb *tablet) { tb.open("/sign-in") }},
		{"enroll", tb, func(tb *tablet) { tb.open("/enroll#" + link.URL[len(s.origin)+len("/enroll#"):]) }},
		{"scan", tb, func(tb *tablet) {
			tb.click("#enroll")
			tb.waitPath("/scan")
			tb.waitText("#status", "Point the camera")
		}},
		{"scan-no-camera", noCam, func(tb *tablet) {
			tb.enrollWith(link2)
			tb.waitText("#no-camera-title", "Camera not allowed")
		}},
		{"code", tb, func(tb *tablet) { tb.open("/code") }},
		{"preview", tb, func(tb *tablet) {
			tb.typeCode("ZM-004", previewSess.Code().Display())
		}},
		{"refused", tb, func(tb *tablet) { tb.typeCode("ZM-004", "ABC-123-DEF") }},
		{"progress", tb, func(tb *tablet) {
			tb.open("/pairings/" + accRunning.PairingID)
			tb.poll(`document.querySelector('[data-step="PAIRING_RECEIVED"]').className.includes('current')`)
		}},
		{"provisioned", tb, func(tb *tablet) {
			tb.open("/pairings/" + accOK.PairingID)
			tb.waitText("#result-title", "PROVISIONED")
		}},
		{"failed", tb, func(tb *tablet) {
			tb.open("/pairings/" + accFailed.PairingID)
			tb.waitText("#result-title", failure.PairingCodeMismatch.Title())
		}},
		{"my-pairings", tb, func(tb *tablet) { tb.open("/pairings") }},
		{"not-found", tb, func(tb *tablet) { tb.open("/nowhere") }},
	}
	for _, v := range visits {
		t.Run(v.name, func(t *testing.T) {
			tb := v.tab.on(t)
			v.go_(tb)
			checkPage(tb, v.name, shots)
		})
	}
	release()
}

// checkPage checks the page the tab shows at both tablet sizes: no
// serious or critical axe-core violation, no touch target under 48×48,
// nothing wider than the screen;
// and saves its screenshots as web-NAME-VIEWPORT.png in shots ("" none).
func checkPage(tb *tablet, name, shots string) {
	t := tb.t
	t.Helper()
	for _, vp := range browser.TabletViewports() {
		if err := browser.Emulate(tb.ctx, vp); err != nil {
			t.Fatal(err)
		}
		vs, err := browser.Axe(tb.ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range vs {
			t.Errorf("%s: %v", vp.Name, x)
		}
		small, err := chromedp.Run(tb.ctx, chromedp.Evaluate[[]string](smallTargets))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range small {
			t.Errorf("%s: touch target smaller than 48×48: %s", vp.Name, e)
		}
		wide, err := chromedp.Run(tb.ctx, chromedp.Evaluate[int](fmt.Sprintf(`document.documentElement.scrollWidth - %d`, vp.Width)))
		if err != nil {
			t.Fatal(err)
		}
		if wide > 0 {
			t.Errorf("%s: the page is %d px wider than the tablet's screen", vp.Name, wide)
		}
		if shots != "" {
			png, err := browser.Screenshot(tb.ctx, vp)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(shots, fmt.Sprintf("web-%s-%s.png", name, vp.Name)), png, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestCrossSiteFormRefused: a page on another site (https://127.0.0.1,
// another origin) submits a provisioning form to the Central Station in
// the signed-in tablet's browser: refused, nothing provisioned.
func TestCrossSiteFormRefused(t *testing.T) {
	s := newSite(t, siteOpts{})
	tech, link := s.addPerson("Grace", store.RoleTechnician)
	d := s.enroll("ZM-001", "")
	code := d.session(t).Code().Display()
	evil := browser.NewServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `<!doctype html><form id=f method=post action="%s/pairings">
<input name=deviceId value=ZM-001><input name=address value=192.0.2.10><input name=pairingCode value=%s></form>
<script>document.getElementById('f').submit()</script>`, s.origin, code)
	}))
	b := s.browser(browser.Options{Trust: []*x509.Certificate{evil.Cert}})
	tb := s.tablet(b)
	tb.enrollWith(link)
	// The attacker's page on https://127.0.0.1:PORT (same certificate
	// trust as the test servers).
	other := b.Tab(t)
	evilURL := "https://127.0.0.1" + evil.Origin[len("https://localhost"):]
	if err := chromedp.Do(other, chromedp.Navigate(evilURL)); err != nil {
		t.Fatal(err)
	}
	o := &tablet{t: t, ctx: other, s: s}
	o.poll(`location.host === '` + s.origin[len("https://"):] + `' && document.readyState === 'complete'`)
	if got := o.text("h1"); got != "Request refused" {
		t.Errorf("cross-site form answered %q (page %s)", got, o.path())
	}
	if ps, _ := s.st.TechnicianPairings(context.Background(), tech.ID, time.Time{}, 10); len(ps) != 0 {
		t.Errorf("the cross-site form made %d pairings", len(ps))
	}
}

// blankCamera is a camera looking at a grey wall: the scan page keeps
// scanning.
func blankCamera(t testing.TB) browser.Camera {
	t.Helper()
	img := image.NewGray(image.Rect(0, 0, 640, 480))
	for i := range img.Pix {
		img.Pix[i] = 0x80
	}
	path := filepath.Join(t.TempDir(), "wall.y4m")
	if err := browser.WriteY4MFile(path, 15, img); err != nil {
		t.Fatal(err)
	}
	return browser.CameraFromFile(path)
}
