package screen

import (
	"image"
	"image/color"
	"math"

	"github.com/golang/freetype/raster"
	"golang.org/x/image/math/fixed"
)

// canvas paints antialiased discs, rings and round-capped polylines on a
// frame with github.com/golang/freetype/raster: the rasterizer the truetype
// fonts link anyway, so the binary needs no 2-D graphics library for the
// step dots and the tick. The rasterizer is made on first use: most screens
// draw no shapes.
type canvas struct {
	img *image.RGBA
	r   *raster.Rasterizer
	p   *raster.RGBAPainter
}

func newCanvas(img *image.RGBA) *canvas { return &canvas{img: img} }

// pt converts a point in pixels to 26.6 fixed point, relative to the frame.
func (c *canvas) pt(x, y float64) fixed.Point26_6 {
	x -= float64(c.img.Rect.Min.X)
	y -= float64(c.img.Rect.Min.Y)
	return fixed.Point26_6{X: fixed.Int26_6(math.Round(x * 64)), Y: fixed.Int26_6(math.Round(y * 64))}
}

// begin clears the rasterizer (making it the first time) for a new shape.
func (c *canvas) begin(nonZero bool) {
	if c.r == nil {
		c.r = raster.NewRasterizer(c.img.Rect.Dx(), c.img.Rect.Dy())
		c.p = raster.NewRGBAPainter(c.img)
	}
	c.r.Clear()
	c.r.UseNonZeroWinding = nonZero
}

func (c *canvas) paint(col color.Color) {
	c.p.SetColor(col)
	c.r.Rasterize(c.p)
}

// circle returns a circle of radius rad around (cx, cy) as four cubic
// Bézier arcs (the usual 0.5523 control distance; off by under 0.03 % of
// the radius).
func (c *canvas) circle(cx, cy, rad float64) raster.Path {
	const k = 0.5522847498
	var p raster.Path
	p.Start(c.pt(cx+rad, cy))
	p.Add3(c.pt(cx+rad, cy+k*rad), c.pt(cx+k*rad, cy+rad), c.pt(cx, cy+rad))
	p.Add3(c.pt(cx-k*rad, cy+rad), c.pt(cx-rad, cy+k*rad), c.pt(cx-rad, cy))
	p.Add3(c.pt(cx-rad, cy-k*rad), c.pt(cx-k*rad, cy-rad), c.pt(cx, cy-rad))
	p.Add3(c.pt(cx+k*rad, cy-rad), c.pt(cx+rad, cy-k*rad), c.pt(cx+rad, cy))
	return p
}

// disc fills the circle of radius rad around (cx, cy).
func (c *canvas) disc(cx, cy, rad float64, col color.Color) {
	if rad <= 0 {
		return
	}
	c.begin(true)
	c.r.AddPath(c.circle(cx, cy, rad))
	c.paint(col)
}

// ring strokes the circle of radius rad around (cx, cy) with a line width
// wide: the area between two circles, filled even-odd.
func (c *canvas) ring(cx, cy, rad, width float64, col color.Color) {
	outer, inner := rad+width/2, rad-width/2
	if outer <= 0 {
		return
	}
	c.begin(false)
	c.r.AddPath(c.circle(cx, cy, outer))
	if inner > 0 {
		c.r.AddPath(c.circle(cx, cy, inner))
	}
	c.paint(col)
}

// polyline strokes the line through pts with round caps and joins.
func (c *canvas) polyline(width float64, col color.Color, pts ...[2]float64) {
	if len(pts) < 2 || width <= 0 {
		return
	}
	var q raster.Path
	q.Start(c.pt(pts[0][0], pts[0][1]))
	for _, p := range pts[1:] {
		q.Add1(c.pt(p[0], p[1]))
	}
	c.begin(true)
	c.r.AddStroke(q, fixed.Int26_6(math.Round(width*64)), raster.RoundCapper, raster.RoundJoiner)
	c.paint(col)
}
