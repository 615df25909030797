package fbdev

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeSys returns chosen screen information and records console modes.
type fakeSys struct {
	v      varScreeninfo
	f      fixScreeninfo
	mode   int
	modes  []int
	varErr error
	setErr error
	puts   []varScreeninfo
	putErr error
}

func (s *fakeSys) setVarInfo(_ int, v varScreeninfo) error {
	s.puts = append(s.puts, v)
	return s.putErr
}

func (s *fakeSys) varInfo(int) (varScreeninfo, error) { return s.v, s.varErr }
func (s *fakeSys) fixInfo(int) (fixScreeninfo, error) { return s.f, nil }
func (s *fakeSys) kdMode(int) (int, error)            { return s.mode, nil }
func (s *fakeSys) setKDMode(_ int, m int) error {
	if s.setErr != nil {
		return s.setErr
	}
	s.modes = append(s.modes, m)
	s.mode = m
	return nil
}

func screen(format Format, w, h, stride int, size uint32) *fakeSys {
	s := &fakeSys{mode: kdText}
	s.v.Xres, s.v.Yres = uint32(w), uint32(h)
	s.v.XresVirtual, s.v.YresVirtual = uint32(w), uint32(h)
	switch format {
	case RGB565:
		s.v.BitsPerPixel = 16
		s.v.Red, s.v.Green, s.v.Blue = bitfield{Offset: 11, Length: 5}, bitfield{Offset: 5, Length: 6}, bitfield{Length: 5}
	case XRGB8888:
		s.v.BitsPerPixel = 32
		s.v.Red, s.v.Green, s.v.Blue = bitfield{Offset: 16, Length: 8}, bitfield{Offset: 8, Length: 8}, bitfield{Length: 8}
	}
	copy(s.f.ID[:], "virtio_gpudrmfb")
	s.f.Visual = fbVisualTrueColor
	s.f.LineLength = uint32(stride)
	s.f.SmemLen = size
	return s
}

// files makes a framebuffer "memory" file of size bytes filled with 0xEE and
// a console file.
func files(t *testing.T, size int) (fb, tty string) {
	t.Helper()
	dir := t.TempDir()
	fb, tty = filepath.Join(dir, "fb0"), filepath.Join(dir, "tty0")
	if err := os.WriteFile(fb, bytes.Repeat([]byte{0xEE}, size), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	return fb, tty
}

func pattern() *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, 8, 8))
	img.Set(2, 3, color.RGBA{0xff, 0, 0, 0xff})       // red
	img.Set(3, 3, color.RGBA{0, 0xff, 0, 0xff})       // green
	img.Set(2, 4, color.RGBA{0, 0, 0xff, 0xff})       // blue
	img.Set(3, 4, color.RGBA{0xff, 0xff, 0xff, 0xff}) // white
	return img
}

