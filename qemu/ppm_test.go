package qemu

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"strings"
	"testing"
)

func encodePPM(img *image.RGBA, header string) []byte {
	var b bytes.Buffer
	b.WriteString(header)
	r := img.Bounds()
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			c := img.RGBAAt(x, y)
			b.Write([]byte{c.R, c.G, c.B})
		}
	}
	return b.Bytes()
}

func testImage(w, h int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.SetRGBA(x, y, color.RGBA{uint8(x * 7), uint8(y * 13), uint8(x ^ y), 0xff})
		}
	}
	return img
}

func TestDecodePPM(t *testing.T) {
	want := testImage(5, 3)
	for _, header := range []string{
		"P6\n5 3\n255\n",
		"P6 5 3 255 ",                       // any whitespace
		"P6\n# written by QEMU\n5 3\n255\n", // a comment
		"P6\n5\r\n3\t255\n",
	} {
		got, err := DecodePPM(bytes.NewReader(encodePPM(want, header)))
		if err != nil {
			t.Fatalf("header %q: %v", header, err)
		}
		if got.Bounds() != want.Bounds() || !bytes.Equal(got.Pix, want.Pix) {
			t.Fatalf("header %q: pixels differ", header)
		}
	}
}

func TestDecodePPMRefuses(t *testing.T) {
	img := testImage(2, 2)
	for _, c := range []struct{ in, want string }{
		{"", "magic"},
		{"P3\n2 2\n255\n", `magic "P3"`},
		{"P6\n2 2\n65535\n", "maxval 65535"},
		{"P6\n0 2\n255\n", "size 0x2"},
		{"P6\n99999 99999\n255\n", "size 99999x99999"},
		{"P6\n123456 2\n255\n", "more than 5 digits"},
		{"P6\nx 2\n255\n", "width"},
		{"P6\n2 2\n255", "no whitespace after the header"},
		{string(encodePPM(img, "P6\n2 2\n255\n")[:20]), "row 1 of 2"},
	} {
		_, err := DecodePPM(strings.NewReader(c.in))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: err %v, want one saying %q", c.in, err, c.want)
		}
	}
}

// FuzzDecodePPM: any input gives an image whose size the header declared,
// or an error; never a panic or an allocation beyond the size bound.
func FuzzDecodePPM(f *testing.F) {
	f.Add(encodePPM(testImage(3, 2), "P6\n3 2\n255\n"))
	f.Add([]byte("P6\n# c\n1 1\n255\n\x00\x00\x00"))
	f.Add([]byte("P6 8192 8192 255 "))
	f.Fuzz(func(t *testing.T, b []byte) {
		img, err := DecodePPM(bytes.NewReader(b))
		if err != nil {
			return
		}
		r := img.Bounds()
		if r.Dx() < 1 || r.Dy() < 1 || r.Dx() > maxPPMSide || r.Dy() > maxPPMSide {
			t.Fatalf("decoded a %v image", r)
		}
		if len(b) < 3*r.Dx()*r.Dy() {
			t.Fatalf("%v image from %d bytes", r, len(b))
		}
		_ = fmt.Sprint(img.At(0, 0))
	})
}
