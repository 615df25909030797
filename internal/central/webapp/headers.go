package webapp

import (
	"net/http"

	"github.com/zmonitor/firmware/internal/central/web"
)

// Security headers, on every answer of the listener (pages, static files,
// the API, errors).
var securityHeaderValues = [][2]string{
	{"Content-Security-Policy", web.ContentSecurityPolicy},
	// TLS only, for a year, on this host (subdomains are the hospital's).
	{"Strict-Transport-Security", "max-age=31536000"},
	{"X-Frame-Options", "DENY"},
	{"Referrer-Policy", "no-referrer"},
	// The camera for this origin only (the scan page); nothing else.
	{"Permissions-Policy", "camera=(self), microphone=(), geolocation=(), usb=(), payment=()"},
	{"X-Content-Type-Options", "nosniff"},
	{"Cross-Origin-Opener-Policy", "same-origin"},
	{"Cross-Origin-Resource-Policy", "same-origin"},
}

// SecurityHeaders lists the headers every answer carries (tests).
func SecurityHeaders() map[string]string {
	m := make(map[string]string, len(securityHeaderValues))
	for _, kv := range securityHeaderValues {
		m[kv[0]] = kv[1]
	}
	return m
}

// securityHeaders sets the security headers before h answers.
func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		for _, kv := range securityHeaderValues {
			hd.Set(kv[0], kv[1])
		}
		h.ServeHTTP(w, r)
	})
}
