package identity

import (
	"fmt"
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
func WriteEnrollment(dataDir string, id Identity, ks keys.Store, firmwareVersion string) ([]byte, error) {
	rec, err := enroll.New(ks.Identity().Public(), ks.PayloadKey().PublicKey(), id.DeviceID, id.DeviceSerial, firmwareVersion)
	if err != nil {
		return nil, fmt.Errorf("enrollment record: %w", err)
	}
	b, err := rec.Marshal()
	if err != nil {
		return nil, fmt.Errorf("enrollment record: %w", err)
	}
	if err := writeFileIfChanged(filepath.Join(dataDir, EnrollmentFileName), b); err != nil {
		return nil, fmt.Errorf("enrollment record: %w", err)
	}
	return b, nil
}
