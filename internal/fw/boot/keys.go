package boot

import (
	"fmt"
	"sync"

	"github.com/zmonitor/firmware/drivers/tpm"
	"github.com/zmonitor/firmware/internal/base/version"
	"github.com/zmonitor/firmware/internal/fw/identity"
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

// loadedKeys is the key store and the enrollment record made from it.
type loadedKeys struct {
	store      keys.Store
	close      func() error
	enrollment []byte
	err        error
}

// startKeys opens the key store and writes the enrollment record in the
// background. On the QEMU board, starting this beside the settings and the
// screen made the first frame ~40 ms later (median of 10 boots each,
// interleaved): even while the guest waits for the TPM, the host's cores
// run swtpm, and go-tpm's and x509's first runs are cold code.
//
// It starts them once: the audit log's opening starts them early when a
// stage discard must be recorded before the first frame.
func (d *device) startKeys() {
	if d.keys != nil {
		return
	}
	ch := make(chan loadedKeys, 1)
	go func() {
		ks, closeKeys, err := d.c.Keys(d.firstBoot)
		if err != nil {
			ch <- loadedKeys{err: err}
			return
		}
		d.trace.mark("TPM keys loaded")
		b, err := identity.WriteEnrollment(d.c.DataDir, d.id, ks, version.Version)
		if err != nil {
			closeKeys()
			ch <- loadedKeys{err: err}
			return
		}
		d.trace.mark("enrollment record checked")
		ch <- loadedKeys{store: ks, close: closeKeys, enrollment: b}
	}()
	d.keys = sync.OnceValue(func() loadedKeys { return <-ch })
	d.later(func() {
		if l := d.keys(); l.close != nil {
			l.close()
		}
	})
}
