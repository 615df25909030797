package web

import (
	"crypto/x509"
	"fmt"
	"image"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"golang.org/x/sync/errgroup"

	"github.com/zmonitor/firmware/internal/testkit/browser"
)

// TestDecoderReadsEveryCameraView feeds the web app's decoder the board's
// READY_TO_PAIR screen on every panel as a camera sees it (head-on, in
// perspective, blurred, under glare, small in the frame, all at once; at
// 1280×720 and 640×480), in headless Chromium under the app's CSP.
func TestDecoderReadsEveryCameraView(t *testing.T) {
	frames := &frameStore{}
	log := &requestLog{}
	srv := appServer(t, frames, log, "")
	b := browser.ForTest(t, browser.Options{Trust: []*x509.Certificate{srv.Cert}})
	page := openDecoderPage(t, b, srv, map[string]string{"name": "zxing-wasm"})
	if page.engine != "zxing-wasm" {
		t.Fatalf("engine %q, want zxing-wasm (Linux Chromium has no BarcodeDetector)", page.engine)
	}
	// The device's own 240×240 panel in every view at both sizes; the
	// other panels and the largest QR in the hardest view at 640×480 (the
	// benchmark covers the rest: 100 hand-held views per size).
	type job struct {
		scr  readyScreen
		view browser.View
	}
	var jobs []job
	for i, scr := range readyScreens(t) {
		for _, size := range [][2]int{{1280, 720}, {640, 480}} {
			for _, v := range browser.CameraViews(size[0], size[1]) {
				if i == 0 || strings.HasPrefix(v.Name, "all-") && size[0] == 640 {
					jobs = append(jobs, job{scr, v})
				}
			}
		}
	}
	urls := make([]string, len(jobs))
	var g errgroup.Group
	for i, j := range jobs {
		g.Go(func() error {
			img, err := j.view.Scene.Render(j.scr.Img)
			if err != nil {
				return err
			}
			urls[i], err = frames.put(fmt.Sprintf("%s-%s", j.scr.Name, j.view.Name), img)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	for i, j := range jobs {
		t.Run(j.scr.Name+"/"+j.view.Name, func(t *testing.T) {
			r := page.decode(t, urls[i])
			if r.Text == nil || *r.Text != j.scr.Text {
				t.Errorf("decoded %v, want the screen's QR text", r.Text)
			}
		})
	}
	if !log.has("/reader/zxing_reader.wasm") {
		t.Error("the page never asked this server for zxing_reader.wasm")
	}
}

type scanResult struct {
	Text   *string `json:"text"`
	Engine string  `json:"engine"`
	Frames int     `json:"frames"`
	Width  int     `json:"width"`
	Height int     `json:"height"`
}

// TestScanReadsTheScreenThroughTheFakeCamera is the scan page's path end to
// end: Chromium's fake camera plays a Y4M of the board's READY_TO_PAIR
// screen as a hand-held camera sees it, the page reads video frames and the
// web app's decoder finds the QR text.
func TestScanReadsTheScreenThroughTheFakeCamera(t *testing.T) {
	scr := readyScreens(t)[0]
	for _, size := range [][2]int{{1280, 720}, {640, 480}} {
		t.Run(fmt.Sprintf("%dx%d", size[0], size[1]), func(t *testing.T) {
			var view browser.View
			for _, v := range browser.CameraViews(size[0], size[1]) {
				if strings.HasPrefix(v.Name, "all-") {
					view = v
				}
			}
			// Frames that differ in their sensor noise, as video does.
			var video []image.Image
			for seed := range uint64(2) {
				s := view.Scene
				s.Seed = seed
				img, err := s.Render(scr.Img)
				if err != nil {
					t.Fatal(err)
				}
				video = append(video, img)
			}
			y4m := filepath.Join(t.TempDir(), "ready-to-pair.y4m")
			if err := browser.WriteY4MFile(y4m, 15, video...); err != nil {
				t.Fatal(err)
			}
			log := &requestLog{}
			srv := appServer(t, nil, log, "")
			b := browser.ForTest(t, browser.Options{Camera: browser.CameraFromFile(y4m), Trust: []*x509.Certificate{srv.Cert}})
			ctx := b.Tab(t)
			if err := chromedp.Do(ctx, chromedp.Navigate(srv.Origin+"/test/scan.html"), chromedp.WaitReady(chromedp.CSS("canvas"))); err != nil {
				t.Fatal(err)
			}
			if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`typeof scanTest === 'object'`, chromedp.WithPollingTimeout(30*time.Second))); err != nil {
				t.Fatalf("scan.js did not load: %v", err)
			}
			r, err := chromedp.Run(ctx, chromedp.Evaluate[scanResult](`scanTest.scan({maxFrames: 60})`, chromedp.EvalAwaitPromise))
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s decoded after %d frames of %dx%d video", r.Engine, r.Frames, r.Width, r.Height)
			if r.Width != size[0] || r.Height != size[1] {
				t.Errorf("camera gave %dx%d, want %dx%d", r.Width, r.Height, size[0], size[1])
			}
			if r.Text == nil || *r.Text != scr.Text {
				t.Fatalf("scan read %v in %d frames, want the screen's QR text", r.Text, r.Frames)
			}
			if !log.has("/reader/zxing_reader.wasm") {
				t.Error("the page never asked this server for zxing_reader.wasm")
			}
		})
	}
}
