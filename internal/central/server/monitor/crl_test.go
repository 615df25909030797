package monitor

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"math/big"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/zmonitor/firmware/internal/testkit/testpki"
)

// The monitoring server enforces the device CA's CRL: a listed certificate
// is refused with the revoked problem, the others pass; a CRL it cannot
// trust (signed by another CA, out of date, unavailable) refuses everyone.
func TestHealthEnforcesTheCRL(t *testing.T) {
	now := time.Now()
	ca, _ := testpki.NewCA("device CA", now)
	other, _ := testpki.NewCA("other CA", now)
	srvLeaf, _ := ca.NewLeaf(testpki.ServerTemplate("localhost"), now)
	revokedLeaf, _ := ca.NewLeaf(testpki.ClientTemplate("ZM-001"), now)
	goodLeaf, _ := ca.NewLeaf(testpki.ClientTemplate("ZM-002"), now)

	sign := func(by *testpki.CA, next time.Time) *x509.RevocationList {
		der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
			Number: big.NewInt(1), ThisUpdate: now.Add(-time.Hour), NextUpdate: next,
			RevokedCertificateEntries: []x509.RevocationListEntry{{SerialNumber: revokedLeaf.Cert.SerialNumber, RevocationTime: now, ReasonCode: 1}},
		}, by.Cert, by.Key)
		if err != nil {
			t.Fatal(err)
		}
		l, _ := x509.ParseRevocationList(der)
		return l
	}
	var mu sync.Mutex
	crl, crlErr := sign(ca, now.Add(time.Hour)), error(nil)
	m, err := New(Config{ClientCAs: ca.Pool(), Certificate: srvLeaf.TLS(), CRL: func(context.Context) (*x509.RevocationList, error) {
		mu.Lock()
		defer mu.Unlock()
		return crl, crlErr
	}})
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
	get := func(leaf *testpki.Leaf) (int, string) {
		t.Helper()
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool(), Certificates: []tls.Certificate{leaf.TLS()}, ServerName: "localhost"}}
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get("https://" + l.Addr().String() + DefaultHealthPath)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var p struct{ Type string }
		_ = json.NewDecoder(resp.Body).Decode(&p)
		return resp.StatusCode, p.Type
	}
	if code, typ := get(revokedLeaf); code != http.StatusForbidden || typ != ProblemRevoked {
		t.Errorf("revoked certificate: %d %q", code, typ)
	}
	if code, _ := get(goodLeaf); code != http.StatusOK {
		t.Errorf("certificate not on the CRL: %d", code)
	}
	for name, set := range map[string]func(){
		"signed by another CA": func() { crl, crlErr = sign(other, now.Add(time.Hour)), nil },
		"out of date":          func() { crl, crlErr = sign(ca, now.Add(-time.Minute)), nil },
		"unavailable":          func() { crl, crlErr = nil, errors.New("database down") },
	} {
		mu.Lock()
		set()
		mu.Unlock()
		if code, _ := get(goodLeaf); code != http.StatusServiceUnavailable {
			t.Errorf("CRL %s: %d, want 503 (fail closed)", name, code)
		}
	}
}
