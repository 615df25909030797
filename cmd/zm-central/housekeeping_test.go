package main

import (
	"bytes"
	"crypto/x509"
	"crypto/x509/pkix"
	"log/slog"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/zmonitor/firmware/internal/central/webapp"
)

func TestWarnExpiring(t *testing.T) {
	now := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	cert := func(cn string, left time.Duration) *x509.Certificate {
		return &x509.Certificate{Subject: pkix.Name{CommonName: cn}, SerialNumber: big.NewInt(0xab), NotAfter: now.Add(left)}
	}
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	warnExpiring(log, []webapp.NamedCertificate{
		{Name: "tablet server", Cert: cert("tablet", 29*24*time.Hour), Renew: "zm-central pki renew tablet-server"},
		{Name: "device CA", Cert: cert("ca", 31*24*time.Hour)},
		{Name: "provisioning signer", Cert: cert("signer", -time.Hour)},
	}, now)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d warnings, want 2 (29 days left, expired):\n%s", len(lines), buf.String())
	}
	for _, want := range []string{"level=WARN", `certificate="tablet server"`, "daysLeft=29", "serial=ab", `renew="zm-central pki renew tablet-server"`} {
		if !strings.Contains(lines[0], want) {
			t.Errorf("warning %q lacks %s", lines[0], want)
		}
	}
	if !strings.Contains(lines[1], "EXPIRED") || !strings.Contains(lines[1], "provisioning signer") {
		t.Errorf("expired: %q", lines[1])
	}
}