func TestRGB565PartialDrawRespectsStride(t *testing.T) {
	const w, h, stride = 6, 4, 16 // 12 bytes of pixels + 4 of padding per line
	fbPath, ttyPath := files(t, stride*h)
	s := screen(RGB565, w, h, stride, stride*h)
	d, err := open(fbPath, &Opts{TTY: ttyPath}, s)
	if err != nil {
		t.Fatal(err)
	}
	if d.Bounds() != image.Rect(0, 0, w, h) || d.Format() != RGB565 {
		t.Fatalf("geometry %v %s", d.Bounds(), d.Format())
	}
	// 2×2 pixels of the source at (2,3) go to (1,2) on screen.
	if err := d.Draw(image.Rect(1, 2, 3, 4), pattern(), image.Pt(2, 3)); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(fbPath)
	if err != nil {
		t.Fatal(err)
	}
	want := bytes.Repeat([]byte{0xEE}, stride*h)
	copy(want[2*stride+2:], []byte{0x00, 0xf8, 0xe0, 0x07}) // red, green little-endian
	copy(want[3*stride+2:], []byte{0x1f, 0x00, 0xff, 0xff}) // blue, white
	if !bytes.Equal(got, want) {
		t.Errorf("framebuffer:\n% x\nwant:\n% x", got, want)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if len(s.modes) != 2 || s.modes[0] != kdGraphics || s.modes[1] != kdText {
		t.Errorf("console modes = %v; want graphics then text", s.modes)
	}
	if err := d.Draw(d.Bounds(), pattern(), image.Point{}); !errors.Is(err, ErrClosed) {
		t.Errorf("Draw after Close = %v", err)
	}
}

func TestXRGB8888PartialDrawWithPanOffset(t *testing.T) {
	const w, h, stride = 4, 3, 20 // 16 bytes of pixels + 4 padding
	// The visible area starts one line and one pixel into the memory.
	fbPath, _ := files(t, stride*(h+2))
	s := screen(XRGB8888, w, h, stride, stride*(h+2))
	s.v.Xoffset, s.v.Yoffset = 0, 1
	d, err := open(fbPath, &Opts{}, s)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Draw(image.Rect(2, 1, 10, 10), pattern(), image.Pt(2, 3)); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(fbPath)
	want := bytes.Repeat([]byte{0xEE}, stride*(h+2))
	// Screen (2,1) is memory line 2; the rectangle is clipped to 2×2.
	copy(want[2*stride+8:], []byte{0x00, 0x00, 0xff, 0xff, 0x00, 0xff, 0x00, 0xff})
	copy(want[3*stride+8:], []byte{0xff, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff})
	if !bytes.Equal(got, want) {
		t.Errorf("framebuffer:\n% x\nwant:\n% x", got, want)
	}
	if len(s.modes) != 0 {
		t.Errorf("console touched without a TTY: %v", s.modes)
	}
	// The generic path writes the same bytes.
	d2, err := open(fbPath, &Opts{}, s)
	if err != nil {
		t.Fatal(err)
	}
	defer d2.Close()
	if err := d2.Draw(image.Rect(2, 1, 10, 10), hidden{pattern()}, image.Pt(2, 3)); err != nil {
		t.Fatal(err)
	}
	if got2, _ := os.ReadFile(fbPath); !bytes.Equal(got2, want) {
		t.Errorf("generic path differs:\n% x", got2)
	}
}

type hidden struct{ image.Image }

func TestOpenRejects(t *testing.T) {
	fbPath, ttyPath := files(t, 4096)
	cases := map[string]func(s *fakeSys){
		"8 bpp":         func(s *fakeSys) { s.v.BitsPerPixel = 8 },
		"BGR":           func(s *fakeSys) { s.v.Red.Offset, s.v.Blue.Offset = 0, 16 },
		"pseudocolour":  func(s *fakeSys) { s.f.Visual = 3 },
		"zero size":     func(s *fakeSys) { s.v.Xres = 0 },
		"short stride":  func(s *fakeSys) { s.f.LineLength = 30 },
		"small memory":  func(s *fakeSys) { s.f.SmemLen = 100 },
		"past memory":   func(s *fakeSys) { s.v.Yoffset = 200 },
		"ioctl":         func(s *fakeSys) { s.varErr = errors.New("ENOTTY") },
		"console ioctl": func(s *fakeSys) { s.setErr = errors.New("EPERM") },
	}
	for name, mutate := range cases {
		s := screen(XRGB8888, 8, 8, 32, 4096)
		mutate(s)
		d, err := open(fbPath, &Opts{TTY: ttyPath}, s)
		if err == nil {
			d.Close()
			t.Errorf("%s: open succeeded", name)
			continue
		}
		if !strings.HasPrefix(err.Error(), "fbdev: ") {
			t.Errorf("%s: error %q lacks the package prefix", name, err)
		}
		if name == "8 bpp" && !errors.Is(err, ErrFormat) {
			t.Errorf("8 bpp: %v is not ErrFormat", err)
		}
	}
	if _, err := open(filepath.Join(t.TempDir(), "nope"), nil, screen(RGB565, 1, 1, 2, 2)); err == nil {
		t.Error("missing device opened")
	}
}

func TestHaltRestoresConsole(t *testing.T) {
	fbPath, ttyPath := files(t, 240*240*4)
	s := screen(XRGB8888, 240, 240, 960, 240*240*4)
	d, err := open(fbPath, &Opts{TTY: ttyPath}, s)
	if err != nil {
		t.Fatal(err)
	}
	if s.mode != kdGraphics {
		t.Fatal("console not in graphics mode")
	}
	if err := d.Halt(); err != nil {
		t.Fatal(err)
	}
	if s.mode != kdText {
		t.Error("Halt left graphics mode")
	}
	if err := d.Close(); err != nil || len(s.modes) != 2 {
		t.Errorf("Close = %v, modes %v (restored twice?)", err, s.modes)
	}
	if !strings.Contains(d.String(), "240×240 XRGB8888") {
		t.Errorf("String() = %q", d.String())
	}
}

func BenchmarkFullFrame(b *testing.B) {
	for _, f := range []Format{RGB565, XRGB8888} {
		b.Run(f.String(), func(b *testing.B) {
			bpp := 2
			if f == XRGB8888 {
				bpp = 4
			}
			dir := b.TempDir()
			fbPath := filepath.Join(dir, "fb0")
			if err := os.WriteFile(fbPath, make([]byte, 240*240*bpp), 0o600); err != nil {
				b.Fatal(err)
			}
			d, err := open(fbPath, &Opts{}, screen(f, 240, 240, 240*bpp, uint32(240*240*bpp)))
			if err != nil {
				b.Fatal(err)
			}
			defer d.Close()
			img := image.NewRGBA(image.Rect(0, 0, 240, 240))
			b.SetBytes(240 * 240 * int64(bpp))
			for b.Loop() {
				if err := d.Draw(d.Bounds(), img, image.Point{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func TestOpenForcesTheModeSoWritesShow(t *testing.T) {
	s := screen(RGB565, 240, 240, 480, 240*480)
	path, _ := files(t, 240*480)
	d, err := open(path, &Opts{}, s)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if len(s.puts) != 1 || s.puts[0].Activate&fbActivateForce == 0 || s.puts[0].Xres != 240 {
		t.Fatalf("FBIOPUT_VSCREENINFO calls: %+v", s.puts)
	}
	s2 := screen(RGB565, 240, 240, 480, 240*480)
	s2.putErr = errors.New("EINVAL")
	path2, _ := files(t, 240*480)
	if _, err := open(path2, &Opts{}, s2); err == nil {
		t.Fatal("a failed modeset was ignored")
	}
}
