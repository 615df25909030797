package fbdev

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"io"
	"os"
	"sync"

	"github.com/zmonitor/firmware/drivers/rgb565"
	"golang.org/x/sys/unix"
	"periph.io/x/conn/v3"
	"periph.io/x/conn/v3/display"
)

// Format is a framebuffer pixel format.
type Format int

const (
	// RGB565 is 16 bits per pixel: red 15-11, green 10-5, blue 4-0.
	RGB565 Format = iota + 1
	// XRGB8888 is 32 bits per pixel: blue, green, red, unused bytes in
	// memory order (little-endian 0xXXRRGGBB).
	XRGB8888
)

// String implements fmt.Stringer.
func (f Format) String() string {
	switch f {
	case RGB565:
		return "RGB565"
	case XRGB8888:
		return "XRGB8888"
	}
	return fmt.Sprintf("Format(%d)", int(f))
}

// Opts configures Open.
type Opts struct {
	// TTY is the virtual console switched to graphics mode while the
	// framebuffer is in use ("/dev/tty0" is the active one). Empty leaves
	// the console alone.
	TTY string
}

// DefaultOpts switches /dev/tty0 to graphics mode.
var DefaultOpts = Opts{TTY: "/dev/tty0"}

// sys is the kernel interface the driver needs, replaced by a fake in tests.
type sys interface {
	varInfo(fd int) (varScreeninfo, error)
	setVarInfo(fd int, v varScreeninfo) error
	fixInfo(fd int) (fixScreeninfo, error)
	kdMode(fd int) (int, error)
	setKDMode(fd int, mode int) error
}

// Dev is an open framebuffer.
type Dev struct {
	mu      sync.Mutex
	sys     sys
	path    string
	fb      *os.File
	tty     *os.File
	ttyMode int    // console mode to restore; -1 when the console is not ours
	mem     []byte // a copy of the framebuffer up to the visible area's end
	id      string
	format  Format
	rect    image.Rectangle
	stride  int
	start   int // offset of the visible area's first pixel in mem
	end     int // offset just past the visible area's last pixel
	bpp     int // bytes per pixel
}

// Open opens the framebuffer at path (usually /dev/fb0). opts may be nil for
// DefaultOpts; it is copied.
func Open(path string, opts *Opts) (*Dev, error) {
	return open(path, opts, kernel{})
}

func open(path string, opts *Opts, s sys) (_ *Dev, err error) {
	o := DefaultOpts
	if opts != nil {
		o = *opts
	}
	fb, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("fbdev: %w", err)
	}
	d := &Dev{sys: s, path: path, fb: fb, ttyMode: -1}
	defer func() {
		if err != nil {
			_ = d.Close()
		}
	}()
	fd := int(fb.Fd())
	v, err := s.varInfo(fd)
	if err != nil {
		return nil, fmt.Errorf("fbdev: %s: FBIOGET_VSCREENINFO: %w", path, err)
	}
	f, err := s.fixInfo(fd)
	if err != nil {
		return nil, fmt.Errorf("fbdev: %s: FBIOGET_FSCREENINFO: %w", path, err)
	}
	if err := d.setGeometry(&v, &f); err != nil {
		return nil, fmt.Errorf("fbdev: %s: %w", path, err)
	}
	// Pixels go to the kernel with pwrite, not through a mapping: DRM's
	// fbdev emulation flushes written ranges at once, while writes to a
	// mapping wait for its deferred-I/O timer (~50 ms a frame). mem keeps
	// what the framebuffer holds, so a partial Draw can write whole rows.
	d.mem = make([]byte, d.end)
	if err := readFull(fb, d.mem); err != nil {
		return nil, fmt.Errorf("fbdev: %s: read framebuffer: %w", path, err)
	}
	// Set the current mode again, forced. Without a framebuffer console
	// nothing else sets the mode, and DRM's fbdev emulation (virtio-gpu)
	// then never scans the framebuffer out: writes would not show.
	v.Activate |= fbActivateForce
	if err := s.setVarInfo(fd, v); err != nil {
		return nil, fmt.Errorf("fbdev: %s: FBIOPUT_VSCREENINFO (activate): %w", path, err)
	}
	if o.TTY != "" {
		if err := d.graphics(o.TTY); err != nil {
			return nil, fmt.Errorf("fbdev: %w", err)
		}
	}
	return d, nil
}

