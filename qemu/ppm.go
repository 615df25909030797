package qemu

import (
	"bufio"
	"errors"
	"fmt"
	"image"
	"io"
)

// maxPPMSide bounds the width and height DecodePPM accepts: QEMU's virt
// displays are far smaller, and the bound keeps a corrupt header from
// asking for gigabytes.
const maxPPMSide = 8192

// DecodePPM reads a binary PPM (P6, maxval 255), the format of QEMU's
// screendump by default. Writing it costs QEMU a copy of the surface, where
// PNG costs a zlib compression while QEMU holds its big lock and the guest
// stands still.
func DecodePPM(r io.Reader) (*image.RGBA, error) {
	br := bufio.NewReader(r)
	var magic [2]byte
	if _, err := io.ReadFull(br, magic[:]); err != nil {
		return nil, fmt.Errorf("ppm: magic: %w", err)
	}
	if magic != [2]byte{'P', '6'} {
		return nil, fmt.Errorf("ppm: magic %q, want \"P6\"", magic[:])
	}
	var dims [3]int
	for i, name := range []string{"width", "height", "maxval"} {
		n, err := ppmNumber(br)
		if err != nil {
			return nil, fmt.Errorf("ppm: %s: %w", name, err)
		}
		dims[i] = n
	}
	w, h, maxval := dims[0], dims[1], dims[2]
	if w < 1 || h < 1 || w > maxPPMSide || h > maxPPMSide {
		return nil, fmt.Errorf("ppm: size %dx%d outside 1..%d", w, h, maxPPMSide)
	}
	if maxval != 255 {
		return nil, fmt.Errorf("ppm: maxval %d, want 255", maxval)
	}
	// Exactly one whitespace byte separates the header from the samples.
	if c, err := br.ReadByte(); err != nil || !ppmSpace(c) {
		return nil, errors.New("ppm: no whitespace after the header")
	}
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	row := make([]byte, 3*w)
	for y := range h {
		if _, err := io.ReadFull(br, row); err != nil {
			return nil, fmt.Errorf("ppm: row %d of %d: %w", y, h, err)
		}
		px := img.Pix[y*img.Stride:]
		for x := range w {
			px[4*x], px[4*x+1], px[4*x+2], px[4*x+3] = row[3*x], row[3*x+1], row[3*x+2], 0xff
		}
	}
	return img, nil
}

// ppmNumber skips whitespace and # comments, then reads a decimal number
// of at most 5 digits, leaving the byte after it unread.
func ppmNumber(br *bufio.Reader) (int, error) {
	c, err := br.ReadByte()
	for err == nil && (ppmSpace(c) || c == '#') {
		if c == '#' {
			_, err = br.ReadString('\n')
			if err != nil {
				break
			}
		}
		c, err = br.ReadByte()
	}
	if err != nil {
		return 0, err
	}
	n, digits := 0, 0
	for ; c >= '0' && c <= '9'; digits++ {
		if digits == 5 {
			return 0, errors.New("more than 5 digits")
		}
		n = n*10 + int(c-'0')
		if c, err = br.ReadByte(); err == io.EOF {
			return n, nil // what follows decides whether that is an error
		} else if err != nil {
			return 0, err
		}
	}
	if digits == 0 {
		return 0, fmt.Errorf("%q is not a digit", c)
	}
	return n, br.UnreadByte()
}

func ppmSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}
