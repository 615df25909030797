package webapp

import (
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/zmonitor/firmware/internal/base/version"
	"github.com/zmonitor/firmware/internal/central/store"
	"github.com/zmonitor/firmware/internal/central/store/pgtest"
	"github.com/zmonitor/firmware/internal/proto/enroll"
	"github.com/zmonitor/firmware/internal/proto/failure"
	"github.com/zmonitor/firmware/internal/testkit/browser"
)

// pg is the PostgreSQL server of this test binary: the operator's pages
// are tested on both backends, as the store is.
var pg *pgtest.Shared

func TestMain(m *testing.M) {
	pg = pgtest.StartShared(os.Args[1:])
	code := m.Run()
	pg.Stop()
	os.Exit(code)
}

// eachBackend runs f on a fresh SQLite database, then on a fresh
// PostgreSQL one (skipped without PostgreSQL, failed when
// ZM_TEST_PG_REQUIRED=1).
func eachBackend(t *testing.T, f func(t *testing.T, dsn string)) {
	t.Run("sqlite", func(t *testing.T) { f(t, pgtest.SQLiteDSN(t)) })
	t.Run("postgres", func(t *testing.T) { f(t, pg.NewDatabase(t)) })
}

// enrollmentRecord is a device's record as the manufacturing line
// exports it.
func enrollmentRecord(t testing.TB, id string) enroll.Record {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	r, err := enroll.New(&k.PublicKey, p.PublicKey(), id, "SN-"+id, "1.2.3")
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// operator signs an operator in on a new tablet.
func (s *site) operator(name string) (store.Technician, *tablet) {
	s.t.Helper()
	op, link := s.addPerson(name, store.RoleOperator)
	tb := s.tablet(s.browser(browser.Options{Camera: browser.CameraAbsent()}))
	tb.enrollWith(link)
	return op, tb
}

// submit clicks sel (a submit button) and waits for the page it loads.
func (tb *tablet) submit(sel string) {
	tb.t.Helper()
	if _, err := chromedp.Run(tb.ctx, chromedp.Evaluate[bool](`window.__before = true`)); err != nil {
		tb.t.Fatal(err)
	}
	tb.click(sel)
	if err := tb.poll(`window.__before === undefined && document.readyState === 'complete'`); err != nil {
		tb.t.Fatalf("no page after clicking %s: %v", sel, err)
	}
}

// TestOperatorInventory: the operator imports enrollment records from a
// file and by pasting them, sees one result per record (a refused record
// with its reason, the others imported), labels a device and revokes
// another; each change is in the store and audited with the operator as
// the actor. On SQLite and PostgreSQL.
func TestOperatorInventory(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn string) {
		s := newSite(t, siteOpts{dsn: dsn})
		op, tb := s.operator("Olga")
		ctx := context.Background()

		// A CSV file: one good record, one with a key that is not one.
		good := enrollmentRecord(t, "ZM-101")
		csv := strings.Join(store.CSVHeader, ",") + "\n" +
			strings.Join([]string{good.DeviceID, good.DeviceSerial, good.IdentityKey, good.PayloadKey, good.FirmwareVersion}, ",") + "\n" +
			strings.Join([]string{"ZM-102", "SN-ZM-102", "bm90IGEga2V5", good.PayloadKey, "1.2.3"}, ",") + "\n"
		file := filepath.Join(t.TempDir(), "devices.csv")
		if err := os.WriteFile(file, []byte(csv), 0o644); err != nil {
			t.Fatal(err)
		}
		tb.open("/operator/devices")
		if err := chromedp.Do(tb.ctx, chromedp.SetUploadFiles(chromedp.CSS("#records-file"), []string{file})); err != nil {
			t.Fatal(err)
		}
		if err := tb.poll(`document.getElementById('records').value.includes('ZM-102')`); err != nil {
			t.Fatalf("the chosen file never reached the form: %v", err)
		}
		tb.submit("#import")
		tb.waitText("#import-summary", "1 added, 0 updated, 0 unchanged, 1 refused")
		if got := tb.text("#import-result tr.refused"); !strings.Contains(got, "ZM-102") || !strings.Contains(got, "refused: ") {
			t.Errorf("the refused record's row says %q", got)
		}
		if got := tb.text("#import-result tr.imported"); !strings.Contains(got, "ZM-101") || !strings.Contains(got, "added") {
			t.Errorf("the imported record's row says %q", got)
		}

		// Pasted JSON: a new device and one already there.
		recs, _ := json.Marshal([]enroll.Record{enrollmentRecord(t, "ZM-103"), good})
		if err := chromedp.Do(tb.ctx, chromedp.SetValue(chromedp.CSS("#records"), string(recs))); err != nil {
			t.Fatal(err)
		}
		tb.submit("#import")
		tb.waitText("#import-summary", "1 added, 0 updated, 1 unchanged, 0 refused")

		// A file that is not enrollment records at all.
		if err := chromedp.Do(tb.ctx, chromedp.SetValue(chromedp.CSS("#records"), "[{")); err != nil {
			t.Fatal(err)
		}
		tb.submit("#import")
		tb.waitText("#import-result", "Nothing imported")

		// ZM-103 and ZM-101 each hold a certificate, which revoking and
		// decommissioning must revoke too.
		for i, id := range []string{"ZM-103", "ZM-101"} {
			k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			tmpl := &x509.Certificate{SerialNumber: big.NewInt(int64(0xc1 + i)), Subject: pkix.Name{CommonName: id}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
			der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
			if err := s.st.RecordCertificate(ctx, id, "p-"+id, der); err != nil {
				t.Fatal(err)
			}
		}
		certState := func(id string) store.CertificateState {
			cs, err := s.st.Certificates(ctx, id)
			if err != nil || len(cs) != 1 {
				t.Fatalf("certificates of %s: %v %v", id, cs, err)
			}
			return cs[0].State
		}

		// Label ZM-101, revoke ZM-103.
		if err := chromedp.Do(tb.ctx, chromedp.SetValue(chromedp.CSS(`[data-device="ZM-101"] input[name=label]`), "ICU-MON-07")); err != nil {
			t.Fatal(err)
		}
		tb.submit(`[data-device="ZM-101"] form[action$="/label"] button`)
		// One click asks; Cancel goes back; nothing revoked until Yes.
		notRevoked := func() {
			if d, _ := s.st.Device(ctx, "ZM-103"); d.Revoked() {
				t.Fatal("ZM-103 revoked before the operator confirmed")
			}
		}
		tb.revokeConfirmed(`[data-device="ZM-103"] form[action$="/revoke"] button`, "Revoke device ZM-103?", "/operator/devices", notRevoked)
		tb.waitText(`[data-device="ZM-103"] h3`, "revoked")
		if d, err := s.st.Device(ctx, "ZM-101"); err != nil || d.Label != "ICU-MON-07" {
			t.Errorf("ZM-101 label %q (%v), want ICU-MON-07", d.Label, err)
		}
		if d, err := s.st.Device(ctx, "ZM-103"); err != nil || !d.Revoked() {
			t.Errorf("ZM-103 not revoked (%v)", err)
		}
		if st := certState("ZM-103"); st != store.CertificateRevoked {
			t.Errorf("ZM-103's certificate is %s after the device was revoked, want revoked", st)
		}
		// Decommission ZM-101: asked first, then its certificate revoked
		// and the date recorded for the EST server to tell the device.
		notDecommissioned := func() {
			if d, _ := s.st.Device(ctx, "ZM-101"); !d.DecommissionedAt.IsZero() {
				t.Fatal("ZM-101 decommissioned before the operator confirmed")
			}
		}
		tb.revokeConfirmed(`[data-device="ZM-101"] form[action$="/decommission"] button`, "Decommission device ZM-101?", "/operator/devices", notDecommissioned)
		tb.waitText(`[data-device="ZM-101"] h3`, "decommissioned")
		if d, err := s.st.Device(ctx, "ZM-101"); err != nil || d.DecommissionedAt.IsZero() || d.Revoked() {
			t.Errorf("ZM-101 after decommissioning: %+v %v", d, err)
		}
		if st := certState("ZM-101"); st != store.CertificateRevoked {
			t.Errorf("ZM-101's certificate is %s after decommissioning, want revoked", st)
		}
		if _, err := s.st.Device(ctx, "ZM-102"); err == nil {
			t.Error("the refused record ZM-102 is in the inventory")
		}
		// A label the device would refuse.
		if err := chromedp.Do(tb.ctx, chromedp.SetValue(chromedp.CSS(`[data-device="ZM-101"] input[name=label]`), strings.Repeat("x", 65)), chromedp.RemoveAttribute(chromedp.CSS(`[data-device="ZM-101"] input[name=label]`), "maxlength")); err != nil {
			t.Fatal(err)
		}
		tb.submit(`[data-device="ZM-101"] form[action$="/label"] button`)
		if got := tb.text("h1"); got != "Label not accepted" {
			t.Errorf("a 65-byte label: page %q", got)
		}
		for _, e := range []string{"device.import", "device.import_refused", "device.label", "device.revoke", "device.decommissioned", "certificate.revoked"} {
			if !s.audited(e, op.ID) {
				t.Errorf("no %s by %s in %v", e, op.ID, s.auditEvents())
			}
		}
	})
}

