package attestation

import (
	"crypto/sha256"
	"encoding/binary"
)

// testEvent is one measurement of a test event log.
type testEvent struct {
	pcr    uint32
	typ    uint32
	digest []byte // SHA-256; sha256(data) when nil
	data   []byte
}

// eventLog writes a TCG crypto-agile event log with the SHA-256 bank only,
// as U-Boot writes it (the Spec ID header event, then TCG_PCR_EVENT2s), and
// returns the PCR values it replays to. Test-only: the Central Station
// parses logs with go-attestation.
func eventLog(events []testEvent) (log []byte, pcrs map[uint32][]byte) {
	le := binary.LittleEndian
	spec := []byte("Spec ID Event03\x00")
	spec = le.AppendUint32(spec, 0)      // platformClass
	spec = append(spec, 0, 2, 0, 2)      // specVersionMinor, Major, errata, uintnSize
	spec = le.AppendUint32(spec, 1)      // numberOfAlgorithms
	spec = le.AppendUint16(spec, 0x000b) // TPM_ALG_SHA256
	spec = le.AppendUint16(spec, 32)
	spec = append(spec, 0) // vendorInfoSize
	log = le.AppendUint32(log, 0)
	log = le.AppendUint32(log, 3) // EV_NO_ACTION
	log = append(log, make([]byte, 20)...)
	log = le.AppendUint32(log, uint32(len(spec)))
	log = append(log, spec...)
	pcrs = map[uint32][]byte{}
	for _, e := range events {
		d := e.digest
		if d == nil {
			s := sha256.Sum256(e.data)
			d = s[:]
		}
		log = le.AppendUint32(log, e.pcr)
		log = le.AppendUint32(log, e.typ)
		log = le.AppendUint32(log, 1)
		log = le.AppendUint16(log, 0x000b)
		log = append(log, d...)
		log = le.AppendUint32(log, uint32(len(e.data)))
		log = append(log, e.data...)
		old, ok := pcrs[e.pcr]
		if !ok {
			old = make([]byte, 32)
		}
		h := sha256.New()
		h.Write(old)
		h.Write(d)
		pcrs[e.pcr] = h.Sum(nil)
	}
	return log, pcrs
}
