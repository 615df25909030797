package browser

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/chromedp/chromedp"
)

// patches is a test card: colour blocks at known places.
type patch struct {
	r image.Rectangle
	c color.RGBA
}

func testCard(w, h int) (*image.RGBA, []patch) {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	ps := []patch{
		{image.Rect(0, 0, w/2, h/2), color.RGBA{0, 0, 0, 255}},
		{image.Rect(w/2, 0, w, h/2), color.RGBA{255, 255, 255, 255}},
		{image.Rect(0, h/2, w/2, h), color.RGBA{200, 30, 40, 255}},
		{image.Rect(w/2, h/2, w, h), color.RGBA{128, 128, 128, 255}},
	}
	for _, p := range ps {
		for y := p.r.Min.Y; y < p.r.Max.Y; y++ {
			for x := p.r.Min.X; x < p.r.Max.X; x++ {
				img.SetRGBA(x, y, p.c)
			}
		}
	}
	return img, ps
}

type openResult struct {
	OK      bool   `json:"ok"`
	Width   int    `json:"width"`
	Height  int    `json:"height"`
	Name    string `json:"name"`
	Message string `json:"message"`
}

func openCamera(t *testing.T, b *Browser, srv *Server) (context.Context, openResult) {
	t.Helper()
	ctx := b.Tab(t)
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.Origin+"/camera.html"), chromedp.WaitReady(chromedp.CSS("#canvas"))); err != nil {
		t.Fatal(err)
	}
	if secure, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.isSecureContext`)); err != nil || !secure {
		t.Fatalf("page is not a secure context (%v): getUserMedia needs one", err)
	}
	res, err := chromedp.Run(ctx, chromedp.Evaluate[openResult](`cameraTest.open()`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	return ctx, res
}

func TestFakeCameraPlaysTheY4M(t *testing.T) {
	const w, h = 640, 480
	card, patches := testCard(w, h)
	y4m := filepath.Join(t.TempDir(), "card.y4m")
	if err := WriteY4MFile(y4m, 10, card); err != nil {
		t.Fatal(err)
	}
	srv := NewServer(t, http.FileServer(http.Dir("testdata")))
	b := ForTest(t, Options{Camera: CameraFromFile(y4m), Trust: []*x509.Certificate{srv.Cert}})
	ctx, res := openCamera(t, b, srv)
	if !res.OK || res.Width != w || res.Height != h {
		t.Fatalf("camera: %+v, want a %dx%d stream", res, w, h)
	}
	var pts [][2]int
	for _, p := range patches {
		c := p.r.Min.Add(p.r.Max).Div(2)
		pts = append(pts, [2]int{c.X, c.Y})
	}
	got, err := chromedp.Run(ctx, chromedp.Evaluate[[][3]int](fmt.Sprintf(`cameraTest.pixels(%s)`, mustJSON(t, pts))))
	if err != nil {
		t.Fatal(err)
	}
	// Studio-swing BT.601 round trip: within 4 levels. A full-range
	// encoding would show the red patch 11 levels off, a mirrored or
	// flipped frame would swap the patches.
	for i, p := range patches {
		want := [3]int{int(p.c.R), int(p.c.G), int(p.c.B)}
		for c := range 3 {
			if d := got[i][c] - want[c]; d < -4 || d > 4 {
				t.Errorf("patch %v: page sees %v, want %v (±4)", p.r, got[i], want)
				break
			}
		}
	}
}

func TestCameraDeniedAndAbsent(t *testing.T) {
	srv := NewServer(t, http.FileServer(http.Dir("testdata")))
	for _, tc := range []struct {
		camera Camera
		want   string
	}{
		{CameraDenied(), "NotAllowedError"},
		{CameraAbsent(), "NotFoundError"},
	} {
		t.Run(tc.camera.String(), func(t *testing.T) {
			b := ForTest(t, Options{Camera: tc.camera, Trust: []*x509.Certificate{srv.Cert}})
			_, res := openCamera(t, b, srv)
			if res.OK || res.Name != tc.want {
				t.Fatalf("getUserMedia: %+v, want %s", res, tc.want)
			}
		})
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
