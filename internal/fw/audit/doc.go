// Package audit keeps the device's security_audit_log (DOC-PROC-001 2.2,
// DESIGN.md 7): an append-only JSON Lines file in which every record carries
// the hash of the record before it, so that a changed, deleted, inserted or
// reordered line is detected.
//
// # What other packages use
//
// Everything that audits depends only on Recorder (Record(Event) error) and
// builds an Event: an event name, optional state names, an optional failure
// code, an optional actor and an optional human reason. There is no
// free-form map, so a secret has nowhere to hide. Callers must never put a
// secret (pairing code, token, key, payload) in Reason or Actor; as a
// defence in depth, Append refuses a Reason or Actor that is too long, holds
// a control character, a PEM block or a long run of base64/hex characters.
// Use Sanitize on text that is not under your control (err.Error()).
//
// # The file
//
// One record per line, fields in a fixed order (see Record), for example:
//
//	{"seq":1,"wallTime":"2026-11-27T01:00:00.123Z","monoNanos":5000,"bootId":"…","clockTrusted":true,"event":"BOOT","to":"UNPROVISIONED","prev":"000…000","hash":"…"}
//
// hash is the hex SHA-256 of the line as it would be written without its
// "hash" member; prev is the hash of the previous record (all zeros for the
// first). Lines must be exactly in the form this package writes them, so
// the hash commits to every byte of a line except the hash itself, which is
// checked by recomputing it, and the next line's prev commits to that. monoNanos
// counts from Open on the monotonic clock and is meaningful within one
// bootId; wallTime comes from the wall clock with its trusted flag.
//
// Each Append is a single write(2) on an O_APPEND file followed by fsync,
// under a mutex: records are durable when Append returns and concurrent
// callers get a valid chain.
//
// # Segments, anchor, checkpoints
//
// The log is a series of segments: security_audit_log.jsonl is appended
// to; past Opts.SegmentBytes (1 MiB) it is closed as
// security_audit_log.NNNNNN.jsonl and a new one starts with
// AUDIT_SEGMENT_STARTED, which continues the chain. Beyond
// Opts.KeepSegments closed segments the oldest is deleted, after
// AUDIT_SEGMENT_DELETED names the records it held (a Span), so a verifier
// knows the firmware removed them: a gap that no trusted record explains is
// tampering (*GapError).
//
// With Opts.Anchor (the TPM's NV, drivers/tpm) the seq and hash of the
// last record are written to the TPM after records are appended, batched
// (AnchorBurst writes at once, then one per AnchorRefill; Close anchors the
// last record). Open then reads the anchor, finds that record reading back
// from the end of the log, checks its hash and verifies only the records
// from it to the end: the boot's cost no longer grows with the log. Records
// cut off the end, or a record edited and the chain recomputed after it,
// no longer match the anchor (*AnchorError). Records after the anchored
// one (a power cut before the anchor write) are named in
// AUDIT_RECORDS_UNANCHORED. CheckAll verifies the rest, every segment, in
// the background.
//
// With Opts.Signer (the device identity key) the log writes
// AUDIT_CHECKPOINT records, signed statements that record seq has hash h
// (internal/proto/auditcheckpoint), at every open, after every rotation and
// every CheckpointEvery records. VerifyExport checks them with the identity
// public key from the enrollment record: an export whose records up to a
// checkpoint were rewritten fails without the device's TPM.
//
// docs/architecture.md, "Audit log tamper evidence", has the threat model.
//
// # Power cuts and tampering
//
// A torn last line (no trailing newline, or a last line holding NUL
// bytes) is what a power cut leaves behind: Open cuts it off, keeps the
// chain and appends AUDIT_TORN_TAIL_REPAIRED with the number and hash of
// the removed bytes. Any other bad line, a gap, or a log that does not
// match its anchor is tampering (or media failure): Open returns an error
// wrapping ErrTampered.
//
// A patient monitor must keep working with a damaged audit log, and must
// not hide the damage. The caller (the firmware's boot) then calls Recover,
// which moves the damaged segments aside as
// security_audit_log.tampered-N.jsonl (kept for investigation, never
// deleted by the firmware) and starts a new segment whose first record,
// AUDIT_TAMPER_DETECTED, says what was found and continues the chain from
// the last record that verified, or the anchored one when the log lost it.
// The console's status says so ("audit log: TAMPERED: ...").
//
// # Limits
//
// Without an anchor (a host without a TPM) the chain proves the order and
// integrity of the lines present, not that lines were not cut off the end
// or the whole file replaced by a newly made chain. With one, whoever can
// write the TPM's NV index (code running on the device, with the owner
// authorization) can move the anchor too: see the threat model.
package audit
