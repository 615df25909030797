package screen

import (
	"image"
	"image/draw"

	"golang.org/x/image/font"
	"golang.org/x/image/math/fixed"
)

// cachedFace is a font.Face that keeps every glyph mask it has rasterized
// and every glyph's bounds and advance it has measured. The truetype face
// loads and hints the glyph's outline again on every Glyph, GlyphAdvance and
// GlyphBounds call, and returns masks in a buffer it reuses; a screen draws
// and measures the same few dozen glyphs again and again, so keeping private
// copies makes text cheap. Masks are keyed by the rune and the sub-pixel
// part of the dot, so the result is pixel-identical to the uncached face.
type cachedFace struct {
	font.Face
	size    int // pixels (em size at 72 DPI), as fonts.face made it
	glyphs  map[glyphKey]glyph
	metrics map[rune]metrics
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

// metrics is one GlyphBounds answer: it holds the advance too, so one
// hinted load of the glyph serves both GlyphBounds and GlyphAdvance.
type metrics struct {
	bounds    fixed.Rectangle26_6
	advance   fixed.Int26_6
	ok, advOK bool
}

func newCachedFace(f font.Face) *cachedFace {
	return &cachedFace{Face: f, glyphs: make(map[glyphKey]glyph), metrics: make(map[rune]metrics)}
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

// metricsOf returns the cached bounds and advance of r. They come from
// rasterizing r at a whole-pixel dot (kept in the glyph cache, where drawing
// finds it: text is always drawn at whole pixels, as hinted advances are
// whole pixels), because the truetype face loads and hints the glyph for
// GlyphBounds just as for Glyph: one load then serves measuring and drawing.
// The bounds are therefore the pixel box of the glyph's ink, which is what
// every caller rounds them to anyway.
func (c *cachedFace) metricsOf(r rune) metrics {
	m, hit := c.metrics[r]
	if !hit {
		dr, _, _, adv, ok := c.Glyph(fixed.Point26_6{}, r)
		m = metrics{advance: adv, ok: ok && !dr.Empty(), advOK: ok}
		if m.ok {
			m.bounds = fixed.R(dr.Min.X, dr.Min.Y, dr.Max.X, dr.Max.Y)
		}
		if !ok {
			// A face may have no glyph image for a rune it still has an
			// advance for.
			m.advance, m.advOK = c.Face.GlyphAdvance(r)
		}
		c.metrics[r] = m
	}
	return m
}

// GlyphBounds implements font.Face.
func (c *cachedFace) GlyphBounds(r rune) (fixed.Rectangle26_6, fixed.Int26_6, bool) {
	m := c.metricsOf(r)
	return m.bounds, m.advance, m.ok
}

// GlyphAdvance implements font.Face. It answers from the same cache as
// GlyphBounds: the truetype face computes both from one load of the glyph.
func (c *cachedFace) GlyphAdvance(r rune) (fixed.Int26_6, bool) {
	m := c.metricsOf(r)
	return m.advance, m.advOK
}