// TestOperatorTechnicians: the operator adds a technician and gets a
// one-time enrollment link with its QR code; the technician's tablet
// registers with it; the operator revokes that tablet's passkey (the
// tablet is signed out), makes a new link, the tablet registers again,
// and the operator revokes the technician (signed out again). On SQLite
// and PostgreSQL.
func TestOperatorTechnicians(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn string) {
		s := newSite(t, siteOpts{dsn: dsn})
		op, tb := s.operator("Olga")
		ctx := context.Background()

		tb.open("/operator/technicians")
		if err := chromedp.Do(tb.ctx, chromedp.SetValue(chromedp.CSS("#name"), "Ada Lovelace")); err != nil {
			t.Fatal(err)
		}
		tb.submit("#add")
		tb.waitText("#link-title", "Enrollment link for Ada Lovelace")
		link := tb.linkShown()
		if n, _ := chromedp.Run(tb.ctx, chromedp.Evaluate[int](`document.querySelectorAll('#link svg.qr path').length`)); n != 1 {
			t.Errorf("the link's QR code is not drawn (%d paths)", n)
		}
		ada := s.techID("Ada Lovelace")
		if tech, _ := s.st.Technician(ctx, ada); tech.Role != store.RoleTechnician {
			t.Errorf("Ada's role is %v", tech.Role)
		}

		adaTab := s.tablet(s.browser(browser.Options{Camera: browser.CameraAbsent()}))
		adaTab.open(link)
		adaTab.click("#enroll")
		adaTab.waitPath("/scan")

		// The operator sees Ada's tablet and revokes its passkey.
		tb.open("/operator/technicians")
		sel := fmt.Sprintf(`[data-technician=%q]`, ada)
		if got := tb.text(sel + " table"); !strings.Contains(got, "Tablet") {
			t.Fatalf("Ada's passkeys: %q", got)
		}
		tb.revokeConfirmed(sel+` form.revoke-passkey button`, "Revoke the passkey of tablet", "/operator/technicians", func() {
			adaTab.open("/pairings")
			adaTab.waitPath("/pairings") // still signed in
		})
		adaTab.open("/pairings")
		adaTab.waitPath("/sign-in")
		if got := tb.text(sel); !strings.Contains(got, "No passkey") {
			t.Errorf("after revoking Ada's passkey her card says %q", got)
		}

		// A new link; Ada registers the tablet again; then she is revoked.
		tb.submit(sel + ` form.new-link button`)
		tb.waitText("#link-title", "Enrollment link for Ada Lovelace")
		adaTab.open(tb.linkShown())
		adaTab.click("#enroll")
		adaTab.waitPath("/scan")
		tb.open("/operator/technicians")
		tb.revokeConfirmed(sel+` form.revoke-technician button`, "Revoke Ada Lovelace?", "/operator/technicians", func() {
			if tech, _ := s.st.Technician(ctx, ada); tech.Revoked() {
				t.Fatal("Ada revoked before the operator confirmed")
			}
		})
		tb.waitText(sel+" h3", "revoked")
		adaTab.open("/pairings")
		adaTab.waitPath("/sign-in")
		if tech, _ := s.st.Technician(ctx, ada); !tech.Revoked() {
			t.Error("Ada is not revoked in the store")
		}
		// The operator cannot revoke themselves: no button, and the
		// request is refused.
		if n, _ := chromedp.Run(tb.ctx, chromedp.Evaluate[int](fmt.Sprintf(`document.querySelectorAll('[data-technician=%q] form.revoke-technician').length`, op.ID))); n != 0 {
			t.Error("the operator is offered to revoke themselves")
		}
		if st := tb.fetch("POST", "/operator/technicians/"+op.ID+"/revoke", "application/x-www-form-urlencoded", ""); st != 409 {
			t.Errorf("an operator revoking themselves: %d, want 409", st)
		}
		for _, e := range []string{"technician.add", "enrollment.link_created", "passkey.revoked", "technician.revoke"} {
			if !s.audited(e, op.ID) {
				t.Errorf("no %s by %s in %v", e, op.ID, s.auditEvents())
			}
		}
	})
}

