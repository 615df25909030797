package audit

import "github.com/zmonitor/firmware/internal/proto/auditlog"

// Event is what a caller audits: the record format's (auditlog.Event, with
// its field rules and the names only the log writes). Every field but
// Event is optional.
//
// Never put a secret in any field: no pairing code, token, nonce, key,
// certificate or payload. Reason is for a human: what happened and why.
type Event = auditlog.Event

// Recorder records audit events. *Log implements it; every package that
// audits depends on this interface only.
type Recorder interface {
	Record(Event) error
}

// ErrTampered is wrapped by every verification failure
// (auditlog.ErrTampered).
var ErrTampered = auditlog.ErrTampered

// Sanitize makes s fit a record's Reason or Actor (auditlog.Sanitize).
func Sanitize(s string) string { return auditlog.Sanitize(s) }
