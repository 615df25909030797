package tablet

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/makiuchi-d/gozxing"
	gzqr "github.com/makiuchi-d/gozxing/qrcode"
	xdraw "golang.org/x/image/draw"

	"github.com/skip2/go-qrcode"
	"github.com/zmonitor/firmware/internal/fw/screen"
	"github.com/zmonitor/firmware/internal/proto/pairing"
	"github.com/zmonitor/firmware/internal/proto/state"
)

// renderReady renders the READY_TO_PAIR screen at w×h as the device shows it.
func renderReady(t testing.TB, w, h int) (image.Image, []byte) {
	t.Helper()
	v := screen.SampleView(state.ReadyToPair)
	var buf bytes.Buffer
	if err := screen.RenderPNG(v, w, h, &buf); err != nil {
		t.Fatal(err)
	}
	img, err := ReadImage(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	return img, v.QRText
}

func scale(img image.Image, f float64) image.Image {
	b := img.Bounds()
	out := image.NewRGBA(image.Rect(0, 0, int(float64(b.Dx())*f), int(float64(b.Dy())*f)))
	xdraw.BiLinear.Scale(out, out.Bounds(), img, b, xdraw.Src, nil)
	return out
}

func rotate90(img image.Image) image.Image {
	b := img.Bounds()
	out := image.NewRGBA(image.Rect(0, 0, b.Dy(), b.Dx()))
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			out.Set(b.Max.Y-1-y, x-b.Min.X, img.At(x, y))
		}
	}
	return out
}

// noisy adds uniform noise of ±amp to every channel (a camera's sensor
// noise), deterministically.
func noisy(img image.Image, amp int) image.Image {
	r := rand.New(rand.NewPCG(1, 2))
	b := img.Bounds()
	out := image.NewRGBA(b)
	clamp := func(v int) uint8 { return uint8(max(0, min(255, v))) }
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			c := color.RGBAModel.Convert(img.At(x, y)).(color.RGBA)
			n := r.IntN(2*amp+1) - amp
			out.SetRGBA(x, y, color.RGBA{clamp(int(c.R) + n), clamp(int(c.G) + n), clamp(int(c.B) + n), 255})
		}
	}
	return out
}

// camera is a poor photo: enlarged, gray and low-contrast, noisy, JPEG.
func camera(t testing.TB, img image.Image) image.Image {
	big := scale(img, 2.5)
	b := big.Bounds()
	dim := image.NewRGBA(b)
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			c := color.RGBAModel.Convert(big.At(x, y)).(color.RGBA)
			// map 0..255 to 60..190 (a screen photographed in a bright room)
			f := func(v uint8) uint8 { return uint8(60 + int(v)*130/255) }
			dim.SetRGBA(x, y, color.RGBA{f(c.R), f(c.G), f(c.B), 255})
		}
	}
	return viaJPEG(t, noisy(dim, 25), 70)
}

