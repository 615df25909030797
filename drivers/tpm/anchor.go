package tpm

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"

	"github.com/google/go-tpm/tpm2"
)

// DefaultAuditAnchorIndex is the NV index that holds the audit log's
// anchor: in the owner's range (0x01800000-0x01BFFFFF) of the TCG's
// registry of TPM handles, clear of the TCG-defined indices
// (0x01C00000-, endorsement certificates).
const DefaultAuditAnchorIndex tpm2.TPMHandle = 0x018000A1

// AuditAnchorSize is the anchor's size: the record's sequence number
// (8 bytes, big endian) and its SHA-256 hash.
const AuditAnchorSize = 8 + sha256.Size

// AuditAnchorPublic is the anchor index's public area: an ordinary index
// of AuditAnchorSize bytes, written whole (WRITEALL: a power cut leaves the
// old anchor or the new one) with owner authorization, readable with the
// owner's or its own (empty) authorization, outside dictionary-attack
// protection (there is nothing to guess). Not ORDERLY: every write reaches
// the TPM's NV before the command returns, so a power cut cannot roll it
// back. The index is deleted only by the owner (TPM2_NV_UndefineSpace) or
// a TPM2_Clear, which also destroys the device keys.
func AuditAnchorPublic(index tpm2.TPMHandle) tpm2.TPMSNVPublic {
	return tpm2.TPMSNVPublic{
		NVIndex: index,
		NameAlg: tpm2.TPMAlgSHA256,
		Attributes: tpm2.TPMANV{
			OwnerWrite: true,
			OwnerRead:  true,
			AuthRead:   true,
			WriteAll:   true,
			NoDA:       true,
			NT:         tpm2.TPMNTOrdinary,
		},
		DataSize: AuditAnchorSize,
	}
}

// anchorIndex is the anchor index as the store last saw it.
type anchorIndex struct {
	known bool // pub is the TPM's (read or defined by this store)
	pub   tpm2.TPMSNVPublic
}

// ReadAuditAnchor returns the audit record the TPM anchors: its sequence
// number and hash. ok is false when the TPM holds no anchor (the index is
// not defined, or defined and never written). An index at the handle that
// is not the anchor's (other attributes or size) is ErrKeyMismatch.
// Two TPM commands: NV_ReadPublic and NV_Read.
func (s *Store) ReadAuditAnchor() (seq uint64, hash [32]byte, ok bool, err error) {
	if err := s.lock("read audit anchor"); err != nil {
		return 0, hash, false, err
	}
	defer s.mu.Unlock()
	defined, err := s.readAnchorPublic()
	if err != nil || !defined || !s.anchor.pub.Attributes.Written {
		return 0, hash, false, err
	}
	name, err := tpm2.NVName(&s.anchor.pub)
	if err != nil {
		return 0, hash, false, wrap("read audit anchor", err)
	}
	rsp, err := tpm2.NVRead{
		AuthHandle: tpm2.AuthHandle{Handle: s.opts.AuditAnchorIndex, Name: *name, Auth: tpm2.PasswordAuth(nil)},
		NVIndex:    tpm2.NamedHandle{Handle: s.opts.AuditAnchorIndex, Name: *name},
		Size:       AuditAnchorSize,
	}.Execute(s.tpm)
	if err != nil {
		return 0, hash, false, wrap("read audit anchor", err)
	}
	if len(rsp.Data.Buffer) != AuditAnchorSize {
		return 0, hash, false, fmt.Errorf("tpm: read audit anchor: %d bytes, want %d", len(rsp.Data.Buffer), AuditAnchorSize)
	}
	copy(hash[:], rsp.Data.Buffer[8:])
	return binary.BigEndian.Uint64(rsp.Data.Buffer[:8]), hash, true, nil
}

// WriteAuditAnchor anchors the audit record (seq, hash) in the TPM,
// replacing the anchor before it; the first write defines the index. One
// TPM command (NV_Write), and one NV write: a real TPM's NV wears (vendors
// quote some 500,000 writes), so the caller batches (internal/fw/audit).
func (s *Store) WriteAuditAnchor(seq uint64, hash [32]byte) error {
	if err := s.lock("write audit anchor"); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if !s.anchor.known {
		defined, err := s.readAnchorPublic()
		if err != nil {
			return err
		}
		if !defined {
			pub := AuditAnchorPublic(s.opts.AuditAnchorIndex)
			if _, err := (tpm2.NVDefineSpace{
				AuthHandle: s.ownerAuth(),
				PublicInfo: tpm2.New2B(pub),
			}).Execute(s.tpm); err != nil {
				return wrap("define audit anchor index", err)
			}
			s.anchor = anchorIndex{known: true, pub: pub}
		}
	}
	name, err := tpm2.NVName(&s.anchor.pub)
	if err != nil {
		return wrap("write audit anchor", err)
	}
	data := make([]byte, AuditAnchorSize)
	binary.BigEndian.PutUint64(data, seq)
	copy(data[8:], hash[:])
	if _, err := (tpm2.NVWrite{
		AuthHandle: s.ownerAuth(),
		NVIndex:    tpm2.NamedHandle{Handle: s.opts.AuditAnchorIndex, Name: *name},
		Data:       tpm2.TPM2BMaxNVBuffer{Buffer: data},
	}).Execute(s.tpm); err != nil {
		// The index may have changed behind the store's back: read it
		// again next time.
		s.anchor = anchorIndex{}
		return wrap("write audit anchor", err)
	}
	s.anchor.pub.Attributes.Written = true
	return nil
}

// readAnchorPublic reads the anchor index's public area into s.anchor.
// defined is false when no index is at the handle. The caller holds s.mu.
func (s *Store) readAnchorPublic() (defined bool, err error) {
	rsp, err := tpm2.NVReadPublic{NVIndex: s.opts.AuditAnchorIndex}.Execute(s.tpm)
	if isRC(err, tpm2.TPMRCHandle) {
		s.anchor = anchorIndex{}
		return false, nil
	}
	if err != nil {
		return false, wrap("read audit anchor index", err)
	}
	pub, err := rsp.NVPublic.Contents()
	if err != nil {
		return false, wrap("read audit anchor index", err)
	}
	want := AuditAnchorPublic(s.opts.AuditAnchorIndex)
	got := *pub
	got.Attributes.Written = false
	if got.NameAlg != want.NameAlg || got.Attributes != want.Attributes || got.DataSize != want.DataSize || len(got.AuthPolicy.Buffer) != 0 {
		return false, fmt.Errorf("tpm: read audit anchor index: %w: NV index 0x%08x has attributes 0x%08x and %d bytes, not the audit anchor's",
			ErrKeyMismatch, uint32(s.opts.AuditAnchorIndex), attributeBits(pub.Attributes), pub.DataSize)
	}
	s.anchor = anchorIndex{known: true, pub: *pub}
	return true, nil
}

// attributeBits is the TPMA_NV word, for messages.
func attributeBits(a tpm2.TPMANV) uint32 {
	b := tpm2.Marshal(a)
	if len(b) != 4 {
		return 0
	}
	return binary.BigEndian.Uint32(b)
}