// linkShown returns the path of the enrollment link the page shows.
func (tb *tablet) linkShown() string {
	tb.t.Helper()
	href, err := chromedp.Run(tb.ctx, chromedp.Evaluate[string](`document.getElementById('link-url').href`))
	if err != nil {
		tb.t.Fatal(err)
	}
	u, err := url.Parse(href)
	if err != nil || u.Scheme+"://"+u.Host != tb.s.origin || u.Path != "/enroll" || u.Fragment == "" {
		tb.t.Fatalf("enrollment link %q: want %s/enroll#TOKEN", href, tb.s.origin)
	}
	return u.Path + "#" + u.Fragment
}

// operatorPages are the operator's pages, and operatorActions what they
// post.
var (
	operatorPages   = []string{"/operator/devices", "/operator/technicians", "/operator/pairings", "/operator/pairings/PAIRING", "/operator/audit", "/operator/audit.jsonl", "/operator/audit.csv", "/operator/certificates", "/operator/status"}
	operatorActions = []string{"/operator/devices/import", "/operator/devices/ZM-001/label", "/operator/devices/ZM-001/revoke", "/operator/devices/ZM-001/decommission",
		"/operator/technicians", "/operator/technicians/TECH/enroll", "/operator/technicians/TECH/revoke", "/operator/passkeys/KEY/revoke"}
)

