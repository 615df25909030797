package auditlog

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Event is what a caller audits. Every field but Event is optional.
//
// Never put a secret in any field: no pairing code, token, nonce, key,
// certificate or payload. Reason is for a human: what happened and why.
type Event struct {
	// Event is the event name: upper case letters, digits and '_', e.g.
	// "BUTTON_PRESSED", "STATE_CHANGED", "STAGE_DISCARDED".
	Event string
	// From and To are state names, e.g. "READY_TO_PAIR".
	From, To string
	// Code is a failure code, e.g. "PAIRING_CODE_MISMATCH".
	Code string
	// Reason is short human text. See Sanitize.
	Reason string
	// Actor is who caused the event: "button", "console",
	// "central-station:<certificate CN>", "device".
	Actor string
}

// Field limits, enforced by Validate (the firmware's log refuses an event
// that breaks them).
const (
	MaxNameBytes   = 64   // Event, From, To, Code
	MaxActorBytes  = 256  // Actor
	MaxReasonBytes = 1024 // Reason
	// MaxSecretRun is the longest run of base64/base64url/hex characters
	// accepted in Reason or Actor: longer runs look like keys or tokens
	// (a pairing token is 102 characters, a P-256 key in base64 over 160;
	// a SHA-256 fingerprint in hex, 64, still passes).
	MaxSecretRun = 80
)

// Event names the firmware's log writes itself (callers may not).
const (
	// EventTornTailRepaired: a line cut short by a power cut was removed.
	EventTornTailRepaired = "AUDIT_TORN_TAIL_REPAIRED"
	// EventTamperDetected: the log was found damaged, truncated or
	// rewritten; the reason says what and where the records were kept.
	EventTamperDetected = "AUDIT_TAMPER_DETECTED"
	// EventSegmentStarted heads a new segment after a rotation.
	EventSegmentStarted = "AUDIT_SEGMENT_STARTED"
	// EventSegmentDeleted: the firmware deleted the oldest segment to
	// keep the log within its size (its span names the records).
	EventSegmentDeleted = "AUDIT_SEGMENT_DELETED"
	// EventCheckpoint carries the device identity key's signature of the
	// record before it.
	EventCheckpoint = "AUDIT_CHECKPOINT"
	// EventAnchorCreated: the TPM held no anchor for a log with records.
	EventAnchorCreated = "AUDIT_ANCHOR_CREATED"
	// EventAnchorFailed: the TPM anchor could not be read or written.
	EventAnchorFailed = "AUDIT_ANCHOR_FAILED"
	// EventRecordsUnanchored: records on the disk at open that the TPM
	// had not anchored (a power cut, or records added with the disk).
	EventRecordsUnanchored = "AUDIT_RECORDS_UNANCHORED"
	// EventDiskFull: a record did not fit on the disk; the log's reserve
	// was released so that it, and the records after it, are written.
	EventDiskFull = "AUDIT_DISK_FULL"
)

// ErrRefused is wrapped by the error Append returns for an event it will
// not write (bad name, over-long or secret-shaped text). The error never
// repeats the refused text.
var ErrRefused = errors.New("audit: event refused")

// Validate checks ev against the rules Append enforces.
func (ev Event) Validate() error {
	if ev.Event == "" {
		return fmt.Errorf("%w: empty event name", ErrRefused)
	}
	for _, f := range []struct{ name, v string }{{"event", ev.Event}, {"from", ev.From}, {"to", ev.To}, {"code", ev.Code}} {
		if err := checkName(f.v); err != nil {
			return fmt.Errorf("%w: %s: %v", ErrRefused, f.name, err)
		}
	}
	if err := checkText(ev.Actor, MaxActorBytes); err != nil {
		return fmt.Errorf("%w: %s actor: %v", ErrRefused, ev.Event, err)
	}
	if err := checkText(ev.Reason, MaxReasonBytes); err != nil {
		return fmt.Errorf("%w: %s reason: %v", ErrRefused, ev.Event, err)
	}
	return nil
}

// checkName accepts "" or upper case letters, digits, '_', '(' and ')'
// (the last two for the String() of unknown enum values, "CODE(17)").
func checkName(s string) error {
	if len(s) > MaxNameBytes {
		return fmt.Errorf("longer than %d bytes", MaxNameBytes)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '(' || c == ')') {
			return fmt.Errorf("byte %d is not A-Z, 0-9, '_', '(' or ')'", i)
		}
	}
	return nil
}

// checkText refuses text that is over-long, not UTF-8, has control
// characters, or looks like key material. It never quotes s.
func checkText(s string, max int) error {
	if len(s) > max {
		return fmt.Errorf("%d bytes, more than %d", len(s), max)
	}
	if !utf8.ValidString(s) {
		return errors.New("not valid UTF-8")
	}
	for i, r := range s {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return fmt.Errorf("control character at byte %d", i)
		}
	}
	if strings.Contains(s, "-----BEGIN") {
		return errors.New("holds a PEM block")
	}
	if start, n := longestSecretRun(s); n > MaxSecretRun {
		return fmt.Errorf("a run of %d base64/hex characters at byte %d looks like key material", n, start)
	}
	return nil
}

func isSecretChar(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' ||
		c == '+' || c == '/' || c == '=' || c == '_' || c == '-'
}

// longestSecretRun returns where the longest run of base64/base64url/hex
// characters starts and how long it is.
func longestSecretRun(s string) (start, n int) {
	run := 0
	for i := 0; i < len(s); i++ {
		if isSecretChar(s[i]) {
			run++
			if run > n {
				start, n = i-run+1, run
			}
			continue
		}
		run = 0
	}
	return start, n
}

// Sanitize makes text that is not under the caller's control (typically
// err.Error()) acceptable as a Reason: control characters become spaces,
// invalid UTF-8 becomes U+FFFD, PEM blocks and long base64/hex runs become
// "[redacted]", and the result is cut to MaxReasonBytes. It is a safety net,
// not a licence to pass secrets: a short secret (a pairing code) cannot be
// recognised.
func Sanitize(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return ' '
		}
		return r
	}, s)
	for {
		i := strings.Index(s, "-----BEGIN")
		if i < 0 {
			break
		}
		end := len(s)
		if j := strings.Index(s[i:], "-----END"); j >= 0 {
			end = i + j + len("-----END")
			// Swallow the rest of the END line's label ("RSA KEY-----").
			if k := strings.Index(s[end:], "-----"); k >= 0 {
				end += k + len("-----")
			}
		}
		s = s[:i] + "[redacted]" + s[end:]
	}
	for {
		start, n := longestSecretRun(s)
		if n <= MaxSecretRun {
			break
		}
		s = s[:start] + "[redacted]" + s[start+n:]
	}
	if len(s) > MaxReasonBytes {
		cut := MaxReasonBytes - len("...")
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "..."
	}
	return s
}
