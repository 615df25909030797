package store

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// ErrInvalidText: a string handed to the store holds a NUL or is not
// valid UTF-8. PostgreSQL refuses both in TEXT columns while SQLite keeps
// them, so the store checks every string before either backend sees it:
// both backends answer the same, and never with a driver error.
var ErrInvalidText = errors.New("text with a NUL or invalid UTF-8")

// storableText reports whether s can be stored in a TEXT column of both
// backends.
func storableText(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsRune(s, 0)
}

// checkArgs refuses a query whose string arguments are not storable.
func checkArgs(args []any) error {
	for i, a := range args {
		if s, ok := a.(string); ok && !storableText(s) {
			return fmt.Errorf("argument %d: %w", i+1, ErrInvalidText)
		}
	}
	return nil
}

// cleanText makes free text (an explanation, an audit detail) storable:
// invalid UTF-8 and NULs become U+FFFD, so a record about bad input is
// still written.
func cleanText(s string) string {
	if storableText(s) {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}

// lookupKey checks a key before a lookup: a key that cannot be stored names
// nothing (ErrNotFound), on both backends.
func lookupKey(what, key string) error {
	if !storableText(key) {
		return fmt.Errorf("%s %q: %w (%w)", what, key, ErrNotFound, ErrInvalidText)
	}
	return nil
}
