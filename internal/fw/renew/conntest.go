package renew

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"time"

	"github.com/zmonitor/firmware/internal/fw/conncheck"
	"github.com/zmonitor/firmware/internal/proto/failure"
)

// CheckConnection is the ConnTest of the device: conncheck.Run with base's
// tunables (health path, attempts, timeouts, dialer) for the candidate
// pair.
func CheckConnection(base conncheck.Config) ConnTest {
	return func(ctx context.Context, serverURL string, caDER, certDER []byte, key crypto.Signer) (time.Time, error) {
		ca, err := x509.ParseCertificate(caDER)
		if err != nil {
			return time.Time{}, failure.New(failure.CertificateInvalid, "connection test: CA certificate", err)
		}
		leaf, err := x509.ParseCertificate(certDER)
		if err != nil {
			return time.Time{}, failure.New(failure.CertificateInvalid, "connection test: client certificate", err)
		}
		pool := x509.NewCertPool()
		pool.AddCert(ca)
		c := base
		c.ServerURL, c.CA = serverURL, pool
		c.ClientCert = tls.Certificate{Certificate: [][]byte{certDER}, Leaf: leaf, PrivateKey: key}
		res, err := conncheck.Run(ctx, c)
		return res.Date, err
	}
}
