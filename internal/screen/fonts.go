package screen

import (
	"fmt"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/font/gofont/gobold"
	"golang.org/x/image/font/gofont/gomono"
	"golang.org/x/image/font/gofont/gomonobold"
	"golang.org/x/image/font/gofont/goregular"
	"golang.org/x/image/font/opentype"
	"golang.org/x/image/font/sfnt"
	"golang.org/x/image/math/fixed"
)

// fontKind names one of the embedded Go fonts.
type fontKind int

const (
	regular fontKind = iota
	bold
	mono
	monoBold
	fontKinds
)

func (k fontKind) String() string {
	switch k {
	case regular:
		return "Go Regular"
	case bold:
		return "Go Bold"
	case mono:
		return "Go Mono"
	case monoBold:
		return "Go Mono Bold"
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
type fonts struct {
	parsed [fontKinds]*sfnt.Font
	faces  map[faceKey]*cachedFace
}

func newFonts() (*fonts, error) {
	ttfs := [fontKinds][]byte{regular: goregular.TTF, bold: gobold.TTF, mono: gomono.TTF, monoBold: gomonobold.TTF}
	f := &fonts{faces: make(map[faceKey]*cachedFace)}
	for k, b := range ttfs {
		p, err := opentype.Parse(b)
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
		// NewFace fails only for a non-positive size or DPI; sizes come from
		// the layout code, which never asks below minFontSize.
		if of, err := opentype.NewFace(f.parsed[kind], &opentype.FaceOptions{Size: float64(max(size, 1)), DPI: 72, Hinting: font.HintingFull}); err == nil {
			fc = of
		}
	}
	c := newCachedFace(fc)
	f.faces[key] = c
	return c
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

// capHeight returns the height of capital letters in f in whole pixels.
func capHeight(f font.Face) int {
	m := f.Metrics()
	if m.CapHeight > 0 {
		return m.CapHeight.Ceil()
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
