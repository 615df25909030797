package identity

import (
	"regexp"
	"strings"
	"testing"
)

// idPattern is the regular expression validID replaces.
var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$`)

func TestValidIDMatchesPattern(t *testing.T) {
	for _, s := range []string{
		"", "Z", "ZM-001", "SN-1", "a.b_c-d", "0", "-a", ".a", "_a", "a-", "a b", "bad id!", "a\n", "\na",
		"é", "aé", "a\x00", strings.Repeat("a", 32), strings.Repeat("a", 33), "A" + strings.Repeat("-", 31),
	} {
		if got, want := validID(s), idPattern.MatchString(s); got != want {
			t.Errorf("validID(%q) = %v, the pattern says %v", s, got, want)
		}
	}
}

func FuzzValidIDMatchesPattern(f *testing.F) {
	for _, s := range []string{"ZM-001", "-a", strings.Repeat("a", 33), "a\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := validID(s), idPattern.MatchString(s); got != want {
			t.Errorf("validID(%q) = %v, the pattern says %v", s, got, want)
		}
	})
}
