package webapp

import (
	"errors"
	"net/http"
	"strings"
)

// checks wraps the browser mux: the Host check, then CSRF protection on
// every state-changing request.
//
// CSRF: the session cookie is SameSite=Strict, so a cross-site request
// carries no session; on top of that, net/http.CrossOriginProtection
// refuses a request whose Sec-Fetch-Site (or, from older browsers, Origin)
// says it comes from another origin, and this app also refuses a
// state-changing request that says nothing of where it comes from (no
// Sec-Fetch-Site and no Origin): every browser the app supports sends
// them, and clients without them (zm-pair, scripts) use the API with a
// bearer token. The Host check refuses a request for another host name (a
// DNS rebinding, a misconfigured proxy).
func (a *App) checks(h http.Handler) http.Handler {
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.log.Warn("cross-origin request refused", "method", r.Method, "path", r.URL.Path, "origin", r.Header.Get("Origin"), "site", r.Header.Get("Sec-Fetch-Site"))
		a.errorPage(w, r, http.StatusForbidden, "Request refused", "This request came from another web site. Open the Central Station's page and try again.")
	}))
	inner := cop.Handler(h)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.EqualFold(r.Host, a.origin.Host) {
			a.errorPage(w, r, http.StatusMisdirectedRequest, "Wrong address", "Open the Central Station at "+a.origin.String()+".")
			return
		}
		if err := a.sameOrigin(r); err != nil {
			a.log.Warn("request without its origin refused", "method", r.Method, "path", r.URL.Path, "err", err)
			a.errorPage(w, r, http.StatusForbidden, "Request refused", "The browser did not say where this request came from. Open the Central Station's page and try again.")
			return
		}
		// Nothing the browser mux answers is cached, but the static files
		// (which say so themselves).
		w.Header().Set("Cache-Control", "no-store")
		inner.ServeHTTP(w, r)
	})
}

// safeMethod reports whether a method changes nothing.
func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// sameOrigin requires a state-changing request to name its origin: a
// Sec-Fetch-Site of same-origin, or an Origin that is the app's.
func (a *App) sameOrigin(r *http.Request) error {
	if safeMethod(r.Method) {
		return nil
	}
	switch site := r.Header.Get("Sec-Fetch-Site"); site {
	case "same-origin":
		return nil
	case "":
	default:
		return errors.New("Sec-Fetch-Site " + site)
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return errors.New("no Sec-Fetch-Site and no Origin")
	}
	if !strings.EqualFold(origin, a.origin.String()) {
		return errors.New("Origin is another origin")
	}
	return nil
}
