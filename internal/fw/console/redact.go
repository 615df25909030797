package console

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// The matchers below use no regexp: package regexp costs the firmware about
// 260 KB. redact_test.go checks each against the regular expression it
// stands for (given in its comment), on fixed cases and by fuzzing.

// redacted replaces a secret value.
const redacted = "[redacted]"

// secretWords are the parts of setting names that may hold secrets.
var secretWords = [...]string{"key", "secret", "pass", "psk", "token", "private", "pin", "credential", "code", "seed", "nonce"}

// isSecretName reports whether name contains one of secretWords, ignoring
// case as (?i) does: `(?i)(key|secret|pass|psk|token|private|pin|credential|code|seed|nonce)`.
func isSecretName(name string) bool {
	for i := 0; i < len(name); i++ {
		for _, w := range secretWords {
			if hasFoldPrefix(name[i:], w) {
				return true
			}
		}
	}
	return false
}

// hasFoldPrefix reports whether s starts with word (lowercase ASCII) under
// Unicode simple case folding, so "KEY", "Key" and "\u212Aey" (Kelvin sign)
// all start with "key", as in regexp's (?i).
func hasFoldPrefix(s, word string) bool {
	for j := 0; j < len(word); j++ {
		if s == "" {
			return false
		}
		r, n := utf8.DecodeRuneInString(s)
		if !foldsTo(r, rune(word[j])) {
			return false
		}
		s = s[n:]
	}
	return true
}

// foldsTo reports whether r and w are equal under simple case folding.
func foldsTo(r, w rune) bool {
	for f := r; ; {
		if f == w {
			return true
		}
		if f = unicode.SimpleFold(f); f == r {
			return false
		}
	}
}

// isBlob reports whether s looks like encoded binary (base64, base64url or
// hex) long enough to be key material: `^[A-Za-z0-9+/=_-]{40,}$`.
func isBlob(s string) bool {
	if len(s) < 40 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
			c == '+' || c == '/' || c == '=' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// redactSetting returns the value to print for a setting: the value itself
// unless its name or its content looks secret.
func redactSetting(name, value string) string {
	switch {
	case value == "":
		return value
	case isSecretName(name), isBlob(strings.TrimSpace(value)), mentionsPrivateKey(value):
		return redacted
	}
	return value
}

func mentionsPrivateKey(s string) bool {
	l := strings.ToLower(s)
	return strings.Contains(l, "private key") || strings.Contains(l, "privatekey") ||
		strings.Contains(l, "private_key") || strings.Contains(l, "-----begin")
}

// scrub is the last filter on everything the console prints: it blanks PEM
// private key blocks and any line that mentions a private key.
func scrub(s string) string {
	s = blankPEMPrivateKeys(s)
	if !mentionsPrivateKey(s) {
		return s
	}
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if mentionsPrivateKey(l) {
			lines[i] = redacted
		}
	}
	return strings.Join(lines, "\n")
}

// blankPEMPrivateKeys replaces each PEM private key block, or its start to
// the end of s when the end line is missing, with redacted. It is
// `(?s)-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(-----END [A-Z0-9 ]*PRIVATE KEY-----|$)`
// with ReplaceAllString.
func blankPEMPrivateKeys(s string) string {
	var b strings.Builder
	done := 0 // s[:done] is settled (copied or replaced)
	for from := 0; ; {
		start, bodyStart := findPEMLine(s, from, "-----BEGIN ")
		if start < 0 {
			break
		}
		end := len(s)
		if endStart, endEnd := findPEMLine(s, bodyStart, "-----END "); endStart >= 0 {
			end = endEnd
		}
		b.WriteString(s[done:start])
		b.WriteString(redacted)
		done, from = end, end
		if end == len(s) {
			break
		}
	}
	if done == 0 {
		return s
	}
	b.WriteString(s[done:])
	return b.String()
}

// findPEMLine finds, from s[from:], the first prefix+`[A-Z0-9 ]*PRIVATE KEY-----`
// and returns where it starts and ends, or -1, -1.
func findPEMLine(s string, from int, prefix string) (start, end int) {
	const label, dashes = "PRIVATE KEY", "-----"
	for from <= len(s) {
		i := strings.Index(s[from:], prefix)
		if i < 0 {
			return -1, -1
		}
		start = from + i
		// The label run: every byte of it is in [A-Z0-9 ], and it must end
		// with "PRIVATE KEY" followed by the dashes ('-' ends the run, so no
		// shorter run can match).
		j := start + len(prefix)
		for j < len(s) && ('A' <= s[j] && s[j] <= 'Z' || '0' <= s[j] && s[j] <= '9' || s[j] == ' ') {
			j++
		}
		if strings.HasSuffix(s[start+len(prefix):j], label) && strings.HasPrefix(s[j:], dashes) {
			return start, j + len(dashes)
		}
		from = start + 1
	}
	return -1, -1
}
