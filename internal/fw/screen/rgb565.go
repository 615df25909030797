package screen

import (
	"encoding/binary"
	"fmt"
	"image"
)

// ToRGB565 converts the pixels of img inside r to RGB565, big-endian (the
// byte order ST7789 and ILI9341 panels take), row by row into dst. It
// returns the number of bytes written: 2 per pixel of r ∩ img.Bounds().
func ToRGB565(img *image.RGBA, r image.Rectangle, dst []byte) (int, error) {
	r = r.Intersect(img.Rect)
	n := r.Dx() * r.Dy() * 2
	if len(dst) < n {
		return 0, fmt.Errorf("rgb565: %d-byte buffer for %d×%d pixels, need %d", len(dst), r.Dx(), r.Dy(), n)
	}
	o := 0
	for y := r.Min.Y; y < r.Max.Y; y++ {
		src := img.Pix[img.PixOffset(r.Min.X, y) : img.PixOffset(r.Max.X-1, y)+4]
		out := dst[o : o+len(src)/2]
		for x := range len(out) / 2 {
			p := binary.LittleEndian.Uint32(src[4*x:]) // R, G, B, A
			c := uint16(p&0xf8)<<8 | uint16(p>>8&0xfc)<<3 | uint16(p>>19&0x1f)
			binary.BigEndian.PutUint16(out[2*x:], c)
		}
		o += len(out)
	}
	return o, nil
}
