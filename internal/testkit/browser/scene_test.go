package browser

import (
	"image"
	"math"
	"testing"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode"
	goqr "github.com/skip2/go-qrcode"
)

// qrScreen is a 240×240 "screen": a QR code of text, black on white.
func qrScreen(t *testing.T, text string) *image.RGBA {
	t.Helper()
	q, err := goqr.New(text, goqr.Medium)
	if err != nil {
		t.Fatal(err)
	}
	q.DisableBorder = false
	src := q.Image(240)
	img := image.NewRGBA(image.Rect(0, 0, 240, 240))
	for y := 0; y < 240; y++ {
		for x := 0; x < 240; x++ {
			img.Set(x, y, src.At(x, y))
		}
	}
	return img
}

func decodeGo(img image.Image) (string, error) {
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		return "", err
	}
	r, err := qrcode.NewQRCodeReader().Decode(bmp, map[gozxing.DecodeHintType]any{gozxing.DecodeHintType_TRY_HARDER: true})
	if err != nil {
		return "", err
	}
	return r.GetText(), nil
}

func TestSceneHeadOnGeometry(t *testing.T) {
	s := Scene{Width: 1280, Height: 720, Size: 0.5, CenterX: 0.5, CenterY: 0.5}
	c, err := s.ScreenCorners(240, 240)
	if err != nil {
		t.Fatal(err)
	}
	// 0.5 of 720 lines: a 360-pixel square around the centre.
	want := [4]image.Point{{460, 180}, {820, 180}, {820, 540}, {460, 540}}
	for i := range c {
		if d := c[i].Sub(want[i]); d.X*d.X+d.Y*d.Y > 1 {
			t.Errorf("corner %d at %v, want %v", i, c[i], want[i])
		}
	}
}

func TestScenePerspectiveAndRoll(t *testing.T) {
	yaw := Scene{Width: 1280, Height: 720, Size: 0.5, CenterX: 0.5, CenterY: 0.5, Yaw: 30}
	c, err := yaw.ScreenCorners(240, 240)
	if err != nil {
		t.Fatal(err)
	}
	left, right := c[3].Y-c[0].Y, c[2].Y-c[1].Y
	if left == right {
		t.Errorf("yaw 30°: left edge %d px, right edge %d px: no perspective", left, right)
	}
	if w := c[1].X - c[0].X; w >= 360 {
		t.Errorf("yaw 30°: top edge %d px wide, want foreshortened below 360", w)
	}
	roll := Scene{Width: 1280, Height: 720, Size: 0.5, CenterX: 0.5, CenterY: 0.5, Roll: 90}
	c, err = roll.ScreenCorners(240, 240)
	if err != nil {
		t.Fatal(err)
	}
	// Turned a quarter clockwise, the screen's top-left corner is top-right.
	if d := c[0].Sub(image.Pt(820, 180)); d.X*d.X+d.Y*d.Y > 2 {
		t.Errorf("roll 90°: top-left corner at %v, want (820,180)", c[0])
	}
}

func TestSceneKeepsTheQRReadableAndIsRepeatable(t *testing.T) {
	const text = "ZM-001 camera view"
	scr := qrScreen(t, text)
	for i, v := range CameraViews(640, 480) {
		if v.Scene.Glare > 0 {
			continue // gozxing's global binarizer is no camera decoder; the browser test covers glare
		}
		t.Run(v.Name, func(t *testing.T) {
			a, err := v.Scene.Render(scr)
			if err != nil {
				t.Fatal(err)
			}
			got, err := decodeGo(a)
			if err != nil || got != text {
				t.Fatalf("decoded %q, %v; want %q", got, err, text)
			}
			if i > 0 {
				return
			}
			b, err := v.Scene.Render(scr)
			if err != nil {
				t.Fatal(err)
			}
			if string(a.Pix) != string(b.Pix) {
				t.Fatal("two renders of one scene differ")
			}
		})
	}
}

