// Package auditcheckpoint is the signed checkpoint of a device's
// security_audit_log, as both ends see it: the device's TPM signs, with the
// device identity key, that record seq of its audit chain has hash h; the
// Central Station (or anyone with the device's enrollment record) verifies
// it offline with the identity public key from that record.
//
// A checkpoint proves that the records up to seq, as the hash chain links
// them, are the ones the device wrote: someone who edits an earlier record
// and recomputes the chain after it changes h, and cannot sign the new h
// without the device's TPM. The device writes one into its log at every
// boot, after each rotation of the log and every 1,000 records
// (internal/fw/audit); the console's `status` prints the latest in the
// JSON form below ("audit log: checkpoint {...}").
//
// # The signed message
//
// The identity key signs (ECDSA P-256, SHA-256) the digest
//
//	SHA-256( len‖"zmonitor-audit-checkpoint-v1" ‖ len‖deviceId ‖ seq(8, big endian) ‖ hash(32) )
//
// where len is a two-byte big-endian length. The label keeps the signature
// from ever being taken for a pairing token's (whose label differs) or a
// TLS handshake's. The signature travels as the 64-byte r‖s in lower-case
// hex (128 characters), as in the audit log's "sig" member.
//
// # JSON form
//
//	{"deviceId":"ZM-001","seq":1234,"hash":"<64 hex>","signature":"<128 hex>"}
package auditcheckpoint
