package boot

import (
	"fmt"

	"github.com/zmonitor/firmware/drivers/tpm"
	"github.com/zmonitor/firmware/internal/fw/keys"
)

// OpenKeys opens the device's key store. On the first boot (manufacturing)
// it creates the keys; on later boots they must be there: an enrolled
// identity is never silently regenerated. close lets go of the store.
type OpenKeys func(firstBoot bool) (ks keys.Store, close func() error, err error)

// TPMKeys opens the keys in the TPM at path: a device file such as
// /dev/tpmrm0, or "unix:..." and "tcp:..." for swtpm on a development host
// (tpm.Open).
func TPMKeys(path string) OpenKeys {
	return func(firstBoot bool) (keys.Store, func() error, error) {
		t, err := tpm.Open(path)
		if err != nil {
			return nil, nil, fmt.Errorf("open TPM %s: %w", path, err)
		}
		s, err := tpm.New(t, &tpm.Opts{Provision: firstBoot})
		if err != nil {
			t.Close()
			return nil, nil, fmt.Errorf("TPM keys: %w", err)
		}
		return s, s.Close, nil
	}
}
