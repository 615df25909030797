package screen

import (
	"image"
	"math"
	"testing"
)

// TestCanvasShapes checks the shapes' geometry on a 60×60 white frame:
// painted where the shape is, untouched a pixel outside it.
func TestCanvasShapes(t *testing.T) {
	newImg := func() *image.RGBA {
		img := image.NewRGBA(image.Rect(0, 0, 60, 60))
		fillRect(img, img.Rect, white)
		return img
	}
	isWhite := func(img *image.RGBA, x, y int) bool { return img.RGBAAt(x, y) == white }
	full := func(img *image.RGBA, x, y int) bool { return img.RGBAAt(x, y) == blue }

	img := newImg()
	newCanvas(img).disc(30, 30, 10, blue)
	for y := 0; y < 60; y++ {
		for x := 0; x < 60; x++ {
			r := math.Hypot(float64(x)+0.5-30, float64(y)+0.5-30)
			if r < 9 && !full(img, x, y) {
				t.Fatalf("disc: (%d,%d) at %.1f px from the centre not painted: %v", x, y, r, img.RGBAAt(x, y))
			}
			if r > 11 && !isWhite(img, x, y) {
				t.Fatalf("disc: (%d,%d) at %.1f px from the centre painted", x, y, r)
			}
		}
	}

	img = newImg()
	newCanvas(img).ring(30, 30, 10, 4, blue)
	for y := 0; y < 60; y++ {
		for x := 0; x < 60; x++ {
			r := math.Hypot(float64(x)+0.5-30, float64(y)+0.5-30)
			switch {
			case r > 9 && r < 11 && !full(img, x, y):
				t.Fatalf("ring: (%d,%d) at %.1f px not painted", x, y, r)
			case (r < 7 || r > 13) && !isWhite(img, x, y):
				t.Fatalf("ring: (%d,%d) at %.1f px painted", x, y, r)
			}
		}
	}

	img = newImg()
	newCanvas(img).polyline(4, blue, [2]float64{10, 30}, [2]float64{50, 30})
	for x := 0; x < 60; x++ {
		for y := 0; y < 60; y++ {
			on := x >= 10 && x < 50 && y >= 28 && y < 32
			off := x < 7 || x >= 53 || y < 27 || y >= 33
			if on && !full(img, x, y) {
				t.Fatalf("line: (%d,%d) not painted", x, y)
			}
			if off && !isWhite(img, x, y) {
				t.Fatalf("line: (%d,%d) painted", x, y)
			}
		}
	}

	// Degenerate shapes paint nothing and do not panic.
	img = newImg()
	c := newCanvas(img)
	c.disc(30, 30, 0, blue)
	c.ring(30, 30, -5, 2, blue)
	c.polyline(3, blue, [2]float64{1, 1})
	c.polyline(0, blue, [2]float64{1, 1}, [2]float64{9, 9})
	for y := 0; y < 60; y++ {
		for x := 0; x < 60; x++ {
			if !isWhite(img, x, y) {
				t.Fatalf("degenerate shapes painted (%d,%d)", x, y)
			}
		}
	}
}
