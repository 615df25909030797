package browser

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestY4MLayout(t *testing.T) {
	const w, h = 6, 4
	var buf bytes.Buffer
	y, err := NewY4M(&buf, w, h, 25)
	if err != nil {
		t.Fatal(err)
	}
	white := image.NewUniform(color.White)
	black := image.NewUniform(color.Black)
	for _, c := range []image.Image{white, black} {
		img := image.NewRGBA(image.Rect(10, 20, 10+w, 20+h)) // bounds need not start at 0
		for py := img.Rect.Min.Y; py < img.Rect.Max.Y; py++ {
			for px := img.Rect.Min.X; px < img.Rect.Max.X; px++ {
				img.Set(px, py, c.At(0, 0))
			}
		}
		if err := y.Frame(img); err != nil {
			t.Fatal(err)
		}
	}
	if err := y.Close(); err != nil {
		t.Fatal(err)
	}
	header := fmt.Sprintf("YUV4MPEG2 W%d H%d F25:1 Ip A1:1 C420jpeg\n", w, h)
	frame := w*h + 2*(w/2)*(h/2)
	out := buf.Bytes()
	if !bytes.HasPrefix(out, []byte(header)) || len(header) > 200 {
		t.Fatalf("header %q, want %q (≤ 200 bytes)", out[:min(len(out), 60)], header)
	}
	out = out[len(header):]
	if len(out) != 2*(len("FRAME\n")+frame) {
		t.Fatalf("%d bytes of frames, want 2 × (6 + %d)", len(out), frame)
	}
	for i, want := range []struct{ y, c byte }{{235, 128}, {16, 128}} { // studio swing
		f := out[i*(6+frame):]
		if string(f[:6]) != "FRAME\n" {
			t.Fatalf("frame %d starts %q", i, f[:6])
		}
		planes := f[6 : 6+frame]
		for j, v := range planes {
			if j < w*h && v != want.y || j >= w*h && v != want.c {
				t.Fatalf("frame %d byte %d = %d, want Y %d, Cb/Cr %d", i, j, v, want.y, want.c)
			}
		}
	}
}

func TestY4MRefuses(t *testing.T) {
	var buf bytes.Buffer
	for _, sz := range [][3]int{{5, 4, 25}, {4, 5, 25}, {0, 4, 25}, {4, 4, 0}, {4, 4, 1000}} {
		if _, err := NewY4M(&buf, sz[0], sz[1], sz[2]); err == nil {
			t.Errorf("NewY4M(%dx%d at %d fps): no error", sz[0], sz[1], sz[2])
		}
	}
	y, err := NewY4M(&buf, 4, 4, 25)
	if err != nil {
		t.Fatal(err)
	}
	if err := y.Frame(image.NewRGBA(image.Rect(0, 0, 6, 4))); err == nil || !strings.Contains(err.Error(), "6x4") {
		t.Errorf("a 6x4 frame in a 4x4 stream: %v", err)
	}
	if err := y.Close(); err == nil {
		t.Error("Close with no frame: no error")
	}
	path := filepath.Join(t.TempDir(), "x.y4m")
	if err := WriteY4MFile(path, 25, image.NewRGBA(image.Rect(0, 0, 4, 4)), image.NewRGBA(image.Rect(0, 0, 8, 8))); err == nil {
		t.Error("WriteY4MFile with frames of two sizes: no error")
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("a failed WriteY4MFile left %s behind (%v)", path, err)
	}
}

func TestWriteHandheldVideo(t *testing.T) {
	screen := image.NewRGBA(image.Rect(0, 0, 240, 240))
	for i := range screen.Pix {
		screen.Pix[i] = 0xff
	}
	path := filepath.Join(t.TempDir(), "camera.y4m")
	if err := WriteHandheldVideo(screen, path); err != nil {
		t.Fatal(err)
	}
	out, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	const w, h = 1280, 720
	header := fmt.Sprintf("YUV4MPEG2 W%d H%d F15:1 Ip A1:1 C420jpeg\n", w, h)
	if !bytes.HasPrefix(out, []byte(header)) {
		t.Fatalf("header %q, want %q", out[:min(len(out), 60)], header)
	}
	frame := 6 + w*h + 2*(w/2)*(h/2)
	out = out[len(header):]
	if len(out) != 2*frame {
		t.Fatalf("%d bytes of frames, want 2 × %d", len(out), frame)
	}
	if bytes.Equal(out[:frame], out[frame:]) {
		t.Error("the two frames are the same: the camera's noise should differ between them")
	}
}
