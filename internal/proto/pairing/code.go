package pairing

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
)

// Letters is the pairing code's letter alphabet: A-Z without the look-alikes
// I (1), O (0), Q (0) and Z (2). A letter's value is its index here.
const Letters = "ABCDEFGHJKLMNPRSTUVWXY"

// Digits is the pairing code's digit alphabet; a digit's value is itself.
const Digits = "0123456789"

// CodeLen is the number of symbols in a pairing code (dashes not counted).
const CodeLen = 9

// checkModulus is the prime the check equation works in. It is one more than
// the number of letters, so the check value 22 has no letter; NewCode redraws
// the (1 in 23) codes that would need it.
const checkModulus = 23

// checkWeights are the weights of symbols 1..9 in the check equation
// sum(w[i]*v[i]) ≡ 0 (mod 23). They are distinct and non-zero mod 23.
var checkWeights = [CodeLen]int{2, 3, 4, 5, 6, 7, 8, 9, 1}

// isLetterPos reports whether symbol i (0-based) is a letter: AAA-999-AAA.
func isLetterPos(i int) bool { return i < 3 || i > 5 }

// Errors returned by ParseCode (wrapped, with the position where it helps).
var (
	ErrCodeLength    = errors.New("pairing code: wrong length")
	ErrCodeCharacter = errors.New("pairing code: bad character")
	ErrCodeLookAlike = errors.New("pairing code: look-alike character")
	ErrCodeCheck     = errors.New("pairing code: typo: check character does not match")
)

// Code is a pairing code in its display form "AAA-999-AAA". It is a secret
// while its session lasts: String redacts it so that it cannot end up in a
// log by accident; Display gives the text for the screen and the QR.
type Code string

// String implements fmt.Stringer with a redacted form.
func (c Code) String() string { return "***-***-***" }

// Display returns the code as the technician sees it, "AAA-999-AAA".
func (c Code) Display() string { return string(c) }

// GoString keeps %#v from printing the code either.
func (c Code) GoString() string { return `pairing.Code("***-***-***")` }

// Matches reports, in constant time, whether typed is this code. typed is
// normalized as ParseCode does (case, dashes and spaces do not matter); it
// need not be a valid code. Only the length of typed can leak through timing.
func (c Code) Matches(typed string) bool {
	a := compact(string(c))
	b := compact(typed)
	return subtle.ConstantTimeCompare(a, b) == 1
}

// compact upper-cases ASCII letters and drops dashes, spaces and tabs.
func compact(s string) []byte {
	out := make([]byte, 0, CodeLen)
	for i := 0; i < len(s); i++ {
		b := s[i]
		switch {
		case b == '-' || b == ' ' || b == '\t':
			continue
		case b >= 'a' && b <= 'z':
			b -= 'a' - 'A'
		}
		out = append(out, b)
	}
	return out
}

// NewCode draws a uniformly random pairing code from r (crypto/rand in
// production) and appends its check letter. Symbols are drawn by rejection
// sampling, so there is no modulo bias.
func NewCode(r io.Reader) (Code, error) {
	src := &byteSource{r: r}
	for try := 0; try < 64; try++ {
		var v [CodeLen]int
		for i := 0; i < CodeLen-1; i++ {
			n := len(Digits)
			if isLetterPos(i) {
				n = len(Letters)
			}
			x, err := src.uniform(n)
			if err != nil {
				return "", fmt.Errorf("pairing code: %w", err)
			}
			v[i] = x
		}
		c := checkValue(v[:CodeLen-1])
		if c >= len(Letters) {
			continue // no letter for this check value: draw again
		}
		v[CodeLen-1] = c
		return render(v), nil
	}
	return "", errors.New("pairing code: random source keeps producing codes without a check letter")
}

// checkValue returns c with sum(w[i]*v[i]) + c ≡ 0 (mod 23) over the first
// eight symbol values.
func checkValue(v []int) int {
	s := 0
	for i, x := range v {
		s += checkWeights[i] * x
	}
	return (checkModulus - s%checkModulus) % checkModulus
}

func render(v [CodeLen]int) Code {
	b := make([]byte, 0, CodeLen+2)
	for i, x := range v {
		if i == 3 || i == 6 {
			b = append(b, '-')
		}
		if isLetterPos(i) {
			b = append(b, Letters[x])
		} else {
			b = append(b, Digits[x])
		}
	}
	return Code(b)
}

