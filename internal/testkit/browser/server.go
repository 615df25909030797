package browser

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/zmonitor/firmware/internal/testkit/testpki"
)

// Server is an HTTPS server (TLS 1.3) on 127.0.0.1 for pages under test. Its
// certificate names localhost and 127.0.0.1; pages are opened as
// https://localhost:PORT, because WebAuthn refuses an IP address as the
// relying party's ID. Give Cert to Options.Trust so the browser accepts it.
type Server struct {
	*httptest.Server
	// Origin is https://localhost:PORT.
	Origin string
	// Cert is the server's certificate.
	Cert *x509.Certificate
}

// NewServer serves h over TLS 1.3 until t ends.
func NewServer(t testing.TB, h http.Handler) *Server {
	t.Helper()
	now := time.Now()
	ca, err := testpki.NewCA("browser test CA", now)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.NewLeaf(testpki.ServerTemplate("localhost"), now)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{leaf.TLS()}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	_, port, err := net.SplitHostPort(srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	return &Server{Server: srv, Origin: fmt.Sprintf("https://localhost:%s", port), Cert: leaf.Cert}
}
