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
// # Power cuts and tampering
//
// Open verifies the whole chain. A torn last line (no trailing newline, or
// a last line holding NUL bytes) is what a power cut leaves behind: Open
// cuts it off, keeps the chain and appends AUDIT_TORN_TAIL_REPAIRED with
// the number and hash of the removed bytes. Any other bad line is
// tampering (or media failure): Open returns an error wrapping ErrTampered
// and naming the first bad line.
//
// A patient monitor must keep working with a damaged audit log, and must
// not hide the damage. The caller (the firmware's main) then calls Recover,
// which moves the damaged file aside as security_audit_log.tampered-N.jsonl
// (kept for investigation, never deleted by the firmware) and starts a new
// segment whose first record, AUDIT_TAMPER_DETECTED, names the first bad
// line and continues the chain from the last record that verified (its seq
// and prev follow that record). The screen and the console should then say
// that the audit log was damaged, and the Central Station sees it in the
// next export.
//
// # Limits
//
// The chain proves order and integrity of the lines present. It cannot
// prove that lines were not cut off the end, or that the whole file was not
// replaced by a newly made chain: for that a verifier must compare against
// a (seq, hash) it saw earlier, e.g. the Central Station remembering the
// last hash of each export (Verify returns it).
package audit
