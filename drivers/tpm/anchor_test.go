package tpm

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-tpm/tpm2"

	"github.com/zmonitor/firmware/drivers/tpm/tpmcount"
)

// The audit anchor on every backend: none at first, then what was
// written, the last write winning, across a restart of the TPM; the index
// has the anchor's attributes.
func TestAuditAnchorSurvivesRestart(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s, err := New(b.open(t), provision)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, ok, err := s.ReadAuditAnchor(); ok || err != nil {
			t.Fatalf("anchor on a new TPM: ok %v, %v", ok, err)
		}
		for seq := uint64(1); seq <= 3; seq++ {
			if err := s.WriteAuditAnchor(seq, sha256.Sum256([]byte(fmt.Sprint(seq)))); err != nil {
				t.Fatalf("write %d: %v", seq, err)
			}
		}
		_ = s.Close()

		b.restart(t)

		s2 := newStore(t, b, nil)
		seq, hash, ok, err := s2.ReadAuditAnchor()
		if err != nil || !ok || seq != 3 || hash != sha256.Sum256([]byte("3")) {
			t.Fatalf("after restart: seq %d ok %v %v", seq, ok, err)
		}
		rsp, err := tpm2.NVReadPublic{NVIndex: DefaultAuditAnchorIndex}.Execute(s2.tpm)
		if err != nil {
			t.Fatal(err)
		}
		pub, _ := rsp.NVPublic.Contents()
		want := AuditAnchorPublic(DefaultAuditAnchorIndex)
		want.Attributes.Written = true
		if pub.Attributes != want.Attributes || pub.DataSize != AuditAnchorSize {
			t.Errorf("index attributes 0x%08x size %d, want 0x%08x %d", attributeBits(pub.Attributes), pub.DataSize, attributeBits(want.Attributes), AuditAnchorSize)
		}
	})
}

// An index at the anchor's handle that is not the anchor's (another size)
// is refused, not written over or read as an anchor.
func TestForeignIndexAtTheAnchorIsMismatch(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s := newStore(t, b, provision)
		foreign := AuditAnchorPublic(DefaultAuditAnchorIndex)
		foreign.DataSize = 8
		if _, err := (tpm2.NVDefineSpace{AuthHandle: s.ownerAuth(), PublicInfo: tpm2.New2B(foreign)}).Execute(s.tpm); err != nil {
			t.Fatal(err)
		}
		if _, _, _, err := s.ReadAuditAnchor(); !errors.Is(err, ErrKeyMismatch) {
			t.Errorf("read: %v, want ErrKeyMismatch", err)
		}
		if err := s.WriteAuditAnchor(1, [32]byte{}); !errors.Is(err, ErrKeyMismatch) {
			t.Errorf("write: %v, want ErrKeyMismatch", err)
		}
	})
}

// TestAuditAnchorCommandCount pins what the anchor costs the TPM: reading
// it at boot is two commands (NV_ReadPublic, NV_Read), the first write of a
// boot one more NV_ReadPublic, the first write ever an NV_DefineSpace, and
// every later write one NV_Write: the one NV write per anchor update that
// internal/fw/audit batches.
func TestAuditAnchorCommandCount(t *testing.T) {
	s, counter := countedSwtpm(t)
	step := func(what string, want int, f func() error) {
		t.Helper()
		counter.Reset()
		if err := f(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if got := counter.Total(); got != want {
			t.Errorf("%s = %d TPM commands, want %d:\n%s", what, got, want, counter)
		}
	}
	step("read at the first boot", 1, func() error { _, _, _, err := s.ReadAuditAnchor(); return err })
	step("first write ever", 3, func() error { return s.WriteAuditAnchor(1, [32]byte{1}) })
	step("next write", 1, func() error { return s.WriteAuditAnchor(2, [32]byte{2}) })
	s.anchor = anchorIndex{} // as a new boot's store
	step("read at a later boot", 2, func() error { _, _, _, err := s.ReadAuditAnchor(); return err })
	step("first write after it", 1, func() error { return s.WriteAuditAnchor(3, [32]byte{3}) })
}

// BenchmarkAuditAnchorWrite measures one anchor update (NV_Write) on swtpm
// over its unix socket, and reading the anchor at boot.
func BenchmarkAuditAnchorWrite(b *testing.B) {
	s, counter := countedSwtpm(b)
	if err := s.WriteAuditAnchor(0, [32]byte{}); err != nil {
		b.Fatal(err)
	}
	if _, _, _, err := s.ReadAuditAnchor(); err != nil {
		b.Fatal(err)
	}
	counter.Reset()
	seq := uint64(1)
	for b.Loop() {
		if err := s.WriteAuditAnchor(seq, sha256.Sum256([]byte{byte(seq)})); err != nil {
			b.Fatal(err)
		}
		seq++
	}
	for _, st := range counter.Stats() {
		b.ReportMetric(float64(st.Mean().Nanoseconds()), "ns/"+tpmcount.Name(st.Code))
	}
}