// lum is the mean luma of img over r.
func lum(img *image.RGBA, r image.Rectangle) float64 {
	var sum float64
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			c := img.RGBAAt(x, y)
			sum += 0.299*float64(c.R) + 0.587*float64(c.G) + 0.114*float64(c.B)
		}
	}
	return sum / float64(r.Dx()*r.Dy())
}

func TestScenePhotometry(t *testing.T) {
	grey := image.NewRGBA(image.Rect(0, 0, 240, 240))
	for i := range grey.Pix {
		grey.Pix[i] = 128
	}
	base := Scene{Width: 320, Height: 240, Size: 0.6, CenterX: 0.5, CenterY: 0.5}
	plain, err := base.Render(grey)
	if err != nil {
		t.Fatal(err)
	}
	mid := image.Rect(150, 110, 170, 130)
	// The panel's 128 lands between its black (28) and white (232) levels.
	if l := lum(plain, mid); math.Abs(l-(panelBlack+128*(panelWhite-panelBlack)/255)) > 1 {
		t.Errorf("panel grey seen at %.1f", l)
	}
	glare := base
	glare.Glare, glare.GlareX, glare.GlareY, glare.GlareRadius = 0.5, 0.5, 0.5, 0.2
	g, err := glare.Render(grey)
	if err != nil {
		t.Fatal(err)
	}
	if d := lum(g, mid) - lum(plain, mid); d < 100 {
		t.Errorf("glare 0.5 at the centre adds %.1f levels, want about 127", d)
	}
	noisy := base
	noisy.Noise = 8
	n, err := noisy.Render(grey)
	if err != nil {
		t.Fatal(err)
	}
	var ss float64
	for y := mid.Min.Y; y < mid.Max.Y; y++ {
		for x := mid.Min.X; x < mid.Max.X; x++ {
			d := float64(n.RGBAAt(x, y).G) - float64(plain.RGBAAt(x, y).G)
			ss += d * d
		}
	}
	if sd := math.Sqrt(ss / float64(mid.Dx()*mid.Dy())); sd < 6 || sd > 10 {
		t.Errorf("noise 8 gives a standard deviation of %.1f", sd)
	}
	// Blur softens the panel's edge against the bezel.
	edge := func(img *image.RGBA) float64 {
		var m float64
		for x := 20; x < 300; x++ {
			a, b := img.RGBAAt(x, 120), img.RGBAAt(x+1, 120)
			m = math.Max(m, math.Abs(float64(a.G)-float64(b.G)))
		}
		return m
	}
	blurred := base
	blurred.Blur = 1.5
	bl, err := blurred.Render(grey)
	if err != nil {
		t.Fatal(err)
	}
	if edge(bl) >= edge(plain)/2 {
		t.Errorf("blur 2: steepest step %.0f, sharp %.0f: not softened", edge(bl), edge(plain))
	}
}

func TestSceneValidate(t *testing.T) {
	ok := Scene{Width: 640, Height: 480, Size: 0.5, CenterX: 0.5, CenterY: 0.5}
	for name, edit := range map[string]func(*Scene){
		"odd width":  func(s *Scene) { s.Width = 641 },
		"no size":    func(s *Scene) { s.Size = 0 },
		"edge-on":    func(s *Scene) { s.Yaw = 80 },
		"huge blur":  func(s *Scene) { s.Blur = 30 },
		"glare > 1":  func(s *Scene) { s.Glare = 1.5 },
		"noise < 0":  func(s *Scene) { s.Noise = -1 },
		"behind cam": func(s *Scene) { s.Size, s.Yaw = 4, 70 },
	} {
		s := ok
		edit(&s)
		if _, err := s.Render(image.NewRGBA(image.Rect(0, 0, 240, 240))); err == nil {
			t.Errorf("%s: Render accepted %+v", name, s)
		}
	}
	if _, err := ok.Render(image.NewRGBA(image.Rect(0, 0, 4, 4))); err == nil {
		t.Error("Render accepted a 4x4 screenshot")
	}
}
