package boot

import (
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"

	"github.com/zmonitor/firmware/internal/proto/devicewire"
)

// Where Linux shows the boot firmware's TPM event log (securityfs).
const (
	securityFS   = "/sys/kernel/security"
	EventLogPath = securityFS + "/tpm0/binary_bios_measurements"
)

// ReadEventLog reads the boot firmware's event log for the hello's
// attestation, mounting securityfs the first time (the boot's pseudo
// mounts leave it out: only a pairing needs it). A board that booted its
// kernel directly (qemu-virt) has no log: the error says so.
func ReadEventLog() ([]byte, error) {
	b, err := readEventLog()
	if errors.Is(err, os.ErrNotExist) {
		if merr := unix.Mount("securityfs", securityFS, "securityfs", unix.MS_NODEV|unix.MS_NOSUID|unix.MS_NOEXEC, ""); merr == nil || errors.Is(merr, unix.EBUSY) {
			b, err = readEventLog()
		}
	}
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("no firmware event log at %s (the boot firmware measured nothing)", EventLogPath)
	}
	return b, err
}

func readEventLog() ([]byte, error) {
	f, err := os.Open(EventLogPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, devicewire.MaxEventLog+1))
	if err != nil {
		return nil, fmt.Errorf("read event log: %w", err)
	}
	if len(b) > devicewire.MaxEventLog {
		return nil, fmt.Errorf("event log larger than %d bytes", devicewire.MaxEventLog)
	}
	if len(b) == 0 {
		return nil, fmt.Errorf("event log %s is empty", EventLogPath)
	}
	return b, nil
}