// revokeConfirmed clicks a Revoke button once and checks that it only
// asks (the confirmation page with question; notYet checks nothing
// changed), that Cancel goes back to back, then clicks the button again
// and confirms.
func (tb *tablet) revokeConfirmed(button, question, back string, notYet func()) {
	tb.t.Helper()
	tb.submit(button)
	tb.waitText("#confirm-question", question)
	notYet()
	tb.submit("#cancel")
	if got := tb.path(); got != back {
		tb.t.Errorf("Cancel went to %s, want %s", got, back)
	}
	notYet()
	tb.submit(button)
	tb.waitText("#confirm-question", question)
	tb.submit("#confirm")
}

// TestOperatorPagesRefuseTechnicians: a technician signed in gets the
// 403 page for every operator page and every operator action, and the
// action does nothing; the menu does not offer them.
func TestOperatorPagesRefuseTechnicians(t *testing.T) {
	s := newSite(t, siteOpts{})
	tech, link := s.addPerson("Grace", store.RoleTechnician)
	s.enroll("ZM-001", "ICU-1")
	tb := s.tablet(s.browser(browser.Options{Camera: browser.CameraAbsent()}))
	tb.enrollWith(link)
	ks, _ := s.st.Passkeys(context.Background(), tech.ID)
	if n, _ := chromedp.Run(tb.ctx, chromedp.Evaluate[int](`document.querySelectorAll('a[href^="/operator/"]').length`)); n != 0 {
		t.Errorf("a technician's menu has %d operator links", n)
	}
	acc, err := s.api.Pair(context.Background(), tech, tabletwireQR(s.enroll("ZM-002", "").session(t)))
	if err != nil {
		t.Fatal(err)
	}
	s.api.Wait()
	for _, p := range operatorPages {
		p = strings.ReplaceAll(p, "PAIRING", acc.PairingID)
		tb.open(p)
		if got := tb.text("h1"); got != "Not allowed" {
			t.Errorf("technician opening %s: page %q", p, got)
		}
		if st := tb.fetch("GET", p, "", ""); st != 403 {
			t.Errorf("technician GET %s: %d, want 403", p, st)
		}
	}
	for _, p := range operatorActions {
		p = strings.NewReplacer("TECH", tech.ID, "KEY", ks[0].ID).Replace(p)
		body := ""
		switch {
		case strings.HasSuffix(p, "/label"):
			body = "label=HACKED"
		case p == "/operator/technicians":
			body = "name=Mallory&role=operator"
		}
		if st := tb.fetch("POST", p, "application/x-www-form-urlencoded", body); st != 403 {
			t.Errorf("technician POST %s: %d, want 403", p, st)
		}
	}
	ctx := context.Background()
	d, _ := s.st.Device(ctx, "ZM-001")
	ts, _ := s.st.Technicians(ctx)
	ks, _ = s.st.Passkeys(ctx, tech.ID)
	if d.Label != "ICU-1" || d.Revoked() || len(ts) != 1 || ks[0].Revoked() || s.audited("audit.export", tech.ID) {
		t.Errorf("a technician's refused actions changed something: device %+v, %d technicians, passkey revoked %v", d, len(ts), ks[0].Revoked())
	}
}

