package webapp

import (
	"context"
	"crypto/tls"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/zmonitor/firmware/internal/central/server"
	"github.com/zmonitor/firmware/internal/central/store"
	"github.com/zmonitor/firmware/internal/proto/failure"
	"github.com/zmonitor/firmware/internal/proto/tabletwire"
)

// client is an HTTP client of the site with a signed-in session of tech
// (made in the store, as a passkey sign-in does), sending what a browser
// sends on a same-origin request unless told otherwise.
type client struct {
	t      testing.TB
	s      *site
	hc     *http.Client
	cookie string
}

func (s *site) client(tech store.Technician) *client {
	s.t.Helper()
	ctx := context.Background()
	c := &client{t: s.t, s: s}
	jar, _ := cookiejar.New(nil)
	c.hc = &http.Client{
		Jar:           jar,
		Transport:     &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, //nolint:gosec // the test server's certificate
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	if tech.ID == "" {
		return c
	}
	k := store.Passkey{ID: "k-" + tech.ID[2:] + "00000000", TechnicianID: tech.ID, CredentialID: []byte("cred-" + tech.ID), Credential: []byte(`{}`)}
	l := s.link(tech.ID)
	lid, _ := store.EnrollmentSecret.IDOf(strings.SplitN(l.URL, "#", 2)[1])
	if err := s.st.RedeemEnrollmentLink(ctx, lid, k); err != nil {
		s.t.Fatal(err)
	}
	sec, _ := store.SessionSecret.New(nil)
	if err := s.st.CreateWebSession(ctx, store.WebSession{ID: sec.ID, Hash: sec.Hash, TechnicianID: tech.ID, PasskeyID: k.ID}); err != nil {
		s.t.Fatal(err)
	}
	c.cookie = sec.Token
	u, _ := url.Parse(s.origin)
	jar.SetCookies(u, []*http.Cookie{{Name: SessionCookie, Value: sec.Token, Path: "/"}})
	return c
}

// do sends a request; headers are added to a same-origin browser's.
func (c *client) do(method, path, contentType, body string, headers map[string]string) (*http.Response, string) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.s.origin+path, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	req.Header.Set("Origin", c.s.origin)
	for k, v := range headers {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

const formType = "application/x-www-form-urlencoded"

// TestSecurityHeadersOnEveryAnswer: pages, static files, refusals, API
// answers and unknown paths all carry the security headers.
func TestSecurityHeadersOnEveryAnswer(t *testing.T) {
	s := newSite(t, siteOpts{})
	tech, _ := s.addPerson("Grace", store.RoleTechnician)
	d := s.enroll("ZM-001", "")
	acc, err := s.api.Pair(context.Background(), tech, tabletwireQR(d.session(t)))
	if err != nil {
		t.Fatal(err)
	}
	s.api.Wait()
	c := s.client(tech)
	anon := s.client(store.Technician{})
	for _, r := range []struct {
		c            *client
		method, path string
		ct, body     string
	}{
		{anon, "GET", "/sign-in", "", ""},
		{anon, "GET", "/enroll", "", ""},
		{anon, "GET", "/scan", "", ""}, // redirect to sign-in
		{anon, "GET", "/static/css/app.css", "", ""},
		{anon, "GET", "/static/js/scan.js", "", ""},
		{anon, "GET", "/static/vendor/zxing-wasm@3.1.8/reader/zxing_reader.wasm", "", ""},
		{anon, "GET", "/no/such/page", "", ""},
		{anon, "POST", "/webauthn/sign-in/begin", "application/json", "{}"},
		{anon, "GET", "/v1/pairings/" + acc.PairingID, "", ""}, // API, no token: 401
		{c, "GET", "/", "", ""},
		{c, "GET", "/scan", "", ""},
		{c, "GET", "/code", "", ""},
		{c, "GET", "/pairings", "", ""},
		{c, "GET", "/pairings/" + acc.PairingID, "", ""},
		{c, "POST", "/preview", formType, "qr=nonsense"},
		{c, "POST", "/preview", formType, "bogus=1"},
	} {
		resp, _ := r.c.do(r.method, r.path, r.ct, r.body, nil)
		for k, want := range SecurityHeaders() {
			if got := resp.Header.Get(k); got != want {
				t.Errorf("%s %s (%d): %s = %q, want %q", r.method, r.path, resp.StatusCode, k, got, want)
			}
		}
		if resp.StatusCode >= 500 {
			t.Errorf("%s %s: %d", r.method, r.path, resp.StatusCode)
		}
		if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") && resp.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("%s %s: page cached (%q)", r.method, r.path, resp.Header.Get("Cache-Control"))
		}
	}
}

// TestCSRFRefusals: a state-changing request that comes from another site,
// or says nothing of where it comes from, is refused before it is
// handled (no pairing, no sign-out); the same from the app's own pages
// passes.
func TestCSRFRefusals(t *testing.T) {
	s := newSite(t, siteOpts{})
	tech, _ := s.addPerson("Grace", store.RoleTechnician)
	d := s.enroll("ZM-001", "")
	c := s.client(tech)
	body := "deviceId=ZM-001&address=192.0.2.10&pairingCode=" + url.QueryEscape(d.session(t).Code().Display())
	for name, h := range map[string]map[string]string{
		"cross-site":             {"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"},
		"same-site, other host":  {"Sec-Fetch-Site": "same-site", "Origin": "https://other.localhost"},
		"no Sec-Fetch-Site":      {"Sec-Fetch-Site": "", "Origin": "https://evil.example"},
		"neither header":         {"Sec-Fetch-Site": "", "Origin": ""},
		"other Host (rebinding)": {"Host": "evil.example"},
	} {
		for _, path := range []string{"/pairings", "/sign-out", "/webauthn/sign-in/begin"} {
			req := h
			resp, _ := c.doHost(http.MethodPost, path, formType, body, req)
			if resp.StatusCode != http.StatusForbidden && resp.StatusCode != http.StatusMisdirectedRequest {
				t.Errorf("%s POST %s: %d, want 403 (or 421 for another host)", name, path, resp.StatusCode)
			}
		}
	}
	if ps, _ := s.st.TechnicianPairings(context.Background(), tech.ID, time.Time{}, 10); len(ps) != 0 {
		t.Errorf("a refused request made %d pairings", len(ps))
	}
	if resp, _ := c.do(http.MethodGet, "/scan", "", "", nil); resp.StatusCode != http.StatusOK {
		t.Errorf("after the refused sign-outs the session is gone: /scan %d", resp.StatusCode)
	}
	resp, _ := c.do(http.MethodPost, "/pairings", formType, body, nil)
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/pairings/p-") {
		t.Errorf("same-origin provision: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// doHost is do with an optional Host override.
func (c *client) doHost(method, path, contentType, body string, headers map[string]string) (*http.Response, string) {
	if h, ok := headers["Host"]; ok {
		rest := map[string]string{}
		for k, v := range headers {
			if k != "Host" {
				rest[k] = v
			}
		}
		req, _ := http.NewRequest(method, c.s.origin+path, strings.NewReader(body))
		req.Host = h
		req.Header.Set("Content-Type", contentType)
		req.Header.Set("Sec-Fetch-Site", "same-origin")
		resp, err := c.hc.Do(req)
		if err != nil {
			c.t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	return c.do(method, path, contentType, body, headers)
}

// TestStrictForms: forms with unknown, repeated or case-folded fields,
// oversize bodies, another content type or text that is not clean UTF-8
// are refused with a 4xx that says which, never a 500.
func TestStrictForms(t *testing.T) {
	s := newSite(t, siteOpts{})
	tech, _ := s.addPerson("Grace", store.RoleTechnician)
	c := s.client(tech)
	for _, tc := range []struct {
		name, ct, body string
		status         int
		says           string
	}{
		{"unknown field", formType, "qr=x&admin=1", 400, "unknown field"},
		{"repeated field", formType, "deviceId=ZM-1&deviceId=ZM-2", 400, "more than once"},
		{"case-folded", formType, "DeviceId=ZM-1", 400, "case-sensitive"},
		{"too large", formType, "qr=" + strings.Repeat("A", maxForm), 413, "larger than"},
		{"json", "application/json", `{"qr":"x"}`, 415, "x-www-form-urlencoded"},
		{"multipart", "multipart/form-data; boundary=x", "--x--", 415, "x-www-form-urlencoded"},
		{"bad utf-8", formType, "deviceId=%ff%fe", 400, "not text"},
		{"nul", formType, "deviceId=ZM%00-1", 400, "not text"},
		{"bad escape", formType, "deviceId=%zz", 400, "not well encoded"},
		{"empty pair", formType, "deviceId=ZM-1&&address=x", 400, "empty field"},
		{"not a QR", formType, "qr=%7B%7D", 422, "Not a Z Monitor pairing QR code"},
		{"neither path", formType, "address=10.0.0.1", 400, "Request not understood"},
	} {
		for _, path := range []string{"/preview", "/pairings"} {
			resp, body := c.do(http.MethodPost, path, tc.ct, tc.body, nil)
			if resp.StatusCode == http.StatusSeeOther && path == "/pairings" && tc.status == 422 || tc.status == 400 && strings.HasPrefix(tc.says, "Request") {
				// A refusal of the checks is recorded: its pairing's page
				// says why.
				if loc := resp.Header.Get("Location"); strings.HasPrefix(loc, "/pairings/p-") {
					resp, body = c.do(http.MethodGet, loc, "", "", nil)
					if resp.StatusCode == 200 && strings.Contains(textOf(body), tc.says) {
						continue
					}
				}
			}
			if resp.StatusCode != tc.status || !strings.Contains(body, tc.says) {
				t.Errorf("%s, POST %s: %d, want %d saying %q; page: %.300s", tc.name, path, resp.StatusCode, tc.status, tc.says, textOf(body))
			}
		}
	}
	resp, body := c.do(http.MethodPost, "/preview?qr=x", formType, "", nil)
	if resp.StatusCode != 400 || !strings.Contains(body, "not in the address") {
		t.Errorf("form in the query: %d", resp.StatusCode)
	}
	// The API takes no form.
	resp, _ = c.do(http.MethodPost, tabletwire.PairingsPath, formType, "qr=x", nil)
	if resp.StatusCode != http.StatusUnsupportedMediaType {
		t.Errorf("form to the API: %d, want 415", resp.StatusCode)
	}
}

func FuzzParseForm(f *testing.F) {
	f.Add("qr=%7B%7D&deviceId=ZM-1")
	f.Add("a=b&&c")
	f.Fuzz(func(t *testing.T, body string) {
		m, err := parseForm(body, "", pairingFields...)
		if err != nil {
			return
		}
		for k, v := range m {
			if !cleanText(v) {
				t.Fatalf("field %q has unclean text %q", k, v)
			}
		}
		if len(m) != len(pairingFields) {
			t.Fatalf("fields %v", m)
		}
	})
}

// TestEveryCodeHasTitleAndAction: the pairing page of a pairing that
// failed with any failure code, or was refused with any refusal code,
// shows that code's title and what to do.
func TestEveryCodeHasTitleAndAction(t *testing.T) {
	s := newSite(t, siteOpts{})
	tech, _ := s.addPerson("Grace", store.RoleTechnician)
	c := s.client(tech)
	ctx := context.Background()
	s.enroll("ZM-001", "")
	var codes []string
	for code := failure.PairingCodeMismatch; !strings.HasPrefix(code.String(), "CODE("); code++ {
		codes = append(codes, code.String())
	}
	for r := server.Unauthorized; !strings.HasPrefix(r.String(), "REFUSAL("); r++ {
		codes = append(codes, r.String())
	}
	if len(codes) < 20 {
		t.Fatalf("only %d codes: %v", len(codes), codes)
	}
	for i, code := range codes {
		id := fmt.Sprintf("p-%032x", i+1)
		st := store.PairingFailed
		if _, err := failure.Parse(code); err != nil {
			st = store.PairingRefused
		}
		p := store.Pairing{ID: id, DeviceID: "ZM-001", TechnicianID: tech.ID, Method: store.MethodQR, State: store.PairingQueued}
		if st == store.PairingRefused {
			p.State, p.ResultCode, p.Detail = st, code, "why"
		}
		if err := s.st.CreatePairing(ctx, p); err != nil {
			t.Fatal(err)
		}
		if st == store.PairingFailed {
			if err := s.st.FinishPairing(ctx, id, st, code, "why"); err != nil {
				t.Fatal(err)
			}
		}
		want := server.Describe(code, "why")
		_, page := c.do(http.MethodGet, "/pairings/"+id, "", "", nil)
		text := textOf(page)
		if want.Title == "" || want.Title == "Error" || !strings.Contains(text, want.Title) || (want.Action != "" && !strings.Contains(text, "What to do: "+want.Action)) {
			t.Errorf("%s: page does not show %q / %q:\n%.400s", code, want.Title, want.Action, text)
		}
	}
}

// textOf is an HTML page's text, roughly: tags removed, spaces folded.
func textOf(page string) string {
	var b strings.Builder
	in := false
	for _, r := range page {
		switch {
		case r == '<':
			in = true
			b.WriteByte(' ')
		case r == '>':
			in = false
		case !in:
			b.WriteRune(r)
		}
	}
	return strings.Join(strings.Fields(html.UnescapeString(b.String())), " ")
}
