package browser

import (
	"bufio"
	"fmt"
	"image"
	"image/color"
	"io"
	"os"
)

// Y4M writes YUV4MPEG2 video, the format Chromium's fake camera plays
// (--use-file-for-fake-video-capture): a one-line header, then frames of
// planar 4:2:0 YCbCr, each after a "FRAME\n" line. Chromium loops the file.
//
// The colour space is the one a camera hands the browser: BT.601 with studio
// swing (Y 16–235, Cb/Cr 16–240), which is how Chromium reads an I420 frame;
// chroma is sampled at the centre of each 2×2 block ("C420jpeg").
type Y4M struct {
	w       *bufio.Writer
	width   int
	height  int
	frames  int
	yuv     []byte
	started bool
	fps     int
}

// NewY4M starts a Y4M stream of width×height frames at fps frames per
// second. Width and height must be even and positive: 4:2:0 halves both.
func NewY4M(w io.Writer, width, height, fps int) (*Y4M, error) {
	if width <= 0 || height <= 0 || width%2 != 0 || height%2 != 0 {
		return nil, fmt.Errorf("y4m: frame size %dx%d: want positive even width and height (4:2:0)", width, height)
	}
	if fps <= 0 || fps > 240 {
		return nil, fmt.Errorf("y4m: %d frames per second: want 1–240", fps)
	}
	return &Y4M{
		w: bufio.NewWriterSize(w, 1<<16), width: width, height: height, fps: fps,
		yuv: make([]byte, width*height*3/2),
	}, nil
}

// header is at most 200 bytes, as Chromium's parser wants.
func (y *Y4M) header() string {
	return fmt.Sprintf("YUV4MPEG2 W%d H%d F%d:1 Ip A1:1 C420jpeg\n", y.width, y.height, y.fps)
}

// Frame appends one frame. img must be exactly width×height (its bounds may
// start anywhere).
func (y *Y4M) Frame(img image.Image) error {
	b := img.Bounds()
	if b.Dx() != y.width || b.Dy() != y.height {
		return fmt.Errorf("y4m: frame %d is %dx%d, the stream is %dx%d", y.frames, b.Dx(), b.Dy(), y.width, y.height)
	}
	if !y.started {
		if _, err := y.w.WriteString(y.header()); err != nil {
			return fmt.Errorf("y4m: header: %w", err)
		}
		y.started = true
	}
	toI420(img, y.yuv, y.width, y.height)
	if _, err := y.w.WriteString("FRAME\n"); err != nil {
		return fmt.Errorf("y4m: frame %d: %w", y.frames, err)
	}
	if _, err := y.w.Write(y.yuv); err != nil {
		return fmt.Errorf("y4m: frame %d: %w", y.frames, err)
	}
	y.frames++
	return nil
}

// Close flushes the stream (it does not close the underlying writer). A
// stream needs at least one frame.
func (y *Y4M) Close() error {
	if y.frames == 0 {
		return fmt.Errorf("y4m: no frame written")
	}
	if err := y.w.Flush(); err != nil {
		return fmt.Errorf("y4m: flush: %w", err)
	}
	return nil
}

// WriteY4MFile writes frames (all the same size) to path as a Y4M video at
// fps frames per second.
func WriteY4MFile(path string, fps int, frames ...image.Image) error {
	if len(frames) == 0 {
		return fmt.Errorf("y4m: %s: no frames", path)
	}
	b := frames[0].Bounds()
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("y4m: %w", err)
	}
	y, err := NewY4M(f, b.Dx(), b.Dy(), fps)
	if err == nil {
		for _, fr := range frames {
			if err = y.Frame(fr); err != nil {
				break
			}
		}
	}
	if err == nil {
		err = y.Close()
	}
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("y4m: %s: %w", path, cerr)
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("y4m: %s: %w", path, err)
	}
	return nil
}

// toI420 converts img into the planar buffer dst (Y, then Cb, then Cr).
func toI420(img image.Image, dst []byte, w, h int) {
	b := img.Bounds()
	yp := dst[:w*h]
	cb := dst[w*h : w*h+w*h/4]
	cr := dst[w*h+w*h/4:]
	rgba, _ := img.(*image.RGBA)
	at := func(x, y int) (r, g, bl int32) {
		if rgba != nil {
			i := rgba.PixOffset(b.Min.X+x, b.Min.Y+y)
			return int32(rgba.Pix[i]), int32(rgba.Pix[i+1]), int32(rgba.Pix[i+2])
		}
		c := color.RGBAModel.Convert(img.At(b.Min.X+x, b.Min.Y+y)).(color.RGBA)
		return int32(c.R), int32(c.G), int32(c.B)
	}
	for y := 0; y < h; y += 2 {
		for x := 0; x < w; x += 2 {
			var sr, sg, sb int32
			for dy := 0; dy < 2; dy++ {
				for dx := 0; dx < 2; dx++ {
					r, g, bl := at(x+dx, y+dy)
					yp[(y+dy)*w+x+dx] = lumaStudio(r, g, bl)
					sr, sg, sb = sr+r, sg+g, sb+bl
				}
			}
			ci := (y/2)*(w/2) + x/2
			cb[ci], cr[ci] = chromaStudio((sr+2)/4, (sg+2)/4, (sb+2)/4)
		}
	}
}

// lumaStudio is BT.601 Y' in 16–235 from 8-bit R'G'B' (fixed point, 16
// fractional bits).
func lumaStudio(r, g, b int32) byte {
	return byte((16829*r + 33039*g + 6416*b + (16 << 16) + 1<<15) >> 16)
}

// chromaStudio is BT.601 Cb, Cr in 16–240.
func chromaStudio(r, g, b int32) (byte, byte) {
	cb := (-9714*r - 19070*g + 28784*b + (128 << 16) + 1<<15) >> 16
	cr := (28784*r - 24103*g - 4681*b + (128 << 16) + 1<<15) >> 16
	return byte(cb), byte(cr)
}