// TestOperatorPagesAccessible: the operator's pages, as they look after
// an import with a refused record and with an enrollment link shown, at
// 768×1024 and 1280×800: no serious or critical axe-core violation, no
// touch target under 48×48 (screenshots with ZM_WEB_SCREENSHOTS).
func TestOperatorPagesAccessible(t *testing.T) {
	s := newSite(t, siteOpts{})
	_, tb := s.operator("Olga")
	s.enroll("ZM-001", "ICU-MON-04")
	s.enroll("ZM-002", "")
	if err := s.st.RevokeDevice(context.Background(), "ZM-002"); err != nil {
		t.Fatal(err)
	}
	graceTech, graceLink := s.addPerson("Grace Hopper", store.RoleTechnician)
	grace := s.tablet(s.browser(browser.Options{Camera: browser.CameraAbsent()}))
	grace.enrollWith(graceLink)
	s.devs.set("ZM-001", refuses(failure.PairingCodeMismatch))
	for _, d := range []*device{s.enroll("ZM-005", "ICU-MON-09"), {id: "ZM-001"}} {
		if d.key == nil {
			continue
		}
		if _, err := s.api.Pair(context.Background(), graceTech, tabletwireQR(d.session(t))); err != nil {
			t.Fatal(err)
		}
	}
	s.api.Wait()
	shots := os.Getenv(EnvScreenshots)

	t.Run("inventory", func(t *testing.T) {
		tb := tb.on(t)
		tb.open("/operator/devices")
		recs, _ := json.Marshal([]any{enrollmentRecord(t, "ZM-003"), map[string]string{"deviceId": "ZM-004"}})
		if err := chromedp.Do(tb.ctx, chromedp.SetValue(chromedp.CSS("#records"), string(recs))); err != nil {
			t.Fatal(err)
		}
		tb.submit("#import")
		tb.waitText("#import-summary", "1 refused")
		if _, err := chromedp.Run(tb.ctx, chromedp.Evaluate[bool](`document.getElementById('import-title').scrollIntoView(), true`)); err != nil {
			t.Fatal(err)
		}
		checkPage(tb, "operator-inventory", shots)
	})
	t.Run("technicians", func(t *testing.T) {
		tb := tb.on(t)
		tb.open("/operator/technicians")
		if err := chromedp.Do(tb.ctx, chromedp.SetValue(chromedp.CSS("#name"), "Alan Turing")); err != nil {
			t.Fatal(err)
		}
		tb.submit("#add")
		tb.waitText("#link-title", "Alan Turing")
		checkPage(tb, "operator-technicians", shots)
	})
	t.Run("confirm", func(t *testing.T) {
		tb := tb.on(t)
		tb.open("/operator/devices")
		tb.submit(`[data-device="ZM-001"] form[action$="/revoke"] button`)
		tb.waitText("#confirm-question", "Revoke device ZM-001?")
		checkPage(tb, "operator-confirm", shots)
	})
	t.Run("pairings", func(t *testing.T) {
		tb := tb.on(t)
		tb.open("/operator/pairings")
		checkPage(tb, "operator-pairings", shots)
	})
	t.Run("timeline", func(t *testing.T) {
		tb := tb.on(t)
		tb.open("/operator/pairings")
		tb.submit("#pairings tbody tr a")
		tb.waitText("#timeline", "pairing.accepted")
		checkPage(tb, "operator-timeline", shots)
	})
	t.Run("audit", func(t *testing.T) {
		tb := tb.on(t)
		tb.open("/operator/audit")
		checkPage(tb, "operator-audit", shots)
	})
	t.Run("certificates", func(t *testing.T) {
		tb := tb.on(t)
		s.issue(t, "ZM-005", 5*24*time.Hour)
		s.issue(t, "ZM-005", 365*24*time.Hour)
		tb.open("/operator/certificates")
		checkPage(tb, "operator-certificates", shots)
	})
	t.Run("status", func(t *testing.T) {
		tb := tb.on(t)
		s.app.SetStatus([]Listener{{Name: "web app and tablet API", Address: "127.0.0.1:8443"}}, []NamedCertificate{{Name: "tablet server", Cert: s.srv.Cert}})
		tb.open("/operator/status")
		checkPage(tb, "operator-status", shots)
	})
	t.Run("refused", func(t *testing.T) {
		grace := grace.on(t)
		grace.open("/operator/devices")
		checkPage(grace, "operator-refused", shots)
	})
}

