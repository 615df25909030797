package console

import (
	"regexp"
	"strings"
)

// redacted replaces a secret value.
const redacted = "[redacted]"

var (
	// secretName matches setting names that may hold secrets.
	secretName = regexp.MustCompile(`(?i)(key|secret|passw|token|private|pin|credential|code|seed|nonce)`)
	// blob matches values that look like encoded binary (base64, base64url
	// or hex) long enough to be key material.
	blob = regexp.MustCompile(`^[A-Za-z0-9+/=_-]{40,}$`)
	// pemPrivate matches a PEM private key block, or its start when the end
	// is missing.
	pemPrivate = regexp.MustCompile(`(?s)-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(-----END [A-Z0-9 ]*PRIVATE KEY-----|$)`)
)

// redactSetting returns the value to print for a setting: the value itself
// unless its name or its content looks secret.
func redactSetting(name, value string) string {
	switch {
	case value == "":
		return value
	case secretName.MatchString(name), blob.MatchString(strings.TrimSpace(value)), mentionsPrivateKey(value):
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
	s = pemPrivate.ReplaceAllString(s, redacted)
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