func viaJPEG(t testing.TB, img image.Image, q int) image.Image {
	t.Helper()
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: q}); err != nil {
		t.Fatal(err)
	}
	out, err := ReadImage(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestScanImageScreens(t *testing.T) {
	for _, sz := range [][2]int{{240, 240}, {320, 240}, {480, 320}} {
		img, want := renderReady(t, sz[0], sz[1])
		variants := []struct {
			name string
			img  func() image.Image
		}{
			{"screenshot", func() image.Image { return img }},
			{"scaled x2", func() image.Image { return scale(img, 2) }},
			{"scaled x0.9", func() image.Image { return scale(img, 0.9) }},
			{"rotated 90", func() image.Image { return rotate90(img) }},
			{"noise", func() image.Image { return noisy(img, 40) }},
			{"jpeg q80", func() image.Image { return viaJPEG(t, img, 80) }},
			{"camera", func() image.Image { return camera(t, img) }},
		}
		for _, v := range variants {
			t.Run(fmt.Sprintf("%dx%d/%s", sz[0], sz[1], v.name), func(t *testing.T) {
				got, err := ScanImage(v.img())
				if err != nil {
					t.Fatalf("ScanImage: %v", err)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("decoded %q, want %q", got, want)
				}
			})
		}
	}
}

func TestScanImageNoQR(t *testing.T) {
	// A PNG of another screen (no QR).
	var buf bytes.Buffer
	if err := screen.RenderPNG(screen.SampleView(state.Provisioned), 240, 240, &buf); err != nil {
		t.Fatal(err)
	}
	img, err := ReadImage(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	_, err = ScanImage(img)
	if !errors.Is(err, ErrNoQR) {
		t.Fatalf("ScanImage(no QR) = %v, want ErrNoQR", err)
	}
	if !strings.Contains(err.Error(), "no QR code found") {
		t.Errorf("error does not say what happened: %v", err)
	}
	blank := image.NewGray(image.Rect(0, 0, 100, 100))
	if _, err := ScanImage(blank); !errors.Is(err, ErrNoQR) {
		t.Errorf("ScanImage(blank) = %v", err)
	}
	if _, err := ScanImage(image.NewGray(image.Rectangle{})); !errors.Is(err, ErrNoQR) {
		t.Errorf("ScanImage(empty) = %v", err)
	}
}

func qrImage(t testing.TB, text string) image.Image {
	t.Helper()
	png, err := qrcode.Encode(text, qrcode.Medium, 300)
	if err != nil {
		t.Fatal(err)
	}
	img, err := ReadImage(bytes.NewReader(png))
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func TestScanImageOtherQR(t *testing.T) {
	q := pairing.QRContent{}
	if err := json2(t, screen.SampleView(state.ReadyToPair).QRText, &q); err != nil {
		t.Fatal(err)
	}
	for name, text := range map[string]string{
		"other JSON":    `{"ssid":"HospitalGuest","password":"hunter2"}`,
		"URL":           "https://example.com/menu",
		"missing field": strings.Replace(string(q.Marshal()), `"firmwareVersion"`, `"firmware"`, 1),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ScanImage(qrImage(t, text))
			if !errors.Is(err, ErrNotPairingQR) || !errors.Is(err, pairing.ErrQR) {
				t.Fatalf("ScanImage = %v, want ErrNotPairingQR", err)
			}
			if !strings.Contains(err.Error(), "this is not a Z Monitor pairing QR: ") {
				t.Errorf("error: %v", err)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error repeats the QR content: %v", err)
			}
		})
	}
}

func TestScanImageNeverLeaksSecrets(t *testing.T) {
	// A pairing QR whose code fails the check letter: the error must not
	// quote the code or the token.
	v := screen.SampleView(state.ReadyToPair)
	var q pairing.QRContent
	if err := json2(t, v.QRText, &q); err != nil {
		t.Fatal(err)
	}
	bad := q
	bad.PairingCode = q.PairingCode[:10] + other(q.PairingCode[10])
	_, err := ScanImage(qrImage(t, string(bad.Marshal())))
	if !errors.Is(err, ErrNotPairingQR) {
		t.Fatalf("ScanImage = %v", err)
	}
	for _, secret := range []string{bad.PairingCode, q.PairingToken, bad.PairingCode[:7]} {
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error contains a secret %q: %v", secret, err)
		}
	}
}

// other returns a valid code letter other than b.
func other(b byte) string {
	if b == 'A' {
		return "B"
	}
	return "A"
}

