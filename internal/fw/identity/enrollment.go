package identity

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/zmonitor/firmware/internal/fw/keys"
	"github.com/zmonitor/firmware/internal/proto/enroll"
)

// EnrollmentFileName is the enrollment record's file in the data directory.
const EnrollmentFileName = "enrollment.json"

// WriteEnrollment makes the enrollment record of id (the public halves of
// the store's identity and payload keys, the firmware version) and keeps it
// in dataDir. It returns the record's JSON, which the console's `enroll`
// prints.
//
// The file is written on the first boot and whenever the record changes (a
// firmware update), not on every boot: its two fsyncs cost ~0.1 s under
// QEMU.
//
// A store that can attest (keys.Attester, the TPM) adds its attestation key
// and the identity key's certification of it. The certification carries
// the TPM's clock, so it differs each time it is made: the one in the kept
// file is reused while it still certifies an attestation key for this
// identity (no TPM command on later boots); otherwise the key is made (if
// missing) and certified again.
func WriteEnrollment(dataDir string, id Identity, ks keys.Store, firmwareVersion string) ([]byte, error) {
	rec, err := enroll.New(ks.Identity().Public(), ks.PayloadKey().PublicKey(), id.DeviceID, id.DeviceSerial, firmwareVersion)
	if err != nil {
		return nil, fmt.Errorf("enrollment record: %w", err)
	}
	path := filepath.Join(dataDir, EnrollmentFileName)
	if a, ok := ks.(keys.Attester); ok {
		if rec, err = withAttestationKey(rec, path, a); err != nil {
			return nil, fmt.Errorf("enrollment record: %w", err)
		}
	}
	b, err := rec.Marshal()
	if err != nil {
		return nil, fmt.Errorf("enrollment record: %w", err)
	}
	if err := writeFileIfChanged(path, b); err != nil {
		return nil, fmt.Errorf("enrollment record: %w", err)
	}
	return b, nil
}

// withAttestationKey adds the attestation key to rec: the kept record's,
// when it has one certified by rec's identity key, else a new
// certification from a.
func withAttestationKey(rec enroll.Record, path string, a keys.Attester) (enroll.Record, error) {
	if old, err := os.ReadFile(path); err == nil {
		if kept, err := enroll.Parse(old); err == nil && kept.HasAttestationKey() && kept.IdentityKey == rec.IdentityKey {
			rec.AttestationKey = kept.AttestationKey
			rec.AttestationCertifyInfo = kept.AttestationCertifyInfo
			rec.AttestationCertifySignature = kept.AttestationCertifySignature
			return rec, nil
		}
	}
	ak, err := a.AttestationKey()
	if err != nil {
		return enroll.Record{}, err
	}
	return rec.WithAttestationKey(ak.Public, ak.CertifyInfo, ak.CertifySignature)
}
