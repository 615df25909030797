package browser

import (
	"bytes"
	"crypto/x509"
	"image/color"
	"image/png"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// strictCSP is the policy the web app serves its pages with.
const strictCSP = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; img-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"

func withCSP(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", strictCSP)
		h.ServeHTTP(w, r)
	})
}

func TestAxeFindsSeriousViolationsUnderAStrictCSP(t *testing.T) {
	srv := NewServer(t, withCSP(http.FileServer(http.Dir("testdata"))))
	b := ForTest(t, Options{Trust: []*x509.Certificate{srv.Cert}})
	ctx := b.Tab(t)

	if err := chromedp.Do(ctx, chromedp.Navigate(srv.Origin+"/a11y-bad.html"), chromedp.WaitReady(chromedp.CSS("main"))); err != nil {
		t.Fatal(err)
	}
	vs, err := Axe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]string{}
	for _, v := range vs {
		found[v.ID] = v.Impact
		if v.Impact != "serious" && v.Impact != "critical" {
			t.Errorf("Axe returned a %s violation: %v", v.Impact, v)
		}
	}
	for id, impact := range map[string]string{"image-alt": "critical", "button-name": "critical", "html-has-lang": "serious", "color-contrast": "serious"} {
		if found[id] != impact {
			t.Errorf("violation %s: got impact %q, want %q (all: %v)", id, found[id], impact, vs)
		}
	}

	if err := chromedp.Do(ctx, chromedp.Navigate(srv.Origin+"/a11y-good.html"), chromedp.WaitReady(chromedp.CSS("main"))); err != nil {
		t.Fatal(err)
	}
	vs, err = Axe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vs {
		t.Errorf("accessible page: %v", v)
	}
}

func TestScreenshotAtTabletSizes(t *testing.T) {
	srv := NewServer(t, withCSP(http.FileServer(http.Dir("testdata"))))
	b := ForTest(t, Options{Trust: []*x509.Certificate{srv.Cert}})
	ctx := b.Tab(t)
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.Origin+"/viewport.html"), chromedp.WaitReady(chromedp.CSS("#far"))); err != nil {
		t.Fatal(err)
	}
	for _, vp := range TabletViewports() {
		t.Run(vp.Name, func(t *testing.T) {
			shot, err := Screenshot(ctx, vp)
			if err != nil {
				t.Fatal(err)
			}
			img, err := png.Decode(bytes.NewReader(shot))
			if err != nil {
				t.Fatal(err)
			}
			if b := img.Bounds(); int64(b.Dx()) != vp.Width || int64(b.Dy()) != vp.Height {
				t.Fatalf("screenshot is %dx%d, want %dx%d", b.Dx(), b.Dy(), vp.Width, vp.Height)
			}
			probe := func(x, y int, want color.RGBA) {
				r, g, bl, _ := img.At(x, y).RGBA()
				if got := (color.RGBA{uint8(r >> 8), uint8(g >> 8), uint8(bl >> 8), 255}); got != want {
					t.Errorf("pixel (%d,%d) = %v, want %v", x, y, got, want)
				}
			}
			probe(50, 50, color.RGBA{255, 0, 0, 255})                                // the red square
			probe(int(vp.Width)-20, int(vp.Height)-20, color.RGBA{0, 0, 255, 255})   // the blue square in the far corner
			probe(int(vp.Width)/2, int(vp.Height)/2, color.RGBA{255, 255, 255, 255}) // the page

			touch, err := chromedp.Run(ctx, chromedp.Evaluate[string](`[innerWidth, innerHeight, matchMedia('(pointer: coarse)').matches, screen.orientation.type].join(' ')`))
			if err != nil {
				t.Fatal(err)
			}
			orient := "portrait"
			if vp.Width > vp.Height {
				orient = "landscape"
			}
			if want := strings.Join([]string{itoa(vp.Width), itoa(vp.Height), "true", orient + "-primary"}, " "); touch != want {
				t.Errorf("page sees %q, want %q (width height coarse-pointer orientation)", touch, want)
			}
		})
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
