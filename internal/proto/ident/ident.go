package ident

import (
	"errors"
	"fmt"
	"strconv"
	"unicode"
	"unicode/utf8"
)

// Limits, in bytes.
const (
	MaxDeviceID        = 32
	MaxSerial          = 32
	MaxFirmwareVersion = 32
	MaxLabel           = 64
)

// ErrInvalid matches (errors.Is) every error of this package. The errors'
// text says only what is wrong ("33 bytes, limit 32"): callers prefix the
// field ("deviceId: ").
var ErrInvalid = errors.New("invalid identifier")

// invalid is an error of this package.
type invalid struct{ msg string }

func (e *invalid) Error() string        { return e.msg }
func (e *invalid) Is(target error) bool { return target == ErrInvalid }

func errorf(format string, a ...any) error { return &invalid{fmt.Sprintf(format, a...)} }

// CheckDeviceID checks a device ID ("ZM-001").
func CheckDeviceID(s string) error { return checkName(s, MaxDeviceID, false) }

// CheckSerial checks a device serial ("SN-2024-001234").
func CheckSerial(s string) error { return checkName(s, MaxSerial, false) }

// CheckFirmwareVersion checks a firmware version ("1.2.3",
// "v1.2.3-4-gabcdef0-dirty", "1.2.3+build.5").
func CheckFirmwareVersion(s string) error { return checkName(s, MaxFirmwareVersion, true) }

// checkName is the rule of device IDs, serials and (with plus) firmware
// versions: 1 to max bytes of A-Z a-z 0-9 . _ - (and +), the first a letter
// or a digit. An error names the first bad byte and its position, never
// more of s.
func checkName(s string, max int, plus bool) error {
	if s == "" {
		return errorf("empty")
	}
	if len(s) > max {
		return errorf("%d bytes, limit %d", len(s), max)
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		switch {
		case b >= 'A' && b <= 'Z', b >= 'a' && b <= 'z', b >= '0' && b <= '9':
		case i == 0:
			return errorf("must start with a letter or a digit, not %s", quoteByte(b))
		case b == '.', b == '_', b == '-':
		case b == '+' && plus:
		case plus:
			return errorf("character %d: %s not allowed (only A-Z a-z 0-9 . _ - +)", i+1, quoteByte(b))
		default:
			return errorf("character %d: %s not allowed (only A-Z a-z 0-9 . _ -)", i+1, quoteByte(b))
		}
	}
	return nil
}

// quoteByte shows one byte of a name: quoted when ASCII, in hex otherwise
// (a lone byte of a UTF-8 sequence is not a character).
func quoteByte(b byte) string {
	if b < utf8.RuneSelf {
		return strconv.QuoteRune(rune(b))
	}
	return fmt.Sprintf("byte 0x%02x", b)
}

// CheckLabel checks a device label ("ICU-MON-04"): 0 to MaxLabel bytes of
// valid UTF-8, every character printable (unicode.IsPrint) and none U+FFFD.
func CheckLabel(s string) error {
	if len(s) > MaxLabel {
		return errorf("%d bytes, limit %d", len(s), MaxLabel)
	}
	for i, r := range s {
		switch {
		case r == utf8.RuneError:
			if _, n := utf8.DecodeRuneInString(s[i:]); n == 1 {
				return errorf("byte %d is not UTF-8", i+1)
			}
			return errorf("byte %d: U+FFFD stands for a character lost in transcoding", i+1)
		case !unicode.IsPrint(r):
			return errorf("byte %d: %U is not printable", i+1, r)
		}
	}
	return nil
}