func TestSummary(t *testing.T) {
	v := screen.SampleView(state.ReadyToPair)
	var q pairing.QRContent
	if err := json2(t, v.QRText, &q); err != nil {
		t.Fatal(err)
	}
	exp, _ := time.Parse(pairing.TimeLayout, q.ExpiresAt)
	s := Summary(q, exp.Add(-90*time.Second))
	for _, want := range []string{"ZM-001", "SN-2024-001234", "192.168.1.100", "1.2.3", q.ExpiresAt, "in 1m30s"} {
		if !strings.Contains(s, want) {
			t.Errorf("summary %q lacks %q", s, want)
		}
	}
	for _, secret := range []string{q.PairingCode, q.PairingToken} {
		if strings.Contains(s, secret) {
			t.Errorf("summary %q shows a secret", s)
		}
	}
	if s := Summary(q, exp.Add(time.Second)); !strings.Contains(s, "already passed") {
		t.Errorf("expired summary: %q", s)
	}
}

func TestReadImage(t *testing.T) {
	if _, err := ReadImage(bytes.NewReader([]byte("GIF89a not really"))); err == nil {
		t.Error("ReadImage accepted garbage")
	}
	// A PNG header claiming a huge picture is refused before decoding.
	var buf bytes.Buffer
	if err := png.Encode(&buf, image.NewGray(image.Rect(0, 0, 1, 1))); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	// IHDR: type at 12..16, width and height at 16..24, CRC at 29..33.
	copy(b[16:24], []byte{0, 0, 0x40, 0, 0, 0, 0x40, 0})
	binary.BigEndian.PutUint32(b[29:33], crc32.ChecksumIEEE(b[12:29]))
	if _, err := ReadImage(bytes.NewReader(b)); err == nil || !strings.Contains(err.Error(), "limit") {
		t.Errorf("ReadImage(huge) = %v", err)
	}
}

func FuzzReadImage(f *testing.F) {
	var buf bytes.Buffer
	png.Encode(&buf, image.NewGray(image.Rect(0, 0, 4, 4)))
	f.Add(buf.Bytes())
	buf.Reset()
	jpeg.Encode(&buf, image.NewGray(image.Rect(0, 0, 8, 8)), nil)
	f.Add(buf.Bytes())
	f.Add([]byte("\x89PNG\r\n\x1a\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		img, err := ReadImage(bytes.NewReader(b))
		if err != nil {
			return
		}
		if _, err := ScanImage(img); err == nil {
			// Possible in principle, but then it must be a pairing QR.
			return
		}
	})
}

func BenchmarkScanImage(b *testing.B) {
	for _, c := range []struct {
		name string
		img  func(image.Image) image.Image
	}{
		{"screenshot240", func(i image.Image) image.Image { return i }},
		{"camera", func(i image.Image) image.Image { return camera(b, i) }},
	} {
		img, _ := renderReady(b, 240, 240)
		img = c.img(img)
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := ScanImage(img); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestScanImageFallbacks: over a grid of scales and noise levels, ScanImage
// reads every picture gozxing's default attempt reads, and at least three
// that it cannot (the fallbacks are not dead code).
func TestScanImageFallbacks(t *testing.T) {
	img, want := renderReady(t, 240, 240)
	rescued := 0
	for _, f := range []float64{0.8, 0.9, 1, 1.5} {
		for _, amp := range []int{40, 80, 120} {
			im := noisy(scale(img, f), amp)
			bmp, err := gozxing.NewBinaryBitmapFromImage(im)
			if err != nil {
				t.Fatal(err)
			}
			_, plainErr := gzqr.NewQRCodeReader().Decode(bmp, map[gozxing.DecodeHintType]any{gozxing.DecodeHintType_TRY_HARDER: true})
			got, err := ScanImage(im)
			ok := err == nil && bytes.Equal(got, want)
			switch {
			case plainErr == nil && !ok:
				t.Errorf("x%.1f noise %d: the plain decode reads it, ScanImage = %q, %v", f, amp, got, err)
			case plainErr != nil && ok:
				rescued++
			}
		}
	}
	if rescued < 3 {
		t.Errorf("the fallbacks read only %d pictures the plain decode cannot", rescued)
	}
	t.Logf("the fallbacks read %d of 12 pictures the plain decode cannot", rescued)
}
