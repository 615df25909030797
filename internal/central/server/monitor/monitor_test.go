package monitor

import (
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/zmonitor/firmware/internal/testkit/testpki"
)

func TestHealthRequiresDeviceCertificate(t *testing.T) {
	now := time.Now()
	ca, err := testpki.NewCA("device CA", now)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := testpki.NewCA("other CA", now)
	srvLeaf, _ := ca.NewLeaf(testpki.ServerTemplate("localhost"), now)
	devLeaf, _ := ca.NewLeaf(testpki.ClientTemplate("ZM-001"), now)
	strangerLeaf, _ := other.NewLeaf(testpki.ClientTemplate("ZM-002"), now)
	serverOnly, _ := ca.NewLeaf(testpki.ServerTemplate("ZM-003"), now)

	m, err := New(Config{ClientCAs: ca.Pool(), Certificate: srvLeaf.TLS()})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := m.HTTPServer(l.Addr().String())
	go hs.ServeTLS(l, "", "")
	t.Cleanup(func() { hs.Close() })
	url := "https://" + l.Addr().String() + DefaultHealthPath

	get := func(certs []tls.Certificate, maxVersion uint16) (int, string, error) {
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool(), Certificates: certs, MaxVersion: maxVersion, ServerName: "localhost"}}
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get(url)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), nil
	}
	if code, body, err := get([]tls.Certificate{devLeaf.TLS()}, 0); err != nil || code != 200 || body != "ok" {
		t.Fatalf("device certificate: %d %q %v", code, body, err)
	}
	if m.Seen("ZM-001") != 1 {
		t.Errorf("Seen = %d", m.Seen("ZM-001"))
	}
	for name, c := range map[string][]tls.Certificate{
		"no certificate":       nil,
		"another CA":           {strangerLeaf.TLS()},
		"serverAuth-only cert": {serverOnly.TLS()},
	} {
		if code, _, err := get(c, 0); err == nil {
			t.Errorf("%s: answered %d", name, code)
		}
	}
	if code, _, err := get([]tls.Certificate{devLeaf.TLS()}, tls.VersionTLS12); err == nil {
		t.Errorf("TLS 1.2: answered %d", code)
	}
	if m.Seen("ZM-002")+m.Seen("ZM-003") != 0 {
		t.Error("refused clients counted")
	}
}

func TestNewRequires(t *testing.T) {
	if _, err := New(Config{}); err == nil {
		t.Error("New without CAs")
	}
}