// TestOperatorPairingsAndTimeline: the operator's list of everyone's
// pairings, filtered by state, device, technician and time, each row
// opening the pairing's timeline (its audit records in order). On SQLite
// and PostgreSQL.
func TestOperatorPairingsAndTimeline(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn string) {
		s := newSite(t, siteOpts{dsn: dsn})
		_, tb := s.operator("Olga")
		ada, _ := s.addPerson("Ada", store.RoleTechnician)
		bob, _ := s.addPerson("Bob", store.RoleTechnician)
		s.devs.set("ZM-002", refuses(failure.PairingCodeMismatch))
		ctx := context.Background()
		pair := func(tech store.Technician, d *device) string {
			acc, err := s.api.Pair(ctx, tech, tabletwireQR(d.session(t)))
			if err != nil {
				t.Fatal(err)
			}
			s.api.Wait()
			return acc.PairingID
		}
		okAda := pair(ada, s.enroll("ZM-001", "ICU-1"))
		failedBob := pair(bob, s.enroll("ZM-002", ""))
		okBob := pair(bob, s.enroll("ZM-003", ""))

		shown := func(query string) []string {
			t.Helper()
			tb.open("/operator/pairings" + query)
			ids, err := chromedp.Run(tb.ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('#pairings tbody tr')].map(r => r.dataset.pairing)`))
			if err != nil {
				t.Fatal(err)
			}
			return ids
		}
		for name, c := range map[string]struct {
			query string
			want  []string
		}{
			"all":        {"", []string{okBob, failedBob, okAda}},
			"failed":     {"?state=failed", []string{failedBob}},
			"device":     {"?device=ZM-001", []string{okAda}},
			"technician": {"?technician=" + bob.ID, []string{okBob, failedBob}},
			"future":     {"?from=2999-01-01T00:00", nil},
			"past":       {"?until=2000-01-01", nil},
		} {
			if got := shown(c.query); strings.Join(got, " ") != strings.Join(c.want, " ") {
				t.Errorf("%s: pairings %v, want %v", name, got, c.want)
			}
		}
		// The form: choose a state and a technician, Show.
		tb.open("/operator/pairings")
		if err := chromedp.Do(tb.ctx, chromedp.SetValue(chromedp.CSS("#state"), "succeeded"), chromedp.SetValue(chromedp.CSS("#technician"), bob.ID)); err != nil {
			t.Fatal(err)
		}
		tb.submit("#apply")
		if got := tb.text("#pairings tbody"); !strings.Contains(got, "ZM-003") || strings.Contains(got, "ZM-001") || strings.Contains(got, "ZM-002") {
			t.Errorf("succeeded by Bob: %q", got)
		}
		// Bad filters: a clear 400 page, never a 500.
		for _, q := range []string{"?state=lost", "?from=yesterday", "?device=a&device=b", "?State=failed", "?sort=asc"} {
			if st := tb.fetch("GET", "/operator/pairings"+q, "", ""); st != 400 {
				t.Errorf("filter %s: %d, want 400", q, st)
			}
		}
		// The failed pairing's timeline.
		tb.open("/operator/pairings?state=failed")
		tb.submit("#pairings tbody tr a")
		tb.waitText("#pairing-state", "failed (PAIRING_CODE_MISMATCH)")
		tb.wantSteps("created pushed PAIRING_RECEIVED FAILED PAIRING_CODE_MISMATCH")
		tl := tb.text("#timeline")
		if !strings.Contains(tl, "pairing.accepted") || !strings.Contains(tl, "pairing.failed") || strings.Index(tl, "pairing.accepted") > strings.Index(tl, "pairing.failed") {
			t.Errorf("timeline of the failed pairing: %q", tl)
		}
		// The provisioned one: every step, each with its time.
		tb.open("/operator/pairings/" + okAda)
		tb.wantSteps("created pushed PAIRING_RECEIVED APPLYING_CONFIG TESTING_CONNECTION PROVISIONED")
		tb.open("/operator/pairings/p-nosuch")
		if got := tb.text("h1"); got != "No such pairing" {
			t.Errorf("unknown pairing: %q", got)
		}
	})
}

// wantSteps checks the steps table of a pairing's page: the steps named
// (after "connecting", the runner's own first step, which is dropped
// here), each with a time, in order, the first at +0.000 s.
func (tb *tablet) wantSteps(want string) {
	tb.t.Helper()
	type row struct{ At, After, Name string }
	rows, err := chromedp.Run(tb.ctx, chromedp.Evaluate[[]row](`[...document.querySelectorAll('#steps tbody tr')].map(r => ({At: r.cells[0].textContent, After: r.cells[1].textContent, Name: r.cells[2].textContent}))`))
	if err != nil {
		tb.t.Fatal(err)
	}
	var names []string
	var last time.Time
	for i, r := range rows {
		at, err := time.Parse("2006-01-02 15:04:05.000", r.At)
		if err != nil || at.Before(last) || (i == 0 && r.After != "+0.000 s") || !strings.HasPrefix(r.After, "+") {
			tb.t.Errorf("step %d %q: time %q after %q (%v): want times in order, the first at +0.000 s", i, r.Name, r.At, r.After, err)
		}
		last = at
		if r.Name != "connecting" {
			names = append(names, r.Name)
		}
	}
	if got := strings.Join(names, " "); got != want {
		tb.t.Errorf("steps %q, want %q", got, want)
	}
}

// TestOperatorAuditFilterAndExport: the audit trail filtered by actor,
// event family, device and detail; exported as JSON Lines and CSV with
// the same filter (oldest first, every record, a formula-looking cell
// defused); the export itself audited. On SQLite and PostgreSQL.
func TestOperatorAuditFilterAndExport(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn string) {
		s := newSite(t, siteOpts{dsn: dsn})
		op, tb := s.operator("Olga")
		ctx := context.Background()
		for _, r := range []store.AuditRecord{
			{Actor: "cli", Event: "device.import", DeviceID: "ZM-001", Detail: "added firmware 1.2.3"},
			{Actor: "cli", Event: "device.label", DeviceID: "ZM-001", Detail: "=HYPERLINK(\"http://evil\")"},
			{Actor: "cli", Event: "device.import", DeviceID: "ZM-002", Detail: "added firmware 1.2.4"},
		} {
			if err := s.st.Audit(ctx, r); err != nil {
				t.Fatal(err)
			}
		}
		rows := func(query string) string {
			t.Helper()
			tb.open("/operator/audit" + query)
			return tb.text("#audit tbody")
		}
		if got := rows("?event=device&device=ZM-001"); !strings.Contains(got, "device.import") || !strings.Contains(got, "device.label") || strings.Contains(got, "ZM-002") {
			t.Errorf("device events of ZM-001: %q", got)
		}
		if got := rows("?actor=" + op.ID); !strings.Contains(got, "web.sign_in") || strings.Contains(got, "device.") {
			t.Errorf("the operator's records: %q", got)
		}
		if got := rows("?text=1.2.4"); !strings.Contains(got, "ZM-002") || strings.Contains(got, "ZM-001") {
			t.Errorf("detail contains 1.2.4: %q", got)
		}
		// The form, then its exports.
		tb.open("/operator/audit")
		if err := chromedp.Do(tb.ctx, chromedp.SetValue(chromedp.CSS("#event"), "device"), chromedp.SetValue(chromedp.CSS("#device"), "ZM-001")); err != nil {
			t.Fatal(err)
		}
		tb.submit("#apply")
		get := func(sel string) string {
			t.Helper()
			body, err := chromedp.Run(tb.ctx, chromedp.Evaluate[string](fmt.Sprintf(`fetch(document.querySelector(%q).href).then(r => r.text().then(t => r.headers.get('Content-Disposition') + '\n' + t))`, sel), chromedp.EvalAwaitPromise))
			if err != nil {
				t.Fatal(err)
			}
			return body
		}
		jsonl := get("#export-jsonl")
		lines := strings.Split(strings.TrimSpace(jsonl), "\n")
		if len(lines) != 3 || !strings.Contains(lines[0], ".jsonl") {
			t.Fatalf("JSON Lines export (%d lines):\n%s", len(lines), jsonl)
		}
		var first, second store.AuditRecord
		if err := json.Unmarshal([]byte(lines[1]), &first); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(lines[2]), &second); err != nil {
			t.Fatal(err)
		}
		if first.Event != "device.import" || second.Event != "device.label" || first.DeviceID != "ZM-001" || first.ID >= second.ID {
			t.Errorf("JSON Lines export: %+v then %+v, want ZM-001's import then label", first, second)
		}
		csvText := get("#export-csv")
		if !strings.Contains(csvText, ".csv") || !strings.Contains(csvText, "id,at,actor,event,deviceId,detail") ||
			!strings.Contains(csvText, `'=HYPERLINK`) || strings.Contains(csvText, "ZM-002") {
			t.Errorf("CSV export:\n%s", csvText)
		}
		if !s.audited("audit.export", op.ID) {
			t.Errorf("the export is not audited: %v", s.auditEvents())
		}
		if st := tb.fetch("GET", "/operator/audit.csv?from=soon", "", ""); st != 400 {
			t.Errorf("export with a bad filter: %d, want 400", st)
		}
	})
}