// ParseCode normalizes what a technician typed (surrounding space, case,
// optional dashes or spaces between the groups) and checks it: nine symbols,
// letters and digits where they belong, no look-alike letters, and the check
// letter. Errors wrap ErrCodeLength, ErrCodeCharacter, ErrCodeLookAlike or
// ErrCodeCheck and name at most one character of the input, never the whole
// code.
func ParseCode(s string) (Code, error) {
	if len(s) > 64 {
		return "", fmt.Errorf("%w: %d bytes, want %d symbols like ABC-123-ABC", ErrCodeLength, len(s), CodeLen)
	}
	pos := 0
	for _, r := range s {
		switch {
		case r == '-' || r == ' ' || r == '\t':
			continue
		case r >= 0x80:
			return "", fmt.Errorf("%w: character %d: %q is not a letter or digit of a pairing code", ErrCodeCharacter, pos+1, r)
		}
		pos++
	}
	sym := compact(s)
	if len(sym) != CodeLen {
		return "", fmt.Errorf("%w: %d symbols, want %d like ABC-123-ABC", ErrCodeLength, len(sym), CodeLen)
	}
	var v [CodeLen]int
	for i, b := range sym {
		pos := i + 1
		if isLetterPos(i) {
			if j := indexByte(Letters, b); j >= 0 {
				v[i] = j
				continue
			}
			switch {
			case b == 'I' || b == 'O' || b == 'Q' || b == 'Z':
				return "", fmt.Errorf("%w: character %d: %c is never used (no I, O, Q or Z); check the screen", ErrCodeLookAlike, pos, b)
			case b >= '0' && b <= '9':
				return "", fmt.Errorf("%w: character %d must be a letter, not a digit", ErrCodeCharacter, pos)
			default:
				return "", fmt.Errorf("%w: character %d: %q is not a letter", ErrCodeCharacter, pos, rune(b))
			}
		}
		if b >= '0' && b <= '9' {
			v[i] = int(b - '0')
			continue
		}
		if hint, ok := digitLookAlike[b]; ok {
			if b == 'I' || b == 'O' || b == 'Q' || b == 'Z' {
				return "", fmt.Errorf("%w: character %d: %c is not used; did you mean %c?", ErrCodeLookAlike, pos, b, hint)
			}
			return "", fmt.Errorf("%w: character %d must be a digit; did you mean %c?", ErrCodeLookAlike, pos, hint)
		}
		if b >= 'A' && b <= 'Z' {
			return "", fmt.Errorf("%w: character %d must be a digit, not a letter", ErrCodeCharacter, pos)
		}
		return "", fmt.Errorf("%w: character %d: %q is not a digit", ErrCodeCharacter, pos, rune(b))
	}
	if checkValue(v[:CodeLen-1]) != v[CodeLen-1] {
		return "", ErrCodeCheck
	}
	return render(v), nil
}

// digitLookAlike maps letters typed where a digit belongs to the digit they
// resemble.
var digitLookAlike = map[byte]byte{'O': '0', 'Q': '0', 'D': '0', 'I': '1', 'L': '1', 'Z': '2', 'S': '5', 'B': '8', 'G': '6'}

func indexByte(s string, b byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == b {
			return i
		}
	}
	return -1
}

// byteSource hands out unbiased small random integers from a reader.
type byteSource struct {
	r    io.Reader
	buf  [32]byte
	n, i int
	read int
}

// maxRandomBytes bounds how much a broken reader (one that keeps producing
// rejected bytes) can make NewCode read.
const maxRandomBytes = 4096

// uniform returns a uniform value in [0, n) for n <= 256 by rejection
// sampling: bytes at or above the largest multiple of n are discarded.
func (s *byteSource) uniform(n int) (int, error) {
	limit := 256 - 256%n
	for {
		if s.i == s.n {
			if s.read >= maxRandomBytes {
				return 0, errors.New("random source: too many rejected bytes")
			}
			if _, err := io.ReadFull(s.r, s.buf[:]); err != nil {
				return 0, fmt.Errorf("random source: %w", err)
			}
			s.n, s.i = len(s.buf), 0
			s.read += len(s.buf)
		}
		b := int(s.buf[s.i])
		s.i++
		if b < limit {
			return b % n, nil
		}
	}
}
