package webapp

import (
	"context"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/zmonitor/firmware/internal/central/store"
	"github.com/zmonitor/firmware/internal/testkit/browser"
)

// auditEvents returns the audit trail's events with their actors.
func (s *site) auditEvents() []string {
	s.t.Helper()
	var out []string
	if err := s.st.ExportAudit(context.Background(), func(r store.AuditRecord) error {
		out = append(out, r.Event+" "+r.Actor)
		return nil
	}); err != nil {
		s.t.Fatal(err)
	}
	return out
}

func (s *site) audited(event, actor string) bool {
	for _, e := range s.auditEvents() {
		if e == event+" "+actor {
			return true
		}
	}
	return false
}

// TestPasskeyEnrollmentAndSignIn: an enrollment link registers a passkey
// (user verification required) and signs the technician in with a
// __Host- cookie that is HttpOnly, Secure and SameSite=Strict; the link
// works once; the technician signs out and in again with the passkey; a
// tablet that fails user verification is refused, and the audit trail has
// each of these.
func TestPasskeyEnrollmentAndSignIn(t *testing.T) {
	s := newSite(t, siteOpts{})
	tech, link := s.addPerson("Grace", store.RoleTechnician)
	b := s.browser(browser.Options{})
	tb := s.tablet(b)
	tb.enrollWith(link)

	creds, err := tb.auth.Credentials()
	if err != nil {
		t.Fatal(err)
	}
	if len(creds) != 1 || !creds[0].IsResidentCredential || string(creds[0].UserHandle) != tech.ID {
		t.Fatalf("authenticator holds %d credentials (%+v), want one resident passkey for %s", len(creds), creds, tech.ID)
	}
	ks, _ := s.st.Passkeys(context.Background(), tech.ID)
	if len(ks) != 1 || ks[0].Name != "Tablet" {
		t.Fatalf("store has passkeys %+v, want one named Tablet", ks)
	}

	res, err := chromedp.Call(tb.ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{s.origin}})
	if err != nil {
		t.Fatal(err)
	}
	jar := res.Cookies
	if len(jar) != 1 {
		t.Fatalf("cookies %+v, want the session cookie alone", jar)
	}
	c := jar[0]
	if c.Name != SessionCookie || !strings.HasPrefix(c.Name, "__Host-") || !c.HTTPOnly || !c.Secure || c.SameSite != network.CookieSameSiteStrict || c.Path != "/" || c.Domain != "localhost" || !c.Session {
		t.Errorf("session cookie %s: HttpOnly %v Secure %v SameSite %v Path %q Domain %q Session %v; want __Host-, HttpOnly, Secure, Strict, /, host-only, session",
			c.Name, c.HTTPOnly, c.Secure, c.SameSite, c.Path, c.Domain, c.Session)
	}
	if v, _ := chromedp.Run(tb.ctx, chromedp.Evaluate[string](`document.cookie`)); v != "" {
		t.Errorf("the page's script can read cookies: %q", v)
	}
	if got := tb.text(".who"); got != "Grace (technician)" {
		t.Errorf("header says %q", got)
	}

	// The link works once, even on another tablet.
	other := s.tablet(b)
	other.open(strings.TrimPrefix(link.URL, s.origin))
	other.click("#enroll")
	other.waitText("#status", "used already")

	// Sign out, sign in again with the passkey.
	tb.click(".signout button")
	tb.waitPath("/sign-in")
	tb.open("/scan")
	tb.waitPath("/sign-in") // signed out: the scan page sends to sign-in
	tb.click("#sign-in")
	tb.waitPath("/scan")

	// The Central Station asks for user verification in both ceremonies
	// (the library then refuses an answer without the UV flag).
	uv, err := chromedp.Run(tb.ctx, chromedp.Evaluate[[]string](`Promise.all([
		fetch('/webauthn/sign-in/begin', {method: 'POST', headers: {'Content-Type': 'application/json'}, body: '{}'}).then(r => r.json()).then(j => j.publicKey.userVerification),
		fetch('/webauthn/register/begin', {method: 'POST', headers: {'Content-Type': 'application/json'}, body: JSON.stringify({token: '`+s.link(tech.ID).URL[len(s.origin)+len("/enroll#"):]+`'})}).then(r => r.json()).then(j => j.publicKey.authenticatorSelection.userVerification + '/' + j.publicKey.authenticatorSelection.residentKey),
	])`, chromedp.EvalAwaitPromise))
	if err != nil || len(uv) != 2 || uv[0] != "required" || uv[1] != "required/required" {
		t.Errorf("user verification asked: %q, %v; want required (and a resident key) in both", uv, err)
	}

	// User verification fails (wrong PIN): the tablet gives no passkey,
	// the page says so, nobody is signed in.
	tb.click(".signout button")
	tb.waitPath("/sign-in")
	if err := tb.auth.SetUserVerified(false); err != nil {
		t.Fatal(err)
	}
	tb.click("#sign-in")
	tb.waitText("#status", "PIN or fingerprint was not accepted")
	tb.open("/scan")
	tb.waitPath("/sign-in")

	for _, want := range [][2]string{
		{"enrollment.link_created", "cli"},
		{"passkey.enrolled", tech.ID},
		{"web.sign_in", tech.ID},
		{"web.sign_out", tech.ID},
		{"passkey.enroll_failed", tech.ID},
	} {
		if !s.audited(want[0], want[1]) {
			t.Errorf("audit has no %s by %s: %v", want[0], want[1], s.auditEvents())
		}
	}
}