// issue records a certificate for device id ending in validFor, as the
// pusher does after a pairing; it returns its serial.
func (s *site) issue(t testing.TB, id string, validFor time.Duration) string {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sn, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	now := time.Now()
	tmpl := &x509.Certificate{SerialNumber: sn, Subject: pkix.Name{CommonName: id}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(validFor)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.st.RecordCertificate(context.Background(), id, "p-"+id, der); err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return store.CertificateSerial(c)
}

// selfSigned is a certificate ending in validFor.
func selfSigned(t testing.TB, cn string, validFor time.Duration) *x509.Certificate {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(validFor)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c
}

// TestOperatorStatusAndCertificates: the status panel shows the version,
// that the database answers, the listeners, the Central Station's own
// certificates with the one close to expiry marked, and the device
// certificates close to expiry; the certificates page lists the devices'
// certificates by device and state. On SQLite and PostgreSQL.
func TestOperatorStatusAndCertificates(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn string) {
		s := newSite(t, siteOpts{dsn: dsn})
		_, tb := s.operator("Olga")
		s.enroll("ZM-001", "")
		s.enroll("ZM-002", "")
		soonSerial := s.issue(t, "ZM-001", 10*24*time.Hour)
		s.issue(t, "ZM-002", 300*24*time.Hour)
		revoked := s.issue(t, "ZM-002", 5*24*time.Hour)
		if err := s.st.RevokeCertificate(context.Background(), revoked, store.ReasonDeviceReplaced); err != nil {
			t.Fatal(err)
		}
		s.app.SetStatus([]Listener{{Name: "web app and tablet API", Address: "127.0.0.1:18443"}, {Name: "health, readiness and metrics", Address: "127.0.0.1:19464"}},
			[]NamedCertificate{{Name: "tablet server", Cert: selfSigned(t, "tablet", 20*24*time.Hour), Renew: "zm-central pki renew tablet-server"}, {Name: "device CA", Cert: selfSigned(t, "ca", 3000*24*time.Hour)}})

		tb.open("/operator/status")
		if got := tb.text("#version"); !strings.HasPrefix(got, version.Version+" (built ") {
			t.Errorf("version: %q", got)
		}
		if got := tb.text("#database"); !strings.HasPrefix(got, "answers (") {
			t.Errorf("database: %q", got)
		}
		if got := tb.text("#listeners"); !strings.Contains(got, "127.0.0.1:18443") || !strings.Contains(got, "127.0.0.1:19464") {
			t.Errorf("listeners: %q", got)
		}
		if got := tb.text("#own-certs tr.refused"); !strings.Contains(got, "tablet server") || !strings.Contains(got, "close to expiry") || strings.Contains(got, "device CA") {
			t.Errorf("own certificates close to expiry: %q", got)
		}
		if got := tb.text("#own-warning"); !strings.HasPrefix(got, "1 of the Central Station's certificates end within 30 days") {
			t.Errorf("warning on the status panel: %q", got)
		}
		if got := tb.text("#own-certs tr.refused"); !strings.Contains(got, "zm-central pki renew tablet-server") {
			t.Errorf("the renew command is not shown with the certificate close to expiry: %q", got)
		}
		if got := tb.text("#device-certs"); got != "2 device certificate(s) not revoked; 1 end within 30 days." {
			t.Errorf("device certificates: %q", got)
		}
		if got := tb.text("#device-soon"); !strings.Contains(got, "ZM-001") || !strings.Contains(got, soonSerial) {
			t.Errorf("device certificates close to expiry: %q", got)
		}

		rows := func(query string) int {
			t.Helper()
			tb.open("/operator/certificates" + query)
			n, err := chromedp.Run(tb.ctx, chromedp.Evaluate[int](`document.querySelectorAll('#certificates tbody tr').length`))
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
		for q, want := range map[string]int{"": 3, "?device=ZM-002": 2, "?state=revoked": 1, "?state=issued&device=ZM-001": 1, "?device=ZM-404": 0} {
			if got := rows(q); got != want {
				t.Errorf("certificates%s: %d rows, want %d", q, got, want)
			}
		}
		tb.open("/operator/certificates")
		if got := tb.text(fmt.Sprintf(`tr[data-serial=%q]`, soonSerial)); !strings.Contains(got, "ZM-001") {
			t.Errorf("the certificate close to expiry: %q", got)
		}
		if cls, _ := chromedp.Run(tb.ctx, chromedp.Evaluate[string](fmt.Sprintf(`document.querySelector('tr[data-serial=%q]').className`, soonSerial))); cls != "refused" {
			t.Errorf("the certificate close to expiry is not marked (class %q)", cls)
		}
		if st := tb.fetch("GET", "/operator/certificates?state=lost", "", ""); st != 400 {
			t.Errorf("certificates?state=lost: %d, want 400", st)
		}
	})
}
