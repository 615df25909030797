package boot

import (
	"crypto/ecdsa"
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/zmonitor/firmware/internal/fw/audit"
	"github.com/zmonitor/firmware/internal/fw/engine"
	"github.com/zmonitor/firmware/internal/fw/keys"
	"github.com/zmonitor/firmware/internal/fw/settings"
	"github.com/zmonitor/firmware/internal/proto/failure"
	"github.com/zmonitor/firmware/internal/proto/state"
)

// firstFrame is the boot's one decision on where the device starts, made
// as soon as the settings are open, before the keys are loaded:
//
//   - no committed settings, or unreadable ones: UNPROVISIONED. It needs
//     neither the keys nor the trust anchors, so its frame is drawn at once,
//     while the TPM works, and it is final.
//   - committed settings: PROVISIONED, if their client certificate belongs
//     to the key store's committed client key, which only the loaded keys
//     can tell (a power cut between the key's commit and the settings'
//     commit breaks that). Its frame is rendered ahead; start confirms the
//     decision once the keys are loaded, and the engine draws the frame.
//
// The engine is handed the result (engine.Options.Start) and does not
// decide again.
type firstFrame struct {
	state     state.State // state.Unprovisioned or state.Provisioned
	committed *settings.Provisioning
	// unreadable is why the settings could not be read; the device starts
	// UNPROVISIONED and the audit log says why.
	unreadable error
}

// decideFirstFrame decides from the settings store's answer.
func decideFirstFrame(cur settings.Provisioning, provisioned bool, err error) firstFrame {
	switch {
	case err != nil:
		return firstFrame{state: state.Unprovisioned, unreadable: err}
	case provisioned:
		return firstFrame{state: state.Provisioned, committed: &cur}
	}
	return firstFrame{state: state.Unprovisioned}
}

// tentative is the engine start the first frame shows.
func (f firstFrame) tentative() engine.Start {
	return engine.Start{State: f.state, Committed: f.committed}
}

// start confirms the decision with the loaded keys and returns the
// engine's start, and the audit record of why committed or unreadable
// settings are not used (nil when they are, or there are none).
func (f firstFrame) start(ks keys.Store) (engine.Start, *audit.Event) {
	switch {
	case f.unreadable != nil:
		return engine.Start{State: state.Unprovisioned},
			&audit.Event{Event: "SETTINGS_UNREADABLE", Code: failure.Internal.String(), Reason: f.unreadable.Error()}
	case f.state == state.Provisioned:
		if err := checkCommittedKey(ks, *f.committed); err != nil {
			return engine.Start{State: state.Unprovisioned},
				&audit.Event{Event: "CLIENT_KEY_MISMATCH", Code: failure.CertificateInvalid.String(), Reason: err.Error()}
		}
		return f.tentative(), nil
	}
	return engine.Start{State: state.Unprovisioned}, nil
}

// checkCommittedKey makes sure the committed client key (in the slot the
// settings name: A after a pairing, either after renewals) belongs to the
// committed certificate: the device then starts PROVISIONED, and otherwise
// UNPROVISIONED rather than half-provisioned.
func checkCommittedKey(ks keys.Store, p settings.Provisioning) error {
	slot, err := keys.SlotOfRef(p.ClientKeyRef)
	if err != nil {
		return fmt.Errorf("committed client key: %w", err)
	}
	k, err := ks.ClientKeyAt(slot)
	if err != nil {
		return fmt.Errorf("committed client key (slot %s): %w", slot, err)
	}
	cert, err := x509.ParseCertificate(p.ClientCertDER)
	if err != nil {
		return fmt.Errorf("committed client certificate: %w", err)
	}
	pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
	kp, ok2 := k.Public().(*ecdsa.PublicKey)
	if !ok || !ok2 || !pub.Equal(kp) {
		return errors.New("committed client key does not match the committed client certificate")
	}
	return nil
}
