package screen

import (
	"fmt"
	"image/png"
	"io"
)

// RenderPNG renders v on a w×h frame and writes it to out as PNG; it is what
// `zmonitor render` calls.
func RenderPNG(v View, w, h int, out io.Writer) error {
	r, err := NewRenderer()
	if err != nil {
		return err
	}
	f, err := r.Render(v, w, h)
	if err != nil {
		return err
	}
	if err := png.Encode(out, f.Img); err != nil {
		return fmt.Errorf("screen: write PNG: %w", err)
	}
	return nil
}
