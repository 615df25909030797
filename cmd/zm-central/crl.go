package main

import (
	"context"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"os"
	"strings"
	"time"

	"github.com/zmonitor/firmware/internal/central/ca"
	"github.com/zmonitor/firmware/internal/central/store"
)

// buildCRL is the device CA's CRL of every revoked certificate in st,
// signed now. Its number is the time in microseconds: it grows with
// every CRL as long as the Central Station's clock does not go back.
func buildCRL(ctx context.Context, st store.Store, c *ca.CA, now time.Time) ([]byte, error) {
	entries, err := store.RevocationEntries(ctx, st)
	if err != nil {
		return nil, fmt.Errorf("CRL: %w", err)
	}
	return c.CRL(entries, big.NewInt(now.UnixMicro()), now)
}

// deviceCA loads the device CA in dir, with crlURL as the distribution
// point of what it issues.
func deviceCA(dir, crlURL string) (*ca.CA, error) {
	p, err := loadPair(dir, deviceCACert, deviceCAKey)
	if err != nil {
		return nil, fmt.Errorf("device CA: %w", err)
	}
	return ca.New(p.cert, p.key, &ca.Opts{CRLURL: crlURL})
}

// cmdCRL writes the device CA's CRL (PEM) to standard output or --out.
func cmdCRL(ctx context.Context, args []string, stdout io.Writer) error {
	var f dbFlags
	fs := newCommand("crl", &f)
	out := fs.String("out", "", "write the CRL here (mode 0644) instead of standard output")
	der := fs.Bool("der", false, "DER instead of PEM")
	return withStore(ctx, fs, &f, args, 0, 0, func(st store.Store) error {
		c, err := deviceCA(f.dir, "")
		if err != nil {
			return err
		}
		crl, err := buildCRL(ctx, st, c, time.Now())
		if err != nil {
			return err
		}
		if !*der {
			crl = pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: crl})
		}
		if *out == "" {
			_, err = stdout.Write(crl)
			return err
		}
		return os.WriteFile(*out, crl, 0o644)
	})
}

// cmdCertificatesRevoke revokes one certificate with an operator's reason.
func cmdCertificatesRevoke(ctx context.Context, args []string, stdout io.Writer) error {
	var f dbFlags
	fs := newCommand("certificates revoke", &f)
	var names []string
	for _, r := range store.OperatorReasons {
		names = append(names, r.String())
	}
	reasonName := fs.String("reason", "", "why: "+strings.Join(names, ", ")+" (required)")
	note := fs.String("note", "", "what happened, for the audit trail")
	if err := parse(fs, args, 1, 1); err != nil {
		return err
	}
	reason, err := store.ParseRevocationReason(*reasonName)
	if err == nil && !isOperatorReason(reason) {
		err = fmt.Errorf("%q is the Central Station's own", *reasonName)
	}
	if err != nil || *reasonName == "" {
		return fmt.Errorf("%w: certificates revoke: --reason: one of %s", errUsage, strings.Join(names, ", "))
	}
	serial := strings.ToLower(fs.Arg(0))
	st, err := f.open(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	c, err := st.Certificate(ctx, serial)
	if err != nil {
		return fmt.Errorf("certificates revoke: %w", err)
	}
	if c.State == store.CertificateRevoked {
		fmt.Fprintf(stdout, "certificate %s of %s was already revoked (%s)\n", serial, c.DeviceID, c.Reason)
		return nil
	}
	if err := st.RevokeCertificate(ctx, serial, reason); err != nil {
		return err
	}
	detail := fmt.Sprintf("serial=%s reason=%s", serial, reason)
	if *note != "" {
		detail += " note=" + *note
	}
	if err := st.Audit(ctx, store.AuditRecord{Actor: cliActor, Event: "certificate.revoked", DeviceID: c.DeviceID, Detail: detail}); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "certificate %s of %s revoked (%s); publish the new CRL (zm-central crl, or serve's /crl)\n", serial, c.DeviceID, reason)
	return nil
}

func isOperatorReason(r store.RevocationReason) bool {
	for _, o := range store.OperatorReasons {
		if o == r {
			return true
		}
	}
	return false
}
