package web

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/jpeg"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/zmonitor/firmware/internal/fw/screen"
	"github.com/zmonitor/firmware/internal/proto/pairing"
	"github.com/zmonitor/firmware/internal/proto/state"
	"github.com/zmonitor/firmware/internal/testkit/browser"
)

// readyScreen is a READY_TO_PAIR screen as the board shows it (the
// firmware's own renderer: the QEMU board's screendump is this frame) and
// the text of its QR code.
type readyScreen struct {
	Name string
	Img  image.Image
	Text string
}

// readyScreens renders READY_TO_PAIR on each panel size the firmware
// supports, and the largest QR content a session can show (QR version 13,
// 3 pixels per module) on the 240×240 panel.
func readyScreens(t testing.TB) []readyScreen {
	t.Helper()
	r, err := screen.NewRenderer()
	if err != nil {
		t.Fatal(err)
	}
	sample := screen.SampleView(state.ReadyToPair)
	q, err := pairing.ParseQR(sample.QRText)
	if err != nil {
		t.Fatal(err)
	}
	worst := sample
	worst.QRText = pairing.QRContent{
		DeviceID: strings.Repeat("D", 20), DeviceSerial: strings.Repeat("S", 24), IPAddress: "255.255.255.255",
		PairingCode: "WWW-888-MMM", PairingToken: q.PairingToken, ExpiresAt: "2026-12-31T23:59:59Z",
		FirmwareVersion: strings.Repeat("9", 24),
	}.Marshal()
	worst.PairingCode = "WWW-888-MMM"
	if len(worst.QRText) != pairing.MaxQRBytes {
		t.Fatalf("worst-case QR is %d bytes, want %d", len(worst.QRText), pairing.MaxQRBytes)
	}
	var out []readyScreen
	for _, c := range []struct {
		name string
		v    screen.View
		w, h int
	}{
		{"240x240", sample, 240, 240},
		{"240x240-largest-qr", worst, 240, 240},
		{"320x240", sample, 320, 240},
		{"480x320", sample, 480, 320},
	} {
		f, err := r.Render(c.v, c.w, c.h)
		if err != nil {
			t.Fatalf("render %s: %v", c.name, err)
		}
		out = append(out, readyScreen{Name: c.name, Img: f.Img, Text: string(c.v.QRText)})
	}
	return out
}

// frameStore serves camera frames to the page as JPEG (a camera's MJPEG
// quality), under /frames/<name>.jpg.
type frameStore struct {
	mu     sync.Mutex
	frames map[string][]byte
}

func (s *frameStore) put(name string, img image.Image) (string, error) {
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 85}); err != nil {
		return "", fmt.Errorf("frame %s: %w", name, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.frames == nil {
		s.frames = map[string][]byte{}
	}
	s.frames[name] = buf.Bytes()
	return "/frames/" + name + ".jpg", nil
}

func (s *frameStore) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/frames/"), ".jpg")
	s.mu.Lock()
	b, ok := s.frames[name]
	s.mu.Unlock()
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "image/jpeg")
	w.Write(b)
}

// requestLog records the paths the browser asked the server for.
type requestLog struct {
	mu    sync.Mutex
	paths []string
}

func (l *requestLog) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l.mu.Lock()
		l.paths = append(l.paths, r.URL.Path)
		l.mu.Unlock()
		h.ServeHTTP(w, r)
	})
}

func (l *requestLog) has(suffix string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, p := range l.paths {
		if strings.HasSuffix(p, suffix) {
			return true
		}
	}
	return false
}

// appServer serves the web app's static files under /static/ with the
// app's Content-Security-Policy, the test pages under /test/, the
// comparison's decoders under /testdata/decoders/ and frames under
// /frames/. csp overrides the policy ("" keeps the app's).
func appServer(t testing.TB, frames *frameStore, log *requestLog, csp string) *browser.Server {
	t.Helper()
	if csp == "" {
		csp = ContentSecurityPolicy
	}
	mux := http.NewServeMux()
	mux.Handle("/static/", http.StripPrefix("/static/", http.FileServerFS(Static())))
	mux.Handle("/test/", http.StripPrefix("/test/", http.FileServer(http.Dir("testdata/pages"))))
	mux.Handle("/testdata/decoders/", http.StripPrefix("/testdata/decoders/", http.FileServer(http.Dir("testdata/decoders"))))
	if frames != nil {
		mux.Handle("/frames/", frames)
	}
	var h http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", csp)
		w.Header().Set("X-Content-Type-Options", "nosniff")
		mux.ServeHTTP(w, r)
	})
	if log != nil {
		h = log.wrap(h)
	}
	return browser.NewServer(t, h)
}

// decodeResult is one frame through one decoder, timed in the page from
// the frame's pixels being drawn to the text coming out.
type decodeResult struct {
	Text *string `json:"text"`
	Ms   float64 `json:"ms"`
}

// decoderPage is a tab on testdata/pages/frames.html with one decoder loaded.
type decoderPage struct {
	ctx    context.Context
	engine string
}

// openDecoderPage loads the page and the decoder named by spec (a JSON
// object frames.js understands: {"name": ..., "dir": ...}).
func openDecoderPage(t testing.TB, b *browser.Browser, srv *browser.Server, spec any) *decoderPage {
	t.Helper()
	ctx := b.Tab(t)
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.Origin+"/test/frames.html"), chromedp.WaitReady(chromedp.CSS("canvas"))); err != nil {
		t.Fatal(err)
	}
	js, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	ready, err := chromedp.Run(ctx, chromedp.Poll[bool](`typeof framesTest === 'object'`, chromedp.WithPollingTimeout(30*time.Second)))
	if err != nil || !ready {
		t.Fatalf("frames.js did not load: %v", err)
	}
	engine, err := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(`framesTest.load(%s)`, js), chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("load decoder %s: %v", js, err)
	}
	return &decoderPage{ctx: ctx, engine: engine}
}

// decode hands the page one frame (by URL) and returns what the decoder read.
func (p *decoderPage) decode(t testing.TB, url string) decodeResult {
	t.Helper()
	r, err := chromedp.Run(p.ctx, chromedp.Evaluate[decodeResult](fmt.Sprintf(`framesTest.decode(%q)`, url), chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("decode %s: %v", url, err)
	}
	return r
}