// ErrFormat is returned for framebuffers whose pixel format is not
// supported.
var ErrFormat = errors.New("unsupported pixel format")

// setGeometry validates the kernel's description of the framebuffer.
func (d *Dev) setGeometry(v *varScreeninfo, f *fixScreeninfo) error {
	d.id = string(bytes.TrimRight(f.ID[:], "\x00"))
	if f.Type != fbTypePackedPixels || f.Visual != fbVisualTrueColor {
		return fmt.Errorf("%w: type %d visual %d (want packed pixels, true colour)", ErrFormat, f.Type, f.Visual)
	}
	is := func(b bitfield, off, n uint32) bool { return b.Offset == off && b.Length == n && b.MsbRight == 0 }
	switch {
	case v.BitsPerPixel == 16 && is(v.Red, 11, 5) && is(v.Green, 5, 6) && is(v.Blue, 0, 5):
		d.format, d.bpp = RGB565, 2
	case v.BitsPerPixel == 32 && is(v.Red, 16, 8) && is(v.Green, 8, 8) && is(v.Blue, 0, 8):
		d.format, d.bpp = XRGB8888, 4
	default:
		return fmt.Errorf("%w: %d bpp, red %d/%d, green %d/%d, blue %d/%d (want RGB565 or XRGB8888)", ErrFormat,
			v.BitsPerPixel, v.Red.Offset, v.Red.Length, v.Green.Offset, v.Green.Length, v.Blue.Offset, v.Blue.Length)
	}
	if v.Xres == 0 || v.Yres == 0 || v.Xres > 1<<14 || v.Yres > 1<<14 {
		return fmt.Errorf("invalid resolution %d×%d", v.Xres, v.Yres)
	}
	stride := uint64(f.LineLength)
	if stride < uint64(v.Xres+v.Xoffset)*uint64(d.bpp) {
		return fmt.Errorf("line length %d too short for %d+%d pixels of %d bytes", f.LineLength, v.Xoffset, v.Xres, d.bpp)
	}
	start := uint64(v.Yoffset)*stride + uint64(v.Xoffset)*uint64(d.bpp)
	end := start + uint64(v.Yres-1)*stride + uint64(v.Xres)*uint64(d.bpp)
	if end > uint64(f.SmemLen) {
		return fmt.Errorf("visible area (%d×%d at %d,%d, line %d) ends at byte %d beyond the %d-byte framebuffer", v.Xres, v.Yres, v.Xoffset, v.Yoffset, f.LineLength, end, f.SmemLen)
	}
	d.rect = image.Rect(0, 0, int(v.Xres), int(v.Yres))
	d.stride, d.start, d.end = int(stride), int(start), int(end)
	return nil
}

