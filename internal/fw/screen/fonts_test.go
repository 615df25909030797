package screen

import (
	"fmt"
	"image"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/zmonitor/firmware/internal/proto/pairing"
	"github.com/zmonitor/firmware/internal/proto/state"
)

// TestTabularDigits pins what lets the countdown and the pairing code do
// without a monospaced font: in Go Regular and Go Bold, at every size the
// layouts can ask for, all digits have the same advance, no pair of the
// runes a code or countdown is made of is kerned, and widestLetter and
// widestDigit are at least as wide as any letter and digit of a code.
func TestTabularDigits(t *testing.T) {
	fs, err := newFonts()
	if err != nil {
		t.Fatal(err)
	}
	runes := pairing.Letters + pairing.Digits + "-:"
	for _, kind := range []fontKind{regular, bold} {
		for size := minFontSize; size <= 2*maxStripFont; size++ {
			fc := fs.face(kind, size)
			adv := func(r rune) int {
				a, ok := fc.GlyphAdvance(r)
				if !ok {
					t.Fatalf("%s %d px: no glyph for %q", kind, size, r)
				}
				return int(a)
			}
			digit := adv('0')
			for _, r := range pairing.Digits {
				if a := adv(r); a != digit {
					t.Errorf("%s %d px: %q advance %d, %q advance %d: digits not tabular", kind, size, r, a, '0', digit)
				}
			}
			for _, r := range pairing.Letters {
				if adv(r) > adv(widestLetter) {
					t.Errorf("%s %d px: %q wider than widestLetter %q", kind, size, r, widestLetter)
				}
			}
			if adv(widestDigit) != digit {
				t.Errorf("%s %d px: widestDigit %q is not a digit's width", kind, size, widestDigit)
			}
			for _, a := range runes {
				for _, b := range runes {
					if k := fc.Kern(a, b); k != 0 {
						t.Errorf("%s %d px: %q%q kerned by %v", kind, size, a, b, k)
					}
				}
			}
		}
	}
}

// TestCountdownKeepsItsPlace: every countdown with a one-digit minute (what
// a pairing session and a lockout show after the first second) is exactly
// as wide as any other, so a tick redraws the same glyph positions; and the
// widest text of all fits the reserved rectangle.
func TestCountdownKeepsItsPlace(t *testing.T) {
	r := newRenderer(t)
	locked := SampleView(state.Unprovisioned)
	locked.Locked = 5 * time.Minute
	for _, v := range []View{SampleView(state.ReadyToPair), locked} {
		for _, sz := range append(sizes, image.Pt(240, 320), image.Pt(800, 480)) {
			f, err := r.Render(v, sz.X, sz.Y)
			if err != nil {
				t.Fatal(err)
			}
			want := textWidth(f.timerFace, "0:00")
			for s := 1; s < 600; s++ {
				txt := FormatCountdown(time.Duration(s) * time.Second)
				if w := textWidth(f.timerFace, txt); w != want {
					t.Fatalf("%s %v: %q is %d px wide, %q %d px: the countdown would move", v.State, sz, txt, w, "0:00", want)
				}
			}
			if w := textWidth(f.timerFace, "10:00"); w > f.Timer.Dx() {
				t.Errorf("%s %v: 10:00 is %d px, timer rectangle %v", v.State, sz, w, f.Timer)
			}
		}
	}
}

// TestCodeLayoutIndependentOfLetters: the pairing screen is laid out for the
// widest code of the code's shape, so a narrow code and a wide one give the
// same line boxes' rows, the same text sizes and the same countdown
// rectangle; only the code's letters differ.
func TestCodeLayoutIndependentOfLetters(t *testing.T) {
	r := newRenderer(t)
	rows := func(f *Frame) string {
		var b strings.Builder
		fmt.Fprint(&b, f.Timer)
		for _, tb := range f.Texts {
			fmt.Fprintf(&b, " %d-%d", tb.Line.Min.Y, tb.Line.Max.Y)
		}
		return b.String()
	}
	for _, sz := range append(sizes, image.Pt(240, 320), image.Pt(800, 480)) {
		var first string
		for _, code := range []string{"TVL-016-APJ", "WWW-888-MMM", "JJJ-111-LLL", "AAA-000-AAA"} {
			v := SampleView(state.ReadyToPair)
			v.PairingCode = code
			f, err := r.Render(v, sz.X, sz.Y)
			if err != nil {
				t.Fatal(err)
			}
			if f.Truncated {
				t.Errorf("%v %s: truncated", sz, code)
			}
			got := rows(f)
			if first == "" {
				first = got
				continue
			}
			if got != first {
				t.Errorf("%v: code %s laid out as\n  %s\nwant (as TVL-016-APJ)\n  %s", sz, code, got, first)
			}
		}
	}
}

// TestStripFaceIsLargest checks stripFace's estimate-and-adjust search
// against trying every size from the largest down.
func TestStripFaceIsLargest(t *testing.T) {
	r := newRenderer(t)
	for _, code := range []string{"TVL-016-APJ", "WWW-888-MMM", "JJJ-111-LLL"} {
		for _, capLimit := range []int{10, 17, 25, 44} {
			for width := 100; width <= 900; width += 9 {
				want, wantOK := r.fonts.face(bold, minFontSize), false
				for size := maxStripFont; size >= minFontSize; size-- {
					fc := r.fonts.face(bold, size)
					need := max(textWidth(fc, code), textWidth(fc, codeTemplate(code))) + stripGap(size) + textWidth(fc, timerTemplate)
					if capHeight(fc) <= capLimit && need <= width {
						want, wantOK = fc, true
						break
					}
				}
				got, ok := r.stripFace(code, width, capLimit)
				if got != want || ok != wantOK {
					t.Errorf("%s width %d cap %d: stripFace picked another size (ok %v) than trying all (ok %v)", code, width, capLimit, ok, wantOK)
				}
			}
		}
	}
}

// TestOneFontStack: the package links one TrueType implementation (the
// golang/freetype one fogleman/gg needs anyway) and only the two Go fonts it
// uses. Each of the others costs the firmware binary tens to hundreds of KB.
func TestOneFontStack(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to list the dependencies")
	}
	out, err := exec.Command(goTool, "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	deps := strings.Fields(string(out))
	has := map[string]bool{}
	for _, d := range deps {
		has[d] = true
		for _, bad := range []string{"golang.org/x/image/font/sfnt", "golang.org/x/image/font/opentype", "golang.org/x/text/encoding/charmap", "golang.org/x/image/font/gofont/gomono"} {
			if strings.HasPrefix(d, bad) {
				t.Errorf("internal/screen depends on %s", d)
			}
		}
		if strings.HasPrefix(d, "golang.org/x/image/font/gofont/") && d != "golang.org/x/image/font/gofont/goregular" && d != "golang.org/x/image/font/gofont/gobold" {
			t.Errorf("internal/screen embeds %s", d)
		}
	}
	if !has["github.com/golang/freetype/truetype"] {
		t.Error("internal/screen does not use github.com/golang/freetype/truetype")
	}
}
