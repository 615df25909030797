package tablet

import (
	"errors"
	"fmt"
	"image"
	"image/draw"
	"io"
	"time"

	// Registered decoders: a tablet camera gives JPEG, a screenshot PNG.
	_ "image/jpeg"
	_ "image/png"

	"github.com/makiuchi-d/gozxing"
	gzqr "github.com/makiuchi-d/gozxing/qrcode"
	xdraw "golang.org/x/image/draw"

	"github.com/zmonitor/firmware/internal/proto/pairing"
)

// Scan errors. ScanImage wraps one of them.
var (
	// ErrNoQR: no QR code was found in the picture.
	ErrNoQR = errors.New("no QR code found in the picture: fill the frame with the monitor's QR code, hold still, avoid glare")
	// ErrUnreadableQR: a QR code was found but its content could not be
	// read (blur, glare, too small, partly hidden).
	ErrUnreadableQR = errors.New("a QR code is in the picture but could not be read: come closer, hold still, avoid glare")
	// ErrNotPairingQR: a QR code was read but it is not a Z Monitor pairing
	// QR code.
	ErrNotPairingQR = errors.New("this is not a Z Monitor pairing QR")
)

// Image limits.
const (
	// MaxImagePixels bounds the pictures ReadImage decodes (a 48 MP camera
	// picture is 48e6).
	MaxImagePixels = 64 << 20
	// scanMaxSide is the longest side the decoder works on; larger
	// pictures are scaled down first (the QR still spans hundreds of
	// pixels, and decoding a 12 MP picture takes seconds).
	scanMaxSide = 1600
	// scanMinSide: pictures whose shorter side is below it get an
	// enlarged attempt too.
	scanMinSide = 480
)

// ReadImage decodes a PNG or JPEG picture from r, checking its dimensions
// before decoding the pixels so that a hostile file cannot make it allocate
// without bound.
func ReadImage(r io.ReadSeeker) (image.Image, error) {
	cfg, format, err := image.DecodeConfig(r)
	if err != nil {
		return nil, fmt.Errorf("read picture: %w (PNG or JPEG expected)", err)
	}
	if format != "png" && format != "jpeg" {
		return nil, fmt.Errorf("read picture: %s pictures are not supported (PNG or JPEG expected)", format)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || int64(cfg.Width)*int64(cfg.Height) > MaxImagePixels {
		return nil, fmt.Errorf("read picture: %d×%d pixels, limit %d pixels", cfg.Width, cfg.Height, MaxImagePixels)
	}
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("read picture: %w", err)
	}
	img, _, err := image.Decode(r)
	if err != nil {
		return nil, fmt.Errorf("read picture: %w", err)
	}
	return img, nil
}

// ScanImage finds the pairing QR code in a camera picture or a screenshot
// and returns its text, checked with pairing.ParseQR (the token's signature
// is the Central Station's to check). It tries the picture as it is, then
// with a global threshold, then a cleaned-up black-and-white copy, then a
// rescaled copy. Errors wrap ErrNoQR, ErrUnreadableQR or ErrNotPairingQR;
// they never contain the QR's text (it holds the pairing code while the
// session lasts).
func ScanImage(img image.Image) ([]byte, error) {
	if img == nil || img.Bounds().Empty() {
		return nil, fmt.Errorf("scan: empty picture: %w", ErrNoQR)
	}
	text, err := decodeQR(img)
	if err != nil {
		return nil, fmt.Errorf("scan: %w", err)
	}
	if _, err := pairing.ParseQR(text); err != nil {
		return nil, fmt.Errorf("scan: %w: %w", ErrNotPairingQR, err)
	}
	return text, nil
}

// decodeQR returns the text of the first QR code one of the attempts finds.
func decodeQR(img image.Image) ([]byte, error) {
	gray := toGray(img)
	if b := gray.Bounds(); max(b.Dx(), b.Dy()) > scanMaxSide {
		gray = scaleGray(gray, float64(scanMaxSide)/float64(max(b.Dx(), b.Dy())))
	}
	// Each attempt builds its own bitmap: gozxing caches the black matrix.
	attempts := []func() gozxing.Binarizer{
		func() gozxing.Binarizer { return gozxing.NewHybridBinarizer(gozxing.NewLuminanceSourceFromImage(gray)) },
		func() gozxing.Binarizer {
			return gozxing.NewGlobalHistgramBinarizer(gozxing.NewLuminanceSourceFromImage(gray))
		},
		func() gozxing.Binarizer {
			return gozxing.NewHybridBinarizer(gozxing.NewLuminanceSourceFromImage(threshold(blur3(gray))))
		},
	}
	if b := gray.Bounds(); min(b.Dx(), b.Dy()) < scanMinSide {
		attempts = append(attempts, func() gozxing.Binarizer {
			return gozxing.NewHybridBinarizer(gozxing.NewLuminanceSourceFromImage(threshold(scaleGray(gray, 2))))
		})
	} else {
		attempts = append(attempts, func() gozxing.Binarizer {
			return gozxing.NewHybridBinarizer(gozxing.NewLuminanceSourceFromImage(threshold(scaleGray(blur3(gray), 0.5))))
		})
	}
	// PURE_BARCODE is deliberately absent: gozxing switches to its
	// pure-barcode path when the key is present, whatever its value.
	hints := map[gozxing.DecodeHintType]any{gozxing.DecodeHintType_TRY_HARDER: true}
	reader := gzqr.NewQRCodeReader()
	seen := false
	for _, bin := range attempts {
		bmp, err := gozxing.NewBinaryBitmap(bin())
		if err != nil {
			continue
		}
		res, err := reader.Decode(bmp, hints)
		if err == nil {
			return []byte(res.GetText()), nil
		}
		var nf gozxing.NotFoundException
		if !errors.As(err, &nf) {
			seen = true // found, but checksum or format failed
		}
	}
	if seen {
		return nil, ErrUnreadableQR
	}
	return nil, ErrNoQR
}

