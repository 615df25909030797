package webapp

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/zmonitor/firmware/internal/base/clock"
	"github.com/zmonitor/firmware/internal/central/server"
	"github.com/zmonitor/firmware/internal/central/store"
	"github.com/zmonitor/firmware/internal/central/web"
)

// Defaults.
const (
	DefaultIdleTimeout     = 15 * time.Minute
	DefaultAbsoluteTimeout = 12 * time.Hour
	// EnrollmentLinkLifetime is how long an enrollment link can be used.
	EnrollmentLinkLifetime = 15 * time.Minute
	// ceremonyLifetime bounds a WebAuthn ceremony (the browser's own
	// timeout is 5 minutes).
	ceremonyLifetime = 5 * time.Minute
)

// Config configures the web app. Store, API and Origin are required.
type Config struct {
	Store store.Store
	// API is the tablet API: the web app provisions through it, and
	// serves it under /v1/.
	API *server.Server
	// Origin is the web app's origin as the tablets open it, e.g.
	// https://central.icu.example.org:8443. Its host must be a DNS name
	// (WebAuthn refuses an IP address); localhost works for tests.
	Origin string
	// RPID is the WebAuthn relying party ID (default: Origin's host). It
	// must be Origin's host or a registrable suffix of it; passkeys are
	// bound to it.
	RPID string
	// RPName is shown by the tablet when it asks for the passkey (default
	// "Z Monitor Central Station").
	RPName string
	// IdleTimeout ends a session after this long without a request
	// (default 15 min); AbsoluteTimeout this long after sign-in (default
	// 12 h).
	IdleTimeout, AbsoluteTimeout time.Duration
	// Clock is the wall clock (default clock.System).
	Clock clock.Clock
	// Logger receives operational logs (default: discarded).
	Logger *slog.Logger
	// Rand draws secrets and IDs (default crypto/rand).
	Rand io.Reader
}

// App is the web app and the API behind one handler.
type App struct {
	cfg      Config
	st       store.Store
	api      *server.Server
	log      *slog.Logger
	origin   *url.URL
	wa       *webauthn.WebAuthn
	pages    pageSet
	static   http.Handler
	browser  *http.ServeMux
	handler  http.Handler
	security http.Handler // the browser mux behind its checks
	status   statusSources
}

// New returns the web app.
func New(cfg Config) (*App, error) {
	if cfg.Store == nil || cfg.API == nil {
		return nil, errors.New("webapp: Store and API are required")
	}
	origin, err := ParseOrigin(cfg.Origin)
	if err != nil {
		return nil, fmt.Errorf("webapp: %w", err)
	}
	if cfg.RPID == "" {
		cfg.RPID = origin.Hostname()
	}
	if err := CheckRPID(cfg.RPID, origin.Hostname()); err != nil {
		return nil, fmt.Errorf("webapp: %w", err)
	}
	if cfg.RPName == "" {
		cfg.RPName = "Z Monitor Central Station"
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.AbsoluteTimeout <= 0 {
		cfg.AbsoluteTimeout = DefaultAbsoluteTimeout
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.System{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	wa, err := webauthn.New(&webauthn.Config{
		RPID:          cfg.RPID,
		RPDisplayName: cfg.RPName,
		RPOrigins:     []string{origin.String()},
	})
	if err != nil {
		return nil, fmt.Errorf("webapp: webauthn: %w", err)
	}
	pages, err := parseTemplates()
	if err != nil {
		return nil, fmt.Errorf("webapp: %w", err)
	}
	a := &App{
		cfg: cfg, st: cfg.Store, api: cfg.API, log: cfg.Logger, origin: origin, wa: wa, pages: pages,
		static:  staticHandler(web.Static()),
		browser: http.NewServeMux(),
	}
	a.routes()
	a.security = a.checks(a.browser)
	a.handler = securityHeaders(http.HandlerFunc(a.split))
	return a, nil
}

// Handler serves the web app and the tablet API.
func (a *App) Handler() http.Handler { return a.handler }

// Origin is the web app's origin.
func (a *App) Origin() string { return a.origin.String() }

// split sends API routes to the API, everything else to the browser mux.
func (a *App) split(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/v1/") {
		apiOnly(a.api.Handler()).ServeHTTP(w, r)
		return
	}
	a.security.ServeHTTP(w, r)
}

// apiOnly refuses what an API route never takes: a form-encoded body (a
// cross-site form could send one without a preflight).
func apiOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ct := strings.ToLower(r.Header.Get("Content-Type"))
		if strings.HasPrefix(ct, "application/x-www-form-urlencoded") || strings.HasPrefix(ct, "multipart/form-data") || strings.HasPrefix(ct, "text/plain") {
			http.Error(w, "the tablet API takes JSON bodies only (Content-Type: application/json)", http.StatusUnsupportedMediaType)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// ParseOrigin checks a web app origin: https://HOST[:PORT], no path, and
// a host name, not an IP address (WebAuthn refuses IP addresses).
func ParseOrigin(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("origin %q: %w", s, err)
	}
	switch {
	case u.Scheme != "https":
		return nil, fmt.Errorf("origin %q: https:// required (passkeys and the camera need a secure context)", s)
	case u.Host == "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "":
		return nil, fmt.Errorf("origin %q: want https://HOST[:PORT] and nothing else", s)
	}
	if _, err := netip.ParseAddr(u.Hostname()); err == nil {
		return nil, fmt.Errorf("origin %q: the host must be a DNS name, not an IP address: WebAuthn refuses IP addresses (use localhost on one machine, the Central Station's DNS name in a hospital)", s)
	}
	if p := u.Port(); p != "" {
		if _, err := net.LookupPort("tcp", p); err != nil {
			return nil, fmt.Errorf("origin %q: port: %w", s, err)
		}
	}
	u.Host = strings.ToLower(u.Host)
	u.Path = ""
	return u, nil
}

// CheckRPID checks a WebAuthn relying party ID against the origin's host:
// a DNS name equal to the host or a suffix of it on a label boundary.
func CheckRPID(rpID, host string) error {
	if _, err := netip.ParseAddr(rpID); err == nil || rpID == "" {
		return fmt.Errorf("relying party ID %q: must be a DNS name, not an IP address", rpID)
	}
	rpID, host = strings.ToLower(rpID), strings.ToLower(host)
	if rpID != host && !strings.HasSuffix(host, "."+rpID) {
		return fmt.Errorf("relying party ID %q: must be the origin's host %q or a parent domain of it", rpID, host)
	}
	return nil
}

// staticHandler serves the web app's static files under /static/: no
// directory listings, and the vendored files (their paths carry their
// version) cached for a day.
func staticHandler(files fs.FS) http.Handler {
	fileServer := http.StripPrefix("/static/", http.FileServerFS(files))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/") {
			http.NotFound(w, r)
			return
		}
		if strings.HasPrefix(r.URL.Path, "/static/vendor/") {
			w.Header().Set("Cache-Control", "public, max-age=86400, immutable")
		} else {
			w.Header().Set("Cache-Control", "no-cache")
		}
		fileServer.ServeHTTP(w, r)
	})
}

// RPID is the WebAuthn relying party ID passkeys are bound to.
func (a *App) RPID() string { return a.cfg.RPID }
