// Package auditlog is the security audit log's format, as both ends read
// it: a record (Record, one canonical JSON line with the SHA-256 of the
// line before it), the rules that link records into a chain across the
// log's segments (Walker, Chain), the device identity key's signed
// checkpoints in it, and the verification of an exported log
// (VerifyExport).
//
// The firmware's log (internal/fw/audit) writes records with Seal and
// checks its files with Chain; the Central Station (`zm-central devices
// verify-audit`) verifies a log a device exported against the identity key
// of its enrollment record. Event names the firmware's log writes itself
// (EventCheckpoint, EventSegmentDeleted, ...) are here because the chain's
// rules depend on them.
package auditlog
