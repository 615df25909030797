// Package webapp is the Central Station's web app: the pages a technician
// uses on a tablet (sign in with a passkey, scan or type a device's code,
// provision it and watch it happen, see their own pairings), served with
// the tablet API (internal/central/server) from one TLS 1.3 listener.
//
// The shape follows tailscale's safeweb: two muxes behind one handler.
// API routes (/v1/...) go to the server's handler: bearer tokens, JSON
// bodies only (a form-encoded body is refused), no cookie. Every other
// route is a browser route, and goes through, in this order (app.go):
//
//   - security headers on every answer (headers.go): the CSP
//     web.ContentSecurityPolicy, HSTS, X-Frame-Options DENY,
//     Referrer-Policy no-referrer, Permissions-Policy camera=(self),
//     X-Content-Type-Options nosniff, Cache-Control no-store on pages;
//   - the Host check (the configured origin only);
//   - CSRF protection on every state-changing request (csrf.go):
//     net/http.CrossOriginProtection, and a browser's Sec-Fetch-Site or
//     Origin required and same-origin;
//   - the session and role (session.go): a page or action names the role
//     it needs; without a valid session a page redirects to sign-in.
//
// Routes are declared in one table (routes.go); pages are html/template
// files (templates/) on one layout, with no inline script or style: the
// CSS and the ES modules are static files (internal/central/web). Forms
// are decoded strictly (form.go): unknown, repeated or case-folded keys,
// bodies over their limit and text that is not clean UTF-8 are refused
// with a 4xx that says which.
//
// Sign-in is by passkey only (passkeys.go, github.com/go-webauthn/webauthn
// with user verification required): an operator creates a technician and
// a one-time enrollment link (15 minutes, single use, stored hashed); the
// tablet that opens it registers a passkey. A session is a cookie
// (__Host-zm-session: HttpOnly, Secure, SameSite=Strict) naming a session
// stored hashed in the database, so every replica shares it; it ends after
// IdleTimeout without a request or AbsoluteTimeout after sign-in, at
// sign-out, and when its passkey or technician is revoked.
//
// See docs/web-app.md.
package webapp
