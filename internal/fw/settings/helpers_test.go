package settings_test

import (
	"bytes"
	"crypto/x509"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/zmonitor/firmware/internal/fw/audit/audittest"
	"github.com/zmonitor/firmware/internal/fw/settings"
	"github.com/zmonitor/firmware/internal/testkit/testpki"
)

var base = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

// certs holds two CA and two client certificates, told apart by CN
// ("ca-0", "ca-1", "client-0", "client-1").
type certs struct{ ca, client [2][]byte }

func newCerts(t testing.TB) *certs {
	t.Helper()
	c, err := makeCerts()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func makeCerts() (*certs, error) {
	var c certs
	for i := 0; i < 2; i++ {
		ca, err := testpki.NewCA(fmt.Sprintf("ca-%d", i), base)
		if err != nil {
			return nil, err
		}
		leaf, err := ca.NewLeaf(testpki.ClientTemplate(fmt.Sprintf("client-%d", i)), base)
		if err != nil {
			return nil, err
		}
		c.ca[i], c.client[i] = ca.Cert.Raw, leaf.Cert.Raw
	}
	return &c, nil
}

// gen is configuration version v: every field is derived from v, so a
// mixture of two versions is detectable.
func (c *certs) gen(v int) settings.Provisioning {
	return settings.Provisioning{
		ServerURL:     fmt.Sprintf("https://cs-%d.hospital.example:8443/zm", v),
		DeviceLabel:   fmt.Sprintf("ICU-MON-%04d", v),
		DeviceID:      "ZM-001",
		CACertDER:     c.ca[v%2],
		ClientCertDER: c.client[v%2],
		ClientKeyRef:  fmt.Sprintf("0x8100%04x", v%0x10000),
		ConfigVersion: v,
		ProvisionedAt: base.Add(time.Duration(v) * time.Second),
		ClockTrusted:  v%2 == 0,
	}
}

// consistent checks that p is exactly gen(p.ConfigVersion), comparing the
// certificates by CN so that certificates made by another process match.
func consistent(p settings.Provisioning) error {
	v := p.ConfigVersion
	want := (&certs{}).gen(v)
	if p.ServerURL != want.ServerURL || p.DeviceLabel != want.DeviceLabel || p.DeviceID != want.DeviceID ||
		p.ClientKeyRef != want.ClientKeyRef || !p.ProvisionedAt.Equal(want.ProvisionedAt) || p.ClockTrusted != want.ClockTrusted {
		return fmt.Errorf("provisioning %+v mixes versions (want fields of version %d)", p, v)
	}
	for _, c := range []struct {
		der []byte
		cn  string
	}{{p.CACertDER, fmt.Sprintf("ca-%d", v%2)}, {p.ClientCertDER, fmt.Sprintf("client-%d", v%2)}} {
		cert, err := x509.ParseCertificate(c.der)
		if err != nil || cert.Subject.CommonName != c.cn {
			return fmt.Errorf("version %d: certificate %v (err %v), want CN %s", v, cert.Subject, err, c.cn)
		}
	}
	return nil
}

func equal(a, b settings.Provisioning) bool {
	return a.ServerURL == b.ServerURL && a.DeviceLabel == b.DeviceLabel && a.DeviceID == b.DeviceID &&
		bytes.Equal(a.CACertDER, b.CACertDER) && bytes.Equal(a.ClientCertDER, b.ClientCertDER) &&
		a.ClientKeyRef == b.ClientKeyRef && a.ConfigVersion == b.ConfigVersion &&
		a.ProvisionedAt.Equal(b.ProvisionedAt) && a.ClockTrusted == b.ClockTrusted && a.ESTURL == b.ESTURL
}

func dbPath(t testing.TB) string { return filepath.Join(t.TempDir(), settings.FileName) }

func mustOpen(t testing.TB, path string, rec *audittest.Recorder) *settings.Store {
	t.Helper()
	s, err := settings.Open(path, rec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
