package qr

import (
	"errors"
	"image"
	"image/color"
	"strings"
	"testing"

	"github.com/makiuchi-d/gozxing"
	gzqr "github.com/makiuchi-d/gozxing/qrcode"
)

func decode(t *testing.T, img image.Image) string {
	t.Helper()
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		t.Fatalf("binary bitmap: %v", err)
	}
	res, err := gzqr.NewQRCodeReader().Decode(bmp, nil)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	return res.GetText()
}

func TestEncodeDecodes(t *testing.T) {
	text := `{"deviceId":"ZM-001","deviceSerial":"SN-2024-001234","ipAddress":"192.168.1.100","pairingCode":"ABC-123-XYZ"}`
	m, err := Encode([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	if m.Size != 17+4*m.Version {
		t.Fatalf("size %d for version %d", m.Size, m.Version)
	}
	const px, quiet = 3, 4
	side := (m.Size + 2*quiet) * px
	img := image.NewGray(image.Rect(0, 0, side, side))
	for i := range img.Pix {
		img.Pix[i] = 0xff
	}
	for y := 0; y < m.Size; y++ {
		for x := 0; x < m.Size; x++ {
			if m.Dark(x, y) {
				for dy := 0; dy < px; dy++ {
					for dx := 0; dx < px; dx++ {
						img.SetGray((quiet+x)*px+dx, (quiet+y)*px+dy, color.Gray{})
					}
				}
			}
		}
	}
	if got := decode(t, img); got != text {
		t.Fatalf("decoded %q, want %q", got, text)
	}
	if m.Dark(-1, 0) || m.Dark(0, m.Size) {
		t.Error("modules outside the symbol must be light")
	}
	if !m.Dark(0, 0) {
		t.Error("the top-left finder pattern corner must be dark")
	}
}

func TestVersions(t *testing.T) {
	// Byte-mode capacities at level M: version 12 holds 287 bytes, 13 holds 331.
	for _, tc := range []struct{ n, version int }{{287, 12}, {288, 13}, {331, 13}, {332, 14}} {
		m, err := Encode([]byte(strings.Repeat("x", tc.n)))
		if err != nil {
			t.Fatal(err)
		}
		if m.Version != tc.version {
			t.Errorf("%d bytes: version %d, want %d", tc.n, m.Version, tc.version)
		}
	}
}

func TestEncodeErrors(t *testing.T) {
	if _, err := Encode(nil); !errors.Is(err, ErrEmpty) {
		t.Errorf("empty: %v", err)
	}
	if _, err := Encode([]byte(strings.Repeat("x", 3000))); err == nil {
		t.Error("3000 bytes encoded; more than version 40 holds at level M")
	}
}

// BenchmarkEncode encodes the spec's example pairing JSON (290 bytes,
// version 13): the cost of each token rotation.
func BenchmarkEncode(b *testing.B) {
	text := []byte(`{"deviceId":"ZM-001","deviceSerial":"SN-2024-001234","ipAddress":"192.168.1.100","pairingCode":"ABC-123-XYW","pairingToken":"` +
		strings.Repeat("A", 102) + `","expiresAt":"2024-11-25T14:30:00Z","firmwareVersion":"1.2.3"}`)
	for b.Loop() {
		if _, err := Encode(text); err != nil {
			b.Fatal(err)
		}
	}
}
