package rgb565

import (
	"encoding/binary"
	"image"
	"image/color"
)

// Color is one RGB565 pixel: red in bits 15-11, green 10-5, blue 4-0.
type Color uint16

// RGBA implements color.Color. Each channel is expanded by bit replication,
// so white is 0xffff and black 0.
func (c Color) RGBA() (r, g, b, a uint32) {
	r5 := uint32(c>>11) & 0x1f
	g6 := uint32(c>>5) & 0x3f
	b5 := uint32(c) & 0x1f
	r8 := r5<<3 | r5>>2
	g8 := g6<<2 | g6>>4
	b8 := b5<<3 | b5>>2
	return r8 * 0x101, g8 * 0x101, b8 * 0x101, 0xffff
}

// FromRGB8 returns the pixel for 8-bit channels by truncation.
func FromRGB8(r, g, b uint8) Color {
	return Color(uint16(r&0xf8)<<8 | uint16(g&0xfc)<<3 | uint16(b)>>3)
}

// Model converts any colour to Color.
var Model color.Model = color.ModelFunc(convert)

func convert(c color.Color) color.Color {
	if c, ok := c.(Color); ok {
		return c
	}
	r, g, b, _ := c.RGBA()
	return FromRGB8(uint8(r>>8), uint8(g>>8), uint8(b>>8))
}

// Order is the byte order of a pixel in memory.
type Order int

const (
	// BigEndian is the order of SPI panels (high byte first on the wire).
	BigEndian Order = iota
	// LittleEndian is the order of framebuffers on little-endian CPUs.
	LittleEndian
)

// String implements fmt.Stringer.
func (o Order) String() string {
	switch o {
	case BigEndian:
		return "BigEndian"
	case LittleEndian:
		return "LittleEndian"
	}
	return "Order(?)"
}

// Encode writes the pixels of src inside r (in src's coordinates, which the
// caller has clipped to src.Bounds()) into dst, one row of r.Dx()*2 bytes
// every stride bytes. dst must hold (r.Dy()-1)*stride + r.Dx()*2 bytes.
//
// *image.RGBA and *image.NRGBA are converted without per-pixel interface
// calls; other images go through At and Model.
func Encode(dst []byte, stride int, src image.Image, r image.Rectangle, o Order) {
	w := r.Dx()
	hi, lo := 0, 1
	if o == LittleEndian {
		hi, lo = 1, 0
	}
	switch s := src.(type) {
	case *image.RGBA:
		for y := r.Min.Y; y < r.Max.Y; y++ {
			i := s.PixOffset(r.Min.X, y)
			row := s.Pix[i : i+4*w : i+4*w]
			out := dst[(y-r.Min.Y)*stride:]
			out = out[: 2*w : 2*w]
			// One 32-bit load per pixel (R in the low byte), one 16-bit store.
			if o == BigEndian {
				for x, j := 0, 0; x < len(out); x, j = x+2, j+4 {
					p := binary.LittleEndian.Uint32(row[j:])
					binary.BigEndian.PutUint16(out[x:], uint16(p<<8&0xf800|p>>5&0x07e0|p>>19&0x001f))
				}
				continue
			}
			for x, j := 0, 0; x < len(out); x, j = x+2, j+4 {
				p := binary.LittleEndian.Uint32(row[j:])
				binary.LittleEndian.PutUint16(out[x:], uint16(p<<8&0xf800|p>>5&0x07e0|p>>19&0x001f))
			}
		}
	case *image.NRGBA:
		for y := r.Min.Y; y < r.Max.Y; y++ {
			i := s.PixOffset(r.Min.X, y)
			row := s.Pix[i : i+4*w : i+4*w]
			out := dst[(y-r.Min.Y)*stride:]
			out = out[:2*w]
			for x := 0; x < w; x++ {
				p := row[4*x : 4*x+4 : 4*x+4]
				cr, cg, cb := p[0], p[1], p[2]
				if a := uint32(p[3]); a != 0xff {
					// Premultiply (composite over black) exactly as
					// color.NRGBA.RGBA does.
					cr = uint8(uint32(cr) * 0x101 * a / 0xff >> 8)
					cg = uint8(uint32(cg) * 0x101 * a / 0xff >> 8)
					cb = uint8(uint32(cb) * 0x101 * a / 0xff >> 8)
				}
				v := uint16(cr&0xf8)<<8 | uint16(cg&0xfc)<<3 | uint16(cb)>>3
				out[2*x+hi] = byte(v >> 8)
				out[2*x+lo] = byte(v)
			}
		}
	default:
		for y := r.Min.Y; y < r.Max.Y; y++ {
			out := dst[(y-r.Min.Y)*stride:]
			out = out[:2*w]
			for x := 0; x < w; x++ {
				v := Model.Convert(src.At(r.Min.X+x, y)).(Color)
				out[2*x+hi] = byte(v >> 8)
				out[2*x+lo] = byte(v)
			}
		}
	}
}
