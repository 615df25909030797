package ident

import (
	"encoding/json"
	"errors"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// The rules as regular expressions: the test oracle (this package may not
// use regexp itself, it is linked into the firmware).
var (
	nameRE    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$`)
	versionRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+-]{0,31}$`)
)

func labelOracle(s string) bool {
	return len(s) <= MaxLabel && utf8.ValidString(s) && !strings.ContainsRune(s, utf8.RuneError) &&
		strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) < 0
}

func TestNames(t *testing.T) {
	for _, tc := range []struct {
		s       string
		id, ver bool // valid as device ID (and serial), as firmware version
		why     string
	}{
		{"ZM-001", true, true, ""},
		{"SN-2024-001234", true, true, ""},
		{"1.2.3", true, true, ""},
		{"v1.2.3-45-gabcdef0-dirty", true, true, ""},
		{"a", true, true, ""},
		{"0", true, true, ""},
		{"a_b.c-d", true, true, ""},
		{strings.Repeat("Z", 32), true, true, ""},
		{"1.2.3+build.5", false, true, `character 6: '+' not allowed`},
		{"", false, false, "empty"},
		{strings.Repeat("Z", 33), false, false, "33 bytes, limit 32"},
		{strings.Repeat("Z", 64), false, false, "64 bytes, limit 32"},
		{"-rf", false, false, "must start with a letter or a digit, not '-'"},
		{".", false, false, "must start with a letter or a digit"},
		{"..", false, false, "must start with a letter or a digit"},
		{"_x", false, false, "must start with a letter or a digit"},
		{"+1", false, false, "must start with a letter or a digit"},
		{"ZM 001", false, false, `character 3: ' ' not allowed`},
		{"ZM/001", false, false, `character 3: '/' not allowed`},
		{"ZM-00é", false, false, "character 6: byte 0xc3 not allowed"},
		{"ZM\x00", false, false, `character 3: '\x00' not allowed`},
		{"ZM,1", false, false, "not allowed"},
		{`ZM"1`, false, false, "not allowed"},
	} {
		for _, c := range []struct {
			what  string
			check func(string) error
			valid bool
		}{
			{"device ID", CheckDeviceID, tc.id},
			{"serial", CheckSerial, tc.id},
			{"firmware version", CheckFirmwareVersion, tc.ver},
		} {
			err := c.check(tc.s)
			if (err == nil) != c.valid {
				t.Errorf("%s %q: err = %v, want valid %v", c.what, tc.s, err, c.valid)
				continue
			}
			if err != nil && (!errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.why)) {
				t.Errorf("%s %q: err = %q, want ErrInvalid saying %q", c.what, tc.s, err, tc.why)
			}
		}
	}
}

func TestLabels(t *testing.T) {
	for _, tc := range []struct {
		s     string
		valid bool
		why   string
	}{
		{"", true, ""},
		{"ICU-MON-04", true, ""},
		{"ICU MON 04", true, ""},
		{"Zimmer 3 — Süd é\u0301", true, ""},
		{"病棟 3", true, ""},
		{strings.Repeat("L", 64), true, ""},
		{strings.Repeat("é", 32), true, ""}, // 64 bytes
		{strings.Repeat("L", 65), false, "65 bytes, limit 64"},
		{strings.Repeat("é", 33), false, "66 bytes, limit 64"},
		{"ICU\nMON", false, "byte 4: U+000A is not printable"},
		{"a\x1b[2Jb", false, "byte 2: U+001B is not printable"},
		{"a\x7f", false, "U+007F is not printable"},
		{"a\u0085", false, "U+0085 is not printable"},  // C1 control (NEL)
		{"a\u00a0b", false, "U+00A0 is not printable"}, // no-break space
		{"a\u202eb", false, "U+202E is not printable"}, // right-to-left override
		{"ICU\xff", false, "byte 4 is not UTF-8"},
		{"\xc3", false, "byte 1 is not UTF-8"},
		{"a\ufffd", false, "byte 2: U+FFFD"},
	} {
		err := CheckLabel(tc.s)
		if (err == nil) != tc.valid {
			t.Errorf("label %q: err = %v, want valid %v", tc.s, err, tc.valid)
			continue
		}
		if err != nil && (!errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.why)) {
			t.Errorf("label %q: err = %q, want ErrInvalid saying %q", tc.s, err, tc.why)
		}
	}
}

// TestLimitsMatchTheRules ties the exported limits to the oracle.
func TestLimitsMatchTheRules(t *testing.T) {
	for _, c := range []struct {
		max   int
		check func(string) error
	}{{MaxDeviceID, CheckDeviceID}, {MaxSerial, CheckSerial}, {MaxFirmwareVersion, CheckFirmwareVersion}} {
		if c.check(strings.Repeat("a", c.max)) != nil || c.check(strings.Repeat("a", c.max+1)) == nil {
			t.Errorf("limit %d is not what the check enforces", c.max)
		}
	}
	if CheckLabel(strings.Repeat("a", MaxLabel)) != nil || CheckLabel(strings.Repeat("a", MaxLabel+1)) == nil {
		t.Errorf("label limit %d is not what CheckLabel enforces", MaxLabel)
	}
}

func FuzzRules(f *testing.F) {
	for _, s := range []string{"ZM-001", "SN-2024-001234", "1.2.3+b", "", "-x", "ICU MON", "a\xff", "a\ufffd", "\u0085", strings.Repeat("z", 33)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id := CheckDeviceID(s) == nil
		if id != nameRE.MatchString(s) || (CheckSerial(s) == nil) != id {
			t.Fatalf("%q: device ID/serial valid %v, oracle %v", s, id, nameRE.MatchString(s))
		}
		if ver := CheckFirmwareVersion(s) == nil; ver != versionRE.MatchString(s) {
			t.Fatalf("%q: firmware version valid %v, oracle %v", s, ver, !ver)
		}
		label := CheckLabel(s) == nil
		if label != labelOracle(s) {
			t.Fatalf("%q: label valid %v, oracle %v", s, label, !label)
		}
		if id {
			// A name is carried as is: no escaping in JSON (so the QR's
			// size is the names' byte count) or in a URL path.
			if b, _ := json.Marshal(s); string(b) != `"`+s+`"` || url.PathEscape(s) != s {
				t.Fatalf("%q needs escaping: JSON %s, path %s", s, b, url.PathEscape(s))
			}
			if !label {
				t.Fatalf("device ID %q is not a valid label", s)
			}
		}
		if label {
			var back string
			if b, err := json.Marshal(s); err != nil || json.Unmarshal(b, &back) != nil || back != s {
				t.Fatalf("label %q does not survive JSON: %q", s, back)
			}
		}
	})
}