// readFull fills b from the start of f; a short file leaves the rest zero.
func readFull(f *os.File, b []byte) error {
	for off := 0; off < len(b); {
		n, err := f.ReadAt(b[off:], int64(off))
		off += n
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// graphics switches the console to graphics mode, remembering its mode.
func (d *Dev) graphics(path string) error {
	tty, err := os.OpenFile(path, os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return fmt.Errorf("console: %w", err)
	}
	mode, err := d.sys.kdMode(int(tty.Fd()))
	if err != nil {
		_ = tty.Close()
		return fmt.Errorf("console %s: KDGETMODE: %w", path, err)
	}
	if err := d.sys.setKDMode(int(tty.Fd()), kdGraphics); err != nil {
		_ = tty.Close()
		return fmt.Errorf("console %s: KDSETMODE KD_GRAPHICS: %w", path, err)
	}
	d.tty, d.ttyMode = tty, mode
	return nil
}

// Format returns the pixel format.
func (d *Dev) Format() Format { return d.format }

// String implements conn.Resource.
func (d *Dev) String() string {
	return fmt.Sprintf("fbdev{%s %q, %d×%d %s, stride %d}", d.path, d.id, d.rect.Dx(), d.rect.Dy(), d.format, d.stride)
}

// ColorModel implements display.Drawer.
func (d *Dev) ColorModel() color.Model {
	if d.format == RGB565 {
		return rgb565.Model
	}
	return opaqueModel
}

// opaqueModel converts to 8-bit RGB composited over black.
var opaqueModel = color.ModelFunc(func(c color.Color) color.Color {
	r, g, b, _ := c.RGBA()
	return color.RGBA{uint8(r >> 8), uint8(g >> 8), uint8(b >> 8), 0xff}
})

// Bounds implements display.Drawer.
func (d *Dev) Bounds() image.Rectangle { return d.rect }

// ErrClosed is returned by Draw after Close.
var ErrClosed = errors.New("fbdev: closed")

// Draw implements display.Drawer: it writes the part of r inside the screen
// and covered by src (src's point sp maps to r.Min) into the framebuffer.
func (d *Dev) Draw(r image.Rectangle, src image.Image, sp image.Point) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.mem == nil {
		return ErrClosed
	}
	r = r.Intersect(d.rect)
	sr := r.Sub(r.Min).Add(sp).Intersect(src.Bounds())
	r = sr.Sub(sp).Add(r.Min)
	if r.Empty() {
		return nil
	}
	from := d.start + r.Min.Y*d.stride + r.Min.X*d.bpp
	to := d.start + (r.Max.Y-1)*d.stride + r.Max.X*d.bpp
	dst := d.mem[from:]
	switch d.format {
	case RGB565:
		rgb565.Encode(dst, d.stride, src, sr, rgb565.LittleEndian)
	case XRGB8888:
		encodeXRGB(dst, d.stride, src, sr)
	}
	// One write from the first to the last changed byte; what lies between
	// the rows is mem's copy of what is already there.
	if _, err := d.fb.WriteAt(d.mem[from:to], int64(from)); err != nil {
		return fmt.Errorf("fbdev: %s: write %d bytes at %d: %w", d.path, to-from, from, err)
	}
	return nil
}

// encodeXRGB writes src's pixels in sr as little-endian XRGB8888 rows,
// stride bytes apart, with the unused byte set to 0xff.
func encodeXRGB(dst []byte, stride int, src image.Image, sr image.Rectangle) {
	w := sr.Dx()
	switch s := src.(type) {
	case *image.RGBA:
		for y := sr.Min.Y; y < sr.Max.Y; y++ {
			i := s.PixOffset(sr.Min.X, y)
			row := s.Pix[i : i+4*w : i+4*w]
			out := dst[(y-sr.Min.Y)*stride:]
			out = out[: 4*w : 4*w]
			for x := 0; x < 4*w; x += 4 {
				p := row[x : x+3 : x+3]
				o := out[x : x+4 : x+4]
				o[0], o[1], o[2], o[3] = p[2], p[1], p[0], 0xff
			}
		}
	default:
		for y := sr.Min.Y; y < sr.Max.Y; y++ {
			out := dst[(y-sr.Min.Y)*stride:]
			out = out[: 4*w : 4*w]
			for x := 0; x < w; x++ {
				c := opaqueModel.Convert(src.At(sr.Min.X+x, y)).(color.RGBA)
				o := out[4*x : 4*x+4 : 4*x+4]
				o[0], o[1], o[2], o[3] = c.B, c.G, c.R, 0xff
			}
		}
	}
}

// Halt implements conn.Resource: it gives the console back to text mode.
// Drawing still works afterwards, but kernel text may overwrite it.
func (d *Dev) Halt() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.restoreConsole()
}

func (d *Dev) restoreConsole() error {
	if d.tty == nil {
		return nil
	}
	mode := d.ttyMode
	if mode != kdText && mode != kdGraphics {
		mode = kdText
	}
	err := d.sys.setKDMode(int(d.tty.Fd()), mode)
	if cerr := d.tty.Close(); err == nil {
		err = cerr
	}
	d.tty, d.ttyMode = nil, -1
	if err != nil {
		return fmt.Errorf("fbdev: restore console mode: %w", err)
	}
	return nil
}

// Close restores the console, unmaps the framebuffer and closes it.
func (d *Dev) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	err := d.restoreConsole()
	d.mem = nil
	if d.fb != nil {
		if cerr := d.fb.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("fbdev: close: %w", cerr)
		}
		d.fb = nil
	}
	return err
}

var _ display.Drawer = &Dev{}
var _ conn.Resource = &Dev{}