// toGray converts img to 8-bit gray with its origin at 0,0.
func toGray(img image.Image) *image.Gray {
	b := img.Bounds()
	g := image.NewGray(image.Rect(0, 0, b.Dx(), b.Dy()))
	draw.Draw(g, g.Bounds(), img, b.Min, draw.Src)
	return g
}

// scaleGray resizes g by factor f (bilinear).
func scaleGray(g *image.Gray, f float64) *image.Gray {
	b := g.Bounds()
	w, h := max(1, int(float64(b.Dx())*f+0.5)), max(1, int(float64(b.Dy())*f+0.5))
	out := image.NewGray(image.Rect(0, 0, w, h))
	xdraw.BiLinear.Scale(out, out.Bounds(), g, b, xdraw.Src, nil)
	return out
}

// blur3 is a 3×3 box blur: it removes the camera's pixel noise that breaks
// a threshold into speckles.
func blur3(g *image.Gray) *image.Gray {
	b := g.Bounds()
	w, h := b.Dx(), b.Dy()
	out := image.NewGray(b)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			sum, n := 0, 0
			for dy := -1; dy <= 1; dy++ {
				yy := y + dy
				if yy < 0 || yy >= h {
					continue
				}
				row := g.Pix[yy*g.Stride:]
				for dx := -1; dx <= 1; dx++ {
					xx := x + dx
					if xx < 0 || xx >= w {
						continue
					}
					sum += int(row[xx])
					n++
				}
			}
			out.Pix[y*out.Stride+x] = uint8(sum / n)
		}
	}
	return out
}

// threshold binarizes g at its Otsu threshold (black 0, white 255).
func threshold(g *image.Gray) *image.Gray {
	var hist [256]int
	b := g.Bounds()
	for y := 0; y < b.Dy(); y++ {
		for _, v := range g.Pix[y*g.Stride : y*g.Stride+b.Dx()] {
			hist[v]++
		}
	}
	t := otsu(hist)
	out := image.NewGray(b)
	for y := 0; y < b.Dy(); y++ {
		src := g.Pix[y*g.Stride : y*g.Stride+b.Dx()]
		dst := out.Pix[y*out.Stride:]
		for x, v := range src {
			if int(v) > t {
				dst[x] = 255
			}
		}
	}
	return out
}

// otsu returns the threshold that maximizes the between-class variance of
// the histogram.
func otsu(hist [256]int) int {
	total, sum := 0, 0
	for v, n := range hist {
		total += n
		sum += v * n
	}
	best, bestVar := 127, -1.0
	wB, sumB := 0, 0
	for t := 0; t < 256; t++ {
		wB += hist[t]
		if wB == 0 {
			continue
		}
		wF := total - wB
		if wF == 0 {
			break
		}
		sumB += t * hist[t]
		mB := float64(sumB) / float64(wB)
		mF := float64(sum-sumB) / float64(wF)
		v := float64(wB) * float64(wF) * (mB - mF) * (mB - mF)
		if v > bestVar {
			best, bestVar = t, v
		}
	}
	return best
}

// Summary describes a pairing QR for the technician without its secrets:
// device ID, serial, address, firmware and expiry (with the time left by
// the tablet's clock, now). The pairing code and the token are never shown.
func Summary(q pairing.QRContent, now time.Time) string {
	exp := q.ExpiresAt
	if t, err := time.Parse(pairing.TimeLayout, q.ExpiresAt); err == nil {
		if left := t.Sub(now); left > 0 {
			exp += fmt.Sprintf(" (in %s by this tablet's clock)", left.Round(time.Second))
		} else {
			exp += " (already passed by this tablet's clock; the Central Station decides)"
		}
	}
	return fmt.Sprintf("device %s (serial %s, firmware %s) at %s, QR valid until %s",
		q.DeviceID, q.DeviceSerial, q.FirmwareVersion, q.IPAddress, exp)
}
