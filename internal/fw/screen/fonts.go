package screen

import (
	"fmt"

	"github.com/golang/freetype/truetype"
	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/font/gofont/gobold"
	"golang.org/x/image/font/gofont/goregular"
	"golang.org/x/image/math/fixed"
)

// fontKind names one of the embedded Go fonts.
//
// Only Go Regular and Go Bold are compiled in (about 130 KB of TTF each);
// the monospaced Go fonts are not needed: the Go fonts' digits are tabular
// (every digit has the same advance, and the fonts have no kerning), so a
// countdown keeps its width from one tick to the next, and the pairing code
// is sized from its widest possible form (see codeTemplate), not from
// fixed-width letters. TestTabularDigits pins both facts.
type fontKind int

const (
	regular fontKind = iota
	bold
	fontKinds
)

func (k fontKind) String() string {
	switch k {
	case regular:
		return "Go Regular"
	case bold:
		return "Go Bold"
	}
	return fmt.Sprintf("font(%d)", int(k))
}

type faceKey struct {
	kind fontKind
	size int
}

// fonts holds the parsed fonts and the faces made from them, one per kind and
// pixel size. Faces are cached because making one is costly and a layout
// asks for the same sizes on every frame.
//
// The fonts are parsed and rasterized by github.com/golang/freetype/truetype,
// the font stack github.com/fogleman/gg links anyway, so the binary carries
// one TrueType implementation, not two.
type fonts struct {
	parsed [fontKinds]*truetype.Font
	faces  map[faceKey]*cachedFace
}

func newFonts() (*fonts, error) {
	ttfs := [fontKinds][]byte{regular: goregular.TTF, bold: gobold.TTF}
	f := &fonts{faces: make(map[faceKey]*cachedFace)}
	for k, b := range ttfs {
		p, err := truetype.Parse(b)
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", fontKind(k), err)
		}
		f.parsed[k] = p
	}
	return f, nil
}

// face returns the face of kind at size pixels (em size at 72 DPI).
func (f *fonts) face(kind fontKind, size int) *cachedFace {
	key := faceKey{kind, size}
	if c, ok := f.faces[key]; ok {
		return c
	}
	var fc font.Face = basicfont.Face7x13
	if kind >= 0 && kind < fontKinds {
		fc = truetype.NewFace(f.parsed[kind], &truetype.Options{
			Size:    float64(max(size, 1)),
			DPI:     72,
			Hinting: font.HintingFull,
			// cachedFace keeps its own copy of every mask, so the face's
			// mask cache (512 glyph-sized entries by default, megabytes
			// at large sizes) would only waste memory.
			GlyphCacheEntries: 1,
		})
	}
	c := newCachedFace(fc)
	c.size = size
	f.faces[key] = c
	return c
}

// emWidth is the unhinted advance width of s in ems of kind, from the
// font's metrics alone: no face is made and nothing is hinted, so it is a
// cheap estimate of what a face of any size measures (the Go fonts have no
// kerning). Runes the font lacks count as its missing glyph.
func (f *fonts) emWidth(kind fontKind, s string) float64 {
	if kind < 0 || kind >= fontKinds {
		return 0
	}
	p := f.parsed[kind]
	upem := fixed.Int26_6(p.FUnitsPerEm())
	var w fixed.Int26_6
	for _, r := range s {
		w += p.HMetric(upem, p.Index(r)).AdvanceWidth
	}
	return float64(w) / float64(upem)
}

// emCapHeight is the unhinted height of "H" in ems of kind.
func (f *fonts) emCapHeight(kind fontKind) float64 {
	if kind < 0 || kind >= fontKinds {
		return 0
	}
	p := f.parsed[kind]
	upem := fixed.Int26_6(p.FUnitsPerEm())
	var g truetype.GlyphBuf
	if err := g.Load(p, upem, p.Index('H'), font.HintingNone); err != nil {
		return 0
	}
	return float64(g.Bounds.Max.Y) / float64(upem)
}

// textWidth is the advance width of s in pixels, rounded up.
func textWidth(f font.Face, s string) int {
	return font.MeasureString(f, s).Ceil()
}

// lineMetrics returns the ascent and descent of f in whole pixels.
func lineMetrics(f font.Face) (ascent, descent int) {
	m := f.Metrics()
	return m.Ascent.Ceil(), m.Descent.Ceil()
}

// capHeight returns the height of capital letters in f in whole pixels: the
// font's cap height when the face reports one, else the ink height of "H"
// (truetype faces report only ascent and descent).
func capHeight(f font.Face) int {
	m := f.Metrics()
	if m.CapHeight > 0 {
		return m.CapHeight.Ceil()
	}
	if b, _, ok := f.GlyphBounds('H'); ok && b.Min.Y < 0 {
		return (-b.Min.Y).Ceil()
	}
	return (m.Ascent * 7 / 10).Ceil()
}

// inkBounds returns the pixel bounds of the ink of s drawn with its dot at
// (x, baseline).
func inkBounds(f font.Face, s string, x, baseline int) (r fixed.Rectangle26_6) {
	b, _ := font.BoundString(f, s)
	off := fixed.P(x, baseline)
	return fixed.Rectangle26_6{Min: b.Min.Add(off), Max: b.Max.Add(off)}
}
