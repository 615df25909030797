package store

import (
	"context"
	"fmt"
)

// RevokeDeviceCertificates revokes every certificate of device id that is
// not revoked yet (cessation of operation), each audited by actor with why
// ("device revoked", "device decommissioned"), so that the CRL lists them
// and the monitoring server refuses the device. Run again after an
// interruption, it revokes the rest. It returns how many it revoked.
func RevokeDeviceCertificates(ctx context.Context, st Store, actor, id, why string) (int, error) {
	certs, err := st.Certificates(ctx, id)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, c := range certs {
		if c.State == CertificateRevoked {
			continue
		}
		if err := st.RevokeCertificate(ctx, c.Serial, ReasonCessationOfOperation); err != nil {
			return n, err
		}
		if err := st.Audit(ctx, AuditRecord{Actor: actor, Event: "certificate.revoked", DeviceID: id,
			Detail: fmt.Sprintf("serial=%s reason=%s (%s)", c.Serial, ReasonCessationOfOperation, why)}); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}
