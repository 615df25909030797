package pairing

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
)

// seeded is a deterministic random source for tests.
func seeded(seed uint64) io.Reader {
	var s [32]byte
	s[0] = byte(seed)
	s[1] = byte(seed >> 8)
	return rand.NewChaCha8(s)
}

func TestAlphabet(t *testing.T) {
	if len(Letters) != 22 {
		t.Fatalf("%d letters, want 22", len(Letters))
	}
	for _, b := range "IOQZ" {
		if strings.ContainsRune(Letters, b) {
			t.Errorf("look-alike %c in the alphabet", b)
		}
	}
	for i := 1; i < len(Letters); i++ {
		if Letters[i] <= Letters[i-1] {
			t.Errorf("alphabet not sorted or has duplicates at %d", i)
		}
	}
}

// The check equation detects every single substitution and every adjacent
// (and jump) transposition. Because it is linear, the change it sees depends
// only on the position(s) and the two values involved, so enumerating every
// position and every pair of values is exhaustive for all codes.
func TestCheckEquationExhaustive(t *testing.T) {
	size := func(i int) int {
		if isLetterPos(i) {
			return len(Letters)
		}
		return len(Digits)
	}
	for i := 0; i < CodeLen; i++ {
		for a := 0; a < size(i); a++ {
			for b := 0; b < size(i); b++ {
				if a != b && (checkWeights[i]*(a-b))%checkModulus == 0 {
					t.Errorf("substitution %d→%d at %d undetected", a, b, i+1)
				}
			}
		}
	}
	for gap := 1; gap <= 2; gap++ {
		for i := 0; i+gap < CodeLen; i++ {
			j := i + gap
			if isLetterPos(i) != isLetterPos(j) {
				continue // a letter in a digit's place: a format error
			}
			for a := 0; a < size(i); a++ {
				for b := 0; b < size(i); b++ {
					if a != b && ((checkWeights[i]-checkWeights[j])*(b-a))%checkModulus == 0 {
						t.Errorf("swap of %d and %d with values %d,%d undetected", i+1, j+1, a, b)
					}
				}
			}
		}
	}
}

// The same property through ParseCode on many real codes.
func TestParseCodeCatchesTypos(t *testing.T) {
	r := seeded(1)
	for n := 0; n < 300; n++ {
		c, err := NewCode(r)
		if err != nil {
			t.Fatal(err)
		}
		sym := []byte(strings.ReplaceAll(string(c), "-", ""))
		for i := range sym {
			alpha := Digits
			if isLetterPos(i) {
				alpha = Letters
			}
			for k := 0; k < len(alpha); k++ {
				if alpha[k] == sym[i] {
					continue
				}
				typo := bytes.Clone(sym)
				typo[i] = alpha[k]
				if _, err := ParseCode(string(typo)); !errors.Is(err, ErrCodeCheck) {
					t.Fatalf("substitution at %d: err = %v, want ErrCodeCheck", i+1, err)
				}
			}
		}
		for i := 0; i+1 < len(sym); i++ {
			if sym[i] == sym[i+1] {
				continue
			}
			typo := bytes.Clone(sym)
			typo[i], typo[i+1] = typo[i+1], typo[i]
			if _, err := ParseCode(string(typo)); err == nil {
				t.Fatalf("transposition at %d,%d accepted", i+1, i+2)
			}
		}
	}
}

func TestNewCodeParses(t *testing.T) {
	r := seeded(2)
	for n := 0; n < 2000; n++ {
		c, err := NewCode(r)
		if err != nil {
			t.Fatal(err)
		}
		if len(c) != 11 || c[3] != '-' || c[7] != '-' {
			t.Fatalf("code %q not in the form AAA-999-AAA", string(c))
		}
		p, err := ParseCode(string(c))
		if err != nil || p != c {
			t.Fatalf("ParseCode(%q) = %q, %v", string(c), string(p), err)
		}
	}
}

