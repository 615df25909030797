package web

import (
	"crypto/x509"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sync/errgroup"

	"github.com/zmonitor/firmware/internal/testkit/browser"
	"github.com/zmonitor/firmware/internal/testkit/vendored"
)

// benchFrames is how many camera frames each decoder sees per frame size.
const benchFrames = 100

// BenchmarkQRDecoders compares the QR decoders the web app could ship, in
// headless Chromium, on the same camera-like frames of the board's
// READY_TO_PAIR screen: 100 hand-held views (browser.RandomScene: the
// screen at 30–75% of the frame's height, turned, in perspective, blurred,
// some under glare, with sensor noise, JPEG-compressed) spread over the
// 240×240 panel, the largest QR on it, 320×240 and 480×320; at 1280×720 and
// 640×480. Per decoder and size it reports the fraction of frames decoded
// to the right text and the in-page time per frame (canvas draw + pixels +
// decode), median and p95, over every frame.
//
//	make bench-web
//	(go test -run '^$' -bench 'BenchmarkQRDecoders$' -benchtime 100x -timeout 60m ./internal/central/web/)
//
// docs/web-app.md has the numbers and the choice they made. -short (make
// bench) skips it: it renders 200 frames and runs for minutes.
func BenchmarkQRDecoders(b *testing.B) {
	if testing.Short() {
		b.Skip("renders 200 camera frames and drives Chromium for minutes: make bench-web")
	}
	screens := readyScreens(b)
	cands, err := vendored.Load("testdata/decoders")
	if err != nil {
		b.Fatal(err)
	}
	app, err := vendored.Load("static/vendor")
	if err != nil {
		b.Fatal(err)
	}
	zx, ok := app.Package("zxing-wasm")
	if !ok {
		b.Fatal("zxing-wasm is not vendored")
	}
	dirOf := func(name string) string {
		p, ok := cands.Package(name)
		if !ok {
			b.Fatalf("%s is not in testdata/decoders (scripts/vendor-web.sh)", name)
		}
		return p.Dir
	}
	decoders := []map[string]string{
		{"name": "zxing-wasm"},
		{"name": "barcode-detector", "dir": dirOf("barcode-detector"), "wasm": "/static/vendor/" + zx.Dir + "/reader/zxing_reader.wasm"},
		{"name": "qr-scanner", "dir": dirOf("qr-scanner")},
		{"name": "jsqr", "dir": dirOf("jsqr")},
	}

	frames := &frameStore{}
	// qr-scanner runs its decoder in a Worker made from a blob: URL, which
	// the app's policy (worker-src 'none') refuses: the benchmark allows it.
	csp := strings.Replace(ContentSecurityPolicy, "worker-src 'none'", "worker-src blob:", 1)
	srv := appServer(b, frames, nil, csp)
	br := browser.ForTest(b, browser.Options{Trust: []*x509.Certificate{srv.Cert}})

	for _, size := range [][2]int{{1280, 720}, {640, 480}} {
		// The same poses at both sizes (the scene is relative to the frame).
		rng := rand.New(rand.NewPCG(15, 2026))
		urls := make([]string, benchFrames)
		want := make([]string, benchFrames)
		panel := make([]string, benchFrames)
		var g errgroup.Group
		g.SetLimit(4)
		for i := range benchFrames {
			scr := screens[i%len(screens)]
			scene := browser.RandomScene(rng, size[0], size[1])
			want[i], panel[i] = scr.Text, scr.Name
			g.Go(func() error {
				img, err := scene.Render(scr.Img)
				if err != nil {
					return err
				}
				urls[i], err = frames.put(fmt.Sprintf("%dx%d-%03d", size[0], size[1], i), img)
				return err
			})
		}
		if err := g.Wait(); err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("frame=%dx%d", size[0], size[1]), func(b *testing.B) {
			// One tab per decoder; each frame goes through every decoder
			// in turn (the order rotating), so the load of a shared
			// machine falls on all of them alike.
			type tally struct {
				page     *decoderPage
				ms       []float64
				decoded  int
				perPanel map[string][2]int
			}
			tallies := make([]*tally, len(decoders))
			for j, d := range decoders {
				p := openDecoderPage(b, br, srv, d)
				p.decode(b, urls[0]) // warm up: compile the wasm, JIT the script
				tallies[j] = &tally{page: p, perPanel: map[string][2]int{}}
			}
			b.ResetTimer()
			for i := range b.N {
				k := i % benchFrames
				for n := range decoders {
					tl := tallies[(i+n)%len(decoders)]
					r := tl.page.decode(b, urls[k])
					tl.ms = append(tl.ms, r.Ms)
					c := tl.perPanel[panel[k]]
					c[1]++
					if r.Text != nil && *r.Text == want[k] {
						tl.decoded++
						c[0]++
					}
					tl.perPanel[panel[k]] = c
				}
			}
			b.StopTimer()
			b.ReportMetric(0, "ns/op") // the round trips through DevTools are not the decoders'
			for j, d := range decoders {
				tl := tallies[j]
				slices.Sort(tl.ms)
				name := d["name"]
				b.ReportMetric(float64(tl.decoded)/float64(b.N), name+"-decoded/frame")
				b.ReportMetric(quantile(tl.ms, 0.5), name+"-ms-median")
				b.ReportMetric(quantile(tl.ms, 0.95), name+"-ms-p95")
				if b.N < benchFrames {
					continue // the framework's first, one-frame run
				}
				var parts []string
				for _, s := range screens {
					if c := tl.perPanel[s.Name]; c[1] > 0 {
						parts = append(parts, fmt.Sprintf("%s %d/%d", s.Name, c[0], c[1]))
					}
				}
				b.Logf("%-16s decoded %3d/%d  median %6.1f ms  p95 %6.1f ms  (per panel: %s)", name, tl.decoded, b.N,
					quantile(tl.ms, 0.5), quantile(tl.ms, 0.95), strings.Join(parts, ", "))
			}
		})
	}
}

// quantile of sorted values (nearest rank).
func quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}
