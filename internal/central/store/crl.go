package store

import (
	"context"
	"crypto/x509"
	"fmt"
	"math/big"
)

// RevocationEntries are the CRL entries of every revoked certificate in
// st (serial, revocation time, CRL reason code), for ca.CA.CRL.
func RevocationEntries(ctx context.Context, st interface {
	AllCertificates(ctx context.Context) ([]IssuedCertificate, error)
}) ([]x509.RevocationListEntry, error) {
	all, err := st.AllCertificates(ctx)
	if err != nil {
		return nil, err
	}
	var entries []x509.RevocationListEntry
	for _, c := range all {
		if c.State != CertificateRevoked {
			continue
		}
		serial, ok := new(big.Int).SetString(c.Serial, 16)
		if !ok {
			return nil, fmt.Errorf("certificate serial %q is not hexadecimal", c.Serial)
		}
		entries = append(entries, x509.RevocationListEntry{SerialNumber: serial, RevocationTime: c.RevokedAt, ReasonCode: c.Reason.CRLReason()})
	}
	return entries, nil
}
