package boot

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
)

// readAnchors reads the provisioning trust anchors: one or more PEM
// certificates, every one of which must parse.
func readAnchors(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("provisioning trust anchor: %w", err)
	}
	pool := x509.NewCertPool()
	n := 0
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("provisioning trust anchor %s: %w", path, err)
		}
		pool.AddCert(c)
		n++
	}
	if n == 0 {
		return nil, fmt.Errorf("provisioning trust anchor %s: no certificate", path)
	}
	return pool, nil
}
