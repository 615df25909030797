package boot

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"sync"
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

// loadedAnchors is the provisioning trust anchors, or why not.
type loadedAnchors struct {
	pool *x509.CertPool
	err  error
}

// startAnchors parses the trust anchors in the background (cold x509
// code, ~0.1 s under QEMU), beside the TPM's work.
func (d *device) startAnchors() {
	ch := make(chan loadedAnchors, 1)
	go func() {
		pool, err := readAnchors(d.c.Anchors)
		d.trace.mark("anchors read")
		ch <- loadedAnchors{pool, err}
	}()
	d.anchors = sync.OnceValue(func() loadedAnchors { return <-ch })
}
