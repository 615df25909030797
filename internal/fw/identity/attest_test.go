package identity

import (
	"crypto/rand"
	"errors"
	"testing"

	"github.com/zmonitor/firmware/internal/fw/keys"
	"github.com/zmonitor/firmware/internal/fw/keys/softkeys"
	"github.com/zmonitor/firmware/internal/proto/enroll"
	"github.com/zmonitor/firmware/internal/testkit/fakeak"
)

// attestingStore is softkeys with a fake attestation key; it counts
// certifications.
type attestingStore struct {
	*softkeys.Store
	ak        keys.AttestationKey
	certified int
	err       error
}

func (s *attestingStore) AttestationKey() (keys.AttestationKey, error) {
	s.certified++
	return s.ak, s.err
}

func (s *attestingStore) Quote([]byte) (keys.Quote, error) {
	return keys.Quote{}, errors.New("not used")
}

func TestWriteEnrollmentAddsTheAttestationKeyOnce(t *testing.T) {
	dir := t.TempDir()
	soft, err := softkeys.New(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ak := fakeak.New(t)
	ks := &attestingStore{Store: soft, ak: ak.Certified(t, soft.Identity())}
	id := Identity{DeviceID: "ZM-001", DeviceSerial: "SN-1"}
	b, err := WriteEnrollment(dir, id, ks, "1.2.3")
	if err != nil {
		t.Fatal(err)
	}
	rec, err := enroll.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	k, err := rec.CheckedAttestationKey()
	if err != nil || k == nil || !k.Key.Equal(&ak.Key.PublicKey) {
		t.Fatalf("record's attestation key %v, %v; want the store's", k, err)
	}
	// A later boot reuses the kept certification: no TPM command, the same
	// bytes (so the file is not rewritten).
	again, err := WriteEnrollment(dir, id, ks, "1.2.3")
	if err != nil {
		t.Fatal(err)
	}
	if ks.certified != 1 || string(again) != string(b) {
		t.Errorf("second boot: %d certifications, record changed %v; want 1, unchanged", ks.certified, string(again) != string(b))
	}
	// A certification by another identity is refused, not written.
	other, _ := softkeys.New(rand.Reader)
	bad := &attestingStore{Store: other, ak: ak.Certified(t, soft.Identity())}
	if _, err := WriteEnrollment(t.TempDir(), id, bad, "1.2.3"); err == nil {
		t.Error("a record whose attestation key another identity certified was written")
	}
	failing := &attestingStore{Store: soft, err: errors.New("tpm: certify attestation key: boom")}
	if _, err := WriteEnrollment(t.TempDir(), id, failing, "1.2.3"); err == nil {
		t.Error("a failed certification did not fail WriteEnrollment")
	}
}
