package tpm

import (
	"crypto"
	"crypto/ecdsa"
	"errors"
	"slices"
	"testing"

	"github.com/google/go-tpm/tpm2"

	"github.com/zmonitor/firmware/internal/fw/keys"
)

// slotPublic is the public key committed in slot, or nil when it is empty.
func slotPublic(t *testing.T, s *Store, slot keys.Slot) *ecdsa.PublicKey {
	t.Helper()
	k, err := s.ClientKeyAt(slot)
	if errors.Is(err, keys.ErrNoClientKey) {
		return nil
	}
	if err != nil {
		t.Fatalf("ClientKeyAt(%s): %v", slot, err)
	}
	return k.Public().(*ecdsa.PublicKey)
}

// A renewal's life in the TPM: the key of slot A in use, a new key
// committed to slot B beside it (A untouched), both surviving a power
// cycle, then A evicted; factory reset forgets both.
func TestClientKeySlots(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s := newStore(t, b, provision)
		old, err := s.NewClientKey()
		if err != nil {
			t.Fatal(err)
		}
		if err := old.Commit(); err != nil { // a pairing: slot A
			t.Fatal(err)
		}
		oldPub := old.Public().(*ecdsa.PublicKey)
		renewed, err := s.NewClientKey()
		if err != nil {
			t.Fatal(err)
		}
		if err := renewed.(keys.SlotCommitter).CommitTo(keys.SlotB); err != nil {
			t.Fatal(err)
		}
		newPub := renewed.Public().(*ecdsa.PublicKey)
		requireTransient(t, s, 0, "CommitTo(B)")
		if p := slotPublic(t, s, keys.SlotA); p == nil || !p.Equal(oldPub) {
			t.Fatal("committing to slot B changed slot A")
		}
		if p := slotPublic(t, s, keys.SlotB); p == nil || !p.Equal(newPub) {
			t.Fatal("slot B does not hold the key committed to it")
		}
		hs, err := s.PersistentHandles()
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range []tpm2.TPMHandle{DefaultClientHandle, DefaultClientHandleB} {
			if !slices.Contains(hs, h) {
				t.Errorf("persistent handles %v lack 0x%08x", hs, uint32(h))
			}
		}

		// A power cut keeps both.
		_ = s.Close()
		b.restart(t)
		s = newStore(t, b, nil)
		if p := slotPublic(t, s, keys.SlotA); p == nil || !p.Equal(oldPub) {
			t.Fatal("slot A lost across a restart")
		}
		k, err := s.ClientKeyAt(keys.SlotB)
		if err != nil {
			t.Fatal(err)
		}
		d := sha("renewed")
		sig, err := k.Sign(nil, d, crypto.SHA256)
		if err != nil {
			t.Fatal(err)
		}
		verify(t, newPub, d, sig)

		// The switch: the old key goes, the new one stays.
		if err := s.ForgetClientKeyAt(keys.SlotA); err != nil {
			t.Fatal(err)
		}
		if err := s.ForgetClientKeyAt(keys.SlotA); err != nil {
			t.Fatalf("forgetting an empty slot: %v", err)
		}
		if p := slotPublic(t, s, keys.SlotA); p != nil {
			t.Fatal("slot A still holds a key after ForgetClientKeyAt(A)")
		}
		if _, err := s.CommittedClientKey(); !errors.Is(err, keys.ErrNoClientKey) {
			t.Errorf("CommittedClientKey (slot A) after the switch: err = %v, want ErrNoClientKey", err)
		}
		if p := slotPublic(t, s, keys.SlotB); p == nil || !p.Equal(newPub) {
			t.Fatal("forgetting slot A changed slot B")
		}
		hs, err = s.PersistentHandles()
		if err != nil {
			t.Fatal(err)
		}
		if slices.Contains(hs, DefaultClientHandle) {
			t.Errorf("0x%08x still persistent after the old key was evicted: %v", uint32(DefaultClientHandle), hs)
		}

		// The next renewal goes back to A, replacing nothing in B.
		again, err := s.NewClientKey()
		if err != nil {
			t.Fatal(err)
		}
		if err := again.(keys.SlotCommitter).CommitTo(keys.SlotA); err != nil {
			t.Fatal(err)
		}
		if p := slotPublic(t, s, keys.SlotB); p == nil || !p.Equal(newPub) {
			t.Fatal("committing to slot A changed slot B")
		}

		// Factory reset forgets both.
		if err := s.ForgetClientKey(); err != nil {
			t.Fatal(err)
		}
		for _, slot := range keys.Slots {
			if p := slotPublic(t, s, slot); p != nil {
				t.Errorf("slot %s holds a key after ForgetClientKey", slot)
			}
		}
		if _, err := s.ClientKeyAt(keys.Slot(7)); err == nil {
			t.Error("ClientKeyAt(7) succeeded")
		}
		requireTransient(t, s, 0, "the slots' life")
	})
}

func TestClientHandleBMustDiffer(t *testing.T) {
	o := DefaultOpts
	o.ClientHandleB = o.ClientHandle
	if err := o.validate(); err == nil {
		t.Fatal("slot B sharing slot A's handle was accepted")
	}
}
