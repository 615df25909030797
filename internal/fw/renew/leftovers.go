package renew

import (
	"errors"
	"fmt"

	"github.com/zmonitor/firmware/internal/fw/keys"
	"github.com/zmonitor/firmware/internal/fw/settings"
)

// Leftovers evicts the client keys the committed settings do not name (the
// boot runs it before the engine starts): the other slot's key of a
// provisioned device, left by a renewal cut short before or after its
// settings commit; both slots' keys of an unprovisioned one (committed nil),
// left by an interrupted pairing or factory reset. It returns the slots it
// emptied; a slot it could not empty is in the error.
func Leftovers(ks keys.Store, committed *settings.Provisioning) ([]keys.Slot, error) {
	keep := keys.Slot(0)
	if committed != nil {
		s, err := keys.SlotOfRef(committed.ClientKeyRef)
		if err != nil {
			return nil, fmt.Errorf("renew: leftover keys: %w", err)
		}
		keep = s
	}
	var emptied []keys.Slot
	var errs []error
	for _, s := range keys.Slots {
		if s == keep {
			continue
		}
		if _, err := ks.ClientKeyAt(s); errors.Is(err, keys.ErrNoClientKey) {
			continue
		}
		// A key, or an object that is not one of ours: either way it goes.
		if err := ks.ForgetClientKeyAt(s); err != nil {
			errs = append(errs, fmt.Errorf("slot %s: %w", s, err))
			continue
		}
		emptied = append(emptied, s)
	}
	if len(errs) > 0 {
		return emptied, fmt.Errorf("renew: leftover keys: %w", errors.Join(errs...))
	}
	return emptied, nil
}