// Rejection sampling: bytes at or above 242 (letters) or 250 (digits) are
// skipped, not folded with a modulo.
func TestNewCodeRejectionSampling(t *testing.T) {
	// Find eight symbol bytes whose check value has a letter.
	in := []byte{
		241, 255, 242, // 241 → 241%22 = 21 (Y); 255 and 242 rejected
		0, 22, // A, A
		249, 250, 9, 5, // 249 → 9; 250 rejected; 9; 5
		3, 26, // D, 26%22=4 (E)
	}
	want := []int{21, 0, 0, 9, 9, 5, 3, 4}
	c := checkValue(want)
	if c >= len(Letters) {
		t.Fatal("test vector needs a different tail")
	}
	in = append(in, make([]byte, 64)...)
	got, err := NewCode(bytes.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	wantCode := fmt.Sprintf("YAA-995-DE%c", Letters[c])
	if string(got) != wantCode {
		t.Errorf("NewCode = %q, want %q", string(got), wantCode)
	}
}

func TestNewCodeRedrawsWithoutCheckLetter(t *testing.T) {
	// Search a prefix whose check value is 22 (no letter).
	var bad []int
	r := rand.New(rand.NewPCG(1, 2))
	for bad == nil {
		v := []int{r.IntN(22), r.IntN(22), r.IntN(22), r.IntN(10), r.IntN(10), r.IntN(10), r.IntN(22), r.IntN(22)}
		if checkValue(v) == 22 {
			bad = v
		}
	}
	good := []int{0, 0, 0, 0, 0, 0, 0, 0} // check value 0: A
	var in []byte
	for _, x := range append(bad, good...) {
		in = append(in, byte(x))
	}
	in = append(in, make([]byte, 64)...)
	c, err := NewCode(bytes.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if string(c) != "AAA-000-AAA" {
		t.Errorf("NewCode = %q, want the second draw AAA-000-AAA", string(c))
	}
}

func TestNewCodeBrokenReader(t *testing.T) {
	if _, err := NewCode(bytes.NewReader(bytes.Repeat([]byte{0xff}, 1<<16))); err == nil {
		t.Error("a reader of rejected bytes gave a code")
	}
	if _, err := NewCode(bytes.NewReader(nil)); !errors.Is(err, io.EOF) {
		t.Errorf("empty reader: err = %v, want EOF", err)
	}
}

func TestNewCodeUniform(t *testing.T) {
	// Rough check that the first letter and first digit are uniform.
	r := seeded(3)
	var letters [22]int
	var digits [10]int
	const n = 22000
	for i := 0; i < n; i++ {
		c, err := NewCode(r)
		if err != nil {
			t.Fatal(err)
		}
		letters[indexByte(Letters, c[0])]++
		digits[c[4]-'0']++
	}
	for i, k := range letters {
		if k < 800 || k > 1200 {
			t.Errorf("letter %c drawn %d times of %d", Letters[i], k, n)
		}
	}
	for i, k := range digits {
		if k < 1900 || k > 2500 {
			t.Errorf("digit %d drawn %d times of %d", i, k, n)
		}
	}
}

func validCode(t testing.TB) Code {
	c, err := NewCode(seeded(4))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestParseCodeNormalizes(t *testing.T) {
	c := validCode(t)
	s := string(c)
	lower := strings.ToLower(s)
	for _, in := range []string{
		s,
		lower,
		"  " + s + "\t",
		strings.ReplaceAll(s, "-", ""),
		strings.ReplaceAll(lower, "-", " "),
		s[:3] + " - " + s[4:],
	} {
		got, err := ParseCode(in)
		if err != nil || got != c {
			t.Errorf("ParseCode(%q) = %q, %v", in, string(got), err)
		}
	}
}

func TestParseCodeErrors(t *testing.T) {
	c := validCode(t)
	sym := strings.ReplaceAll(string(c), "-", "")
	with := func(i int, b byte) string { return sym[:i] + string(b) + sym[i+1:] }
	var wrongCheck string
	for k := 0; k < len(Letters); k++ {
		if Letters[k] != sym[8] {
			wrongCheck = with(8, Letters[k])
			break
		}
	}
	tests := []struct {
		name, in string
		want     error
		text     string
	}{
		{"empty", "", ErrCodeLength, "0 symbols"},
		{"short", sym[:8], ErrCodeLength, "8 symbols"},
		{"long", sym + "A", ErrCodeLength, "10 symbols"},
		{"huge", strings.Repeat("A", 1000), ErrCodeLength, "1000 bytes"},
		{"digit for letter", with(1, '7'), ErrCodeCharacter, "character 2 must be a letter"},
		{"letter for digit", with(4, 'K'), ErrCodeCharacter, "character 5 must be a digit"},
		{"O for 0", with(3, 'O'), ErrCodeLookAlike, "O is not used; did you mean 0?"},
		{"lower o for 0", with(3, 'o'), ErrCodeLookAlike, "did you mean 0?"},
		{"I for 1", with(5, 'I'), ErrCodeLookAlike, "did you mean 1?"},
		{"Z for 2", with(4, 'Z'), ErrCodeLookAlike, "did you mean 2?"},
		{"S for 5", with(4, 'S'), ErrCodeLookAlike, "did you mean 5?"},
		{"O as letter", with(0, 'O'), ErrCodeLookAlike, "character 1: O is never used"},
		{"Q as letter", with(7, 'Q'), ErrCodeLookAlike, "character 8: Q is never used"},
		{"punctuation", with(2, '#'), ErrCodeCharacter, `character 3: '#'`},
		{"non-ASCII", sym[:8] + "é", ErrCodeCharacter, "character 9: 'é'"},
		{"non-ASCII letter", "É" + sym[1:], ErrCodeCharacter, "character 1: 'É'"},
		{"invalid UTF-8", sym[:4] + "\xff" + sym[5:], ErrCodeCharacter, "character 5"},
		{"check", wrongCheck, ErrCodeCheck, "typo"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseCode(tc.in)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.text) {
				t.Errorf("err = %q, want it to mention %q", err, tc.text)
			}
			if len(tc.in) >= 6 && strings.Contains(err.Error(), tc.in[:6]) {
				t.Errorf("error %q echoes the typed code", err)
			}
		})
	}
}

func TestCodeMatches(t *testing.T) {
	c := validCode(t)
	s := string(c)
	for _, in := range []string{s, strings.ToLower(s), strings.ReplaceAll(s, "-", ""), strings.ReplaceAll(s, "-", " ")} {
		if !c.Matches(in) {
			t.Errorf("Matches(%q) = false", in)
		}
	}
	other, err := NewCode(seeded(5))
	if err != nil || other == c {
		t.Fatalf("second code: %v", err)
	}
	for _, in := range []string{string(other), "", s[:10], s + "A", " "} {
		if c.Matches(in) {
			t.Errorf("Matches(%q) = true", in)
		}
	}
}

func TestCodeRedacted(t *testing.T) {
	c := validCode(t)
	for _, f := range []string{"%v", "%s", "%#v", "%+v"} {
		if out := fmt.Sprintf(f, c); strings.Contains(out, string(c)) {
			t.Errorf("%s prints the code: %s", f, out)
		}
	}
	if c.Display() != string(c) {
		t.Error("Display is not the code")
	}
}

func FuzzParseCode(f *testing.F) {
	for _, s := range []string{"", "ABC-123-ABC", "abc123abc", "AAA-000-AAA", "OOO-OOO-OOO", "é", strings.Repeat("-", 100), "A B C 1 2 3 X Y A"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseCode(s)
		if err != nil {
			if c != "" {
				t.Fatalf("error with a code")
			}
			return
		}
		// Round trip: the display form parses to itself and matches s.
		again, err := ParseCode(string(c))
		if err != nil || again != c {
			t.Fatalf("display form %q does not round trip: %v", string(c), err)
		}
		if !c.Matches(s) {
			t.Fatalf("parsed code does not match its input %q", s)
		}
	})
}
