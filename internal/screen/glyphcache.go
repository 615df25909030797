package screen

import (
	"image"
	"image/draw"

	"golang.org/x/image/font"
	"golang.org/x/image/math/fixed"
)

// cachedFace is a font.Face that keeps every glyph mask it has rasterized.
// The opentype face rasterizes a glyph on every call and reuses one buffer
// for the result; a screen draws the same few dozen glyphs again and again,
// so keeping a private copy makes text cheap. Masks are keyed by the rune
// and the sub-pixel part of the dot, so the result is pixel-identical to the
// uncached face.
type cachedFace struct {
	font.Face
	glyphs map[glyphKey]glyph
}

type glyphKey struct {
	r      rune
	fx, fy fixed.Int26_6 // sub-pixel offset of the dot
}

type glyph struct {
	dr      image.Rectangle // relative to the dot's whole-pixel position
	mask    *image.Alpha
	advance fixed.Int26_6
	ok      bool
}

func newCachedFace(f font.Face) *cachedFace {
	return &cachedFace{Face: f, glyphs: make(map[glyphKey]glyph)}
}

// Glyph implements font.Face.
func (c *cachedFace) Glyph(dot fixed.Point26_6, r rune) (image.Rectangle, image.Image, image.Point, fixed.Int26_6, bool) {
	whole := image.Pt(dot.X.Floor(), dot.Y.Floor())
	key := glyphKey{r, dot.X & 63, dot.Y & 63}
	g, hit := c.glyphs[key]
	if !hit {
		dr, mask, mp, adv, ok := c.Face.Glyph(dot, r)
		g = glyph{dr: dr.Sub(whole), advance: adv, ok: ok, mask: image.NewAlpha(image.Rect(0, 0, dr.Dx(), dr.Dy()))}
		if ok && mask != nil {
			draw.Draw(g.mask, g.mask.Bounds(), mask, mp, draw.Src)
		}
		c.glyphs[key] = g
	}
	return g.dr.Add(whole), g.mask, image.Point{}, g.advance, g.ok
}
