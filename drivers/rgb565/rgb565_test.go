package rgb565

import (
	"bytes"
	"image"
	"image/color"
	"math/rand/v2"
	"testing"
)

func TestColor(t *testing.T) {
	for _, c := range []struct {
		in   color.Color
		want Color
	}{
		{color.White, 0xffff},
		{color.Black, 0},
		{color.RGBA{0xff, 0, 0, 0xff}, 0xf800},
		{color.RGBA{0, 0xff, 0, 0xff}, 0x07e0},
		{color.RGBA{0, 0, 0xff, 0xff}, 0x001f},
		{color.NRGBA{0xff, 0xff, 0xff, 0}, 0}, // transparent is black
		{Color(0x1234), 0x1234},
	} {
		if got := Model.Convert(c.in).(Color); got != c.want {
			t.Errorf("Convert(%v) = %#04x; want %#04x", c.in, uint16(got), uint16(c.want))
		}
	}
	if r, g, b, a := Color(0xffff).RGBA(); r != 0xffff || g != 0xffff || b != 0xffff || a != 0xffff {
		t.Errorf("white RGBA() = %x %x %x %x", r, g, b, a)
	}
	// Every pixel value survives a round trip through RGBA.
	for v := 0; v < 1<<16; v++ {
		if got := Model.Convert(Color(v)).(Color); got != Color(v) {
			t.Fatalf("round trip %#04x -> %#04x", v, uint16(got))
		}
		r, g, b, _ := Color(v).RGBA()
		if got := FromRGB8(uint8(r>>8), uint8(g>>8), uint8(b>>8)); got != Color(v) {
			t.Fatalf("FromRGB8 round trip %#04x -> %#04x", v, uint16(got))
		}
	}
}

// slow is an image that hides its type, forcing the generic path.
type slow struct{ image.Image }

func TestEncodeFastPathsMatchGeneric(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	b := image.Rect(-3, 5, 37, 29)
	rgba := image.NewRGBA(b)
	nrgba := image.NewNRGBA(b)
	for i := range rgba.Pix {
		rgba.Pix[i] = byte(rng.Uint32())
		nrgba.Pix[i] = byte(rng.Uint32())
	}
	r := image.Rect(1, 7, 30, 20)
	for _, img := range []image.Image{rgba, nrgba} {
		for _, o := range []Order{BigEndian, LittleEndian} {
			stride := r.Dx()*2 + 6
			fast := make([]byte, stride*r.Dy())
			gen := make([]byte, stride*r.Dy())
			Encode(fast, stride, img, r, o)
			Encode(gen, stride, slow{img}, r, o)
			if !bytes.Equal(fast, gen) {
				t.Errorf("%T %s: fast path differs from generic path", img, o)
			}
		}
	}
}

func TestEncodeLayout(t *testing.T) {
	img := image.NewRGBA(image.Rect(0, 0, 3, 2))
	img.Set(1, 0, color.RGBA{0xff, 0, 0, 0xff})
	img.Set(2, 1, color.RGBA{0, 0, 0xff, 0xff})
	got := make([]byte, 2*2+2+2*2)
	Encode(got, 6, img, image.Rect(1, 0, 3, 2), BigEndian)
	want := []byte{0xf8, 0x00, 0, 0, 0, 0, 0, 0, 0, 0x1f}
	if !bytes.Equal(got, want) {
		t.Errorf("big endian = % x; want % x", got, want)
	}
	Encode(got, 6, img, image.Rect(1, 0, 3, 2), LittleEndian)
	want = []byte{0x00, 0xf8, 0, 0, 0, 0, 0, 0, 0x1f, 0}
	if !bytes.Equal(got, want) {
		t.Errorf("little endian = % x; want % x", got, want)
	}
}

// The panels' byte order for the primaries and white, and a sub-rectangle
// of a row (the screen package's countdown ticks push only a rectangle).
func TestEncodePrimariesBigEndian(t *testing.T) {
	img := image.NewRGBA(image.Rect(0, 0, 4, 1))
	for i, c := range []color.RGBA{{0xff, 0, 0, 0xff}, {0, 0xff, 0, 0xff}, {0, 0, 0xff, 0xff}, {0xff, 0xff, 0xff, 0xff}} {
		img.SetRGBA(i, 0, c)
	}
	b := make([]byte, 8)
	Encode(b, 8, img, img.Rect, BigEndian)
	if want := []byte{0xf8, 0x00, 0x07, 0xe0, 0x00, 0x1f, 0xff, 0xff}; !bytes.Equal(b, want) {
		t.Errorf("got % x, want % x", b, want)
	}
	clear(b)
	Encode(b, 4, img, image.Rect(1, 0, 3, 1), BigEndian)
	if want := []byte{0x07, 0xe0, 0x00, 0x1f, 0, 0, 0, 0}; !bytes.Equal(b, want) {
		t.Errorf("sub-rectangle: got % x, want % x", b, want)
	}
}

func BenchmarkEncodeRGBA240(b *testing.B) {
	img := image.NewRGBA(image.Rect(0, 0, 240, 240))
	dst := make([]byte, 240*240*2)
	b.SetBytes(int64(len(dst)))
	for b.Loop() {
		Encode(dst, 480, img, img.Bounds(), BigEndian)
	}
}
