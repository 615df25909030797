package audit

import "github.com/zmonitor/firmware/internal/proto/auditcheckpoint"

// Status is the log's tamper evidence as it stands: what the console's
// status and `audit` commands print.
type Status struct {
	// Records is the last record's seq.
	Records uint64
	// Anchoring says whether the log is anchored in a TPM at all;
	// AnchorSeq is the record the TPM holds (as this boot wrote it or read
	// it at open), AnchorWrites the NV writes this boot, AnchorErr the
	// last failure (nil after a success).
	Anchoring    bool
	AnchorSeq    uint64
	AnchorWrites int
	AnchorErr    error
	// AtOpen is the damage Open found and Recover recorded ("" none).
	AtOpen string
	// Checkpoint is the last checkpoint written since the log opened.
	Checkpoint *auditcheckpoint.Checkpoint
	// Check is the background check of the whole log (CheckAll).
	Check Check
	// DiskFull says that records stopped fitting on the disk, or may soon
	// ("" they fit, with the reserve in place): see ReserveName.
	DiskFull string
}

// Status returns the log's tamper evidence now.
func (l *Log) Status() Status {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := Status{
		Records: l.seq, Anchoring: l.o.Anchor != nil, AnchorSeq: l.anchored.seq, AnchorWrites: l.anchorWrites,
		AnchorErr: l.anchorErr, AtOpen: l.atOpen, Check: l.bgCheck, DiskFull: l.diskFull,
	}
	if l.checkpoint != nil {
		cp := *l.checkpoint
		s.Checkpoint = &cp
	}
	s.Check.Findings = append([]string(nil), l.bgCheck.Findings...)
	return s
}
