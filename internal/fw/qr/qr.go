package qr

import (
	"errors"
	"fmt"

	qrcode "github.com/skip2/go-qrcode"
)

// Matrix is a QR symbol without its quiet zone: Size×Size modules, true is
// dark. It is immutable once made by Encode.
type Matrix struct {
	// Version is the QR version (1..40); Size is 17 + 4×Version.
	Version int
	// Size is the number of modules on each side.
	Size    int
	modules []bool // row-major, Size*Size
}

// ErrEmpty is returned by Encode for empty content.
var ErrEmpty = errors.New("qr: empty content")

// Encode encodes text at error correction level M (about 15 % recovery).
func Encode(text []byte) (*Matrix, error) {
	if len(text) == 0 {
		return nil, ErrEmpty
	}
	c, err := qrcode.New(string(text), qrcode.Medium)
	if err != nil {
		return nil, fmt.Errorf("qr: encode %d bytes: %w", len(text), err)
	}
	c.DisableBorder = true
	bm := c.Bitmap()
	n := len(bm)
	if n != 17+4*c.VersionNumber {
		return nil, fmt.Errorf("qr: encoder returned %d modules for version %d", n, c.VersionNumber)
	}
	m := &Matrix{Version: c.VersionNumber, Size: n, modules: make([]bool, n*n)}
	for y, row := range bm {
		if len(row) != n {
			return nil, fmt.Errorf("qr: encoder returned a ragged row %d", y)
		}
		copy(m.modules[y*n:], row)
	}
	return m, nil
}

// Dark reports whether the module at column x, row y is dark. Modules
// outside the symbol (the quiet zone) are light.
func (m *Matrix) Dark(x, y int) bool {
	if x < 0 || y < 0 || x >= m.Size || y >= m.Size {
		return false
	}
	return m.modules[y*m.Size+x]
}
