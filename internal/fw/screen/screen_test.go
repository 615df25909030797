package screen

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/makiuchi-d/gozxing"
	gzqr "github.com/makiuchi-d/gozxing/qrcode"

	"github.com/zmonitor/firmware/drivers/rgb565"
	"github.com/zmonitor/firmware/internal/fw/fault"
	"github.com/zmonitor/firmware/internal/fw/qr"
	"github.com/zmonitor/firmware/internal/proto/failure"
	"github.com/zmonitor/firmware/internal/proto/pairing"
	"github.com/zmonitor/firmware/internal/proto/state"
)

var update = flag.Bool("update", false, "rewrite the golden PNGs in testdata/")

var sizes = []image.Point{{240, 240}, {320, 240}, {480, 320}}

func newRenderer(t testing.TB) *Renderer {
	t.Helper()
	r, err := NewRenderer()
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// decodeQR decodes the QR in img with gozxing.
func decodeQR(img image.Image) (string, error) {
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		return "", err
	}
	res, err := gzqr.NewQRCodeReader().Decode(bmp, map[gozxing.DecodeHintType]any{gozxing.DecodeHintType_TRY_HARDER: true})
	if err != nil {
		return "", err
	}
	return res.GetText(), nil
}

// scale resizes img by f with nearest-neighbour sampling.
func scale(img image.Image, f float64) *image.RGBA {
	b := img.Bounds()
	w, h := int(float64(b.Dx())*f), int(float64(b.Dy())*f)
	out := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			out.Set(x, y, img.At(b.Min.X+int(float64(x)/f), b.Min.Y+int(float64(y)/f)))
		}
	}
	return out
}

// fromRGB565 expands big-endian RGB565 back to RGBA the way a panel shows it.
func fromRGB565(b []byte, w, h int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for i := 0; i < w*h; i++ {
		c := uint16(b[2*i])<<8 | uint16(b[2*i+1])
		r, g, bl := byte(c>>11)<<3, byte(c>>5&0x3f)<<2, byte(c&0x1f)<<3
		img.Pix[4*i], img.Pix[4*i+1], img.Pix[4*i+2], img.Pix[4*i+3] = r|r>>5, g|g>>6, bl|bl>>5, 0xff
	}
	return img
}

func roundTrip565(t *testing.T, img *image.RGBA) *image.RGBA {
	t.Helper()
	b := make([]byte, img.Rect.Dx()*img.Rect.Dy()*2)
	rgb565.Encode(b, img.Rect.Dx()*2, img, img.Rect, rgb565.BigEndian)
	return fromRGB565(b, img.Rect.Dx(), img.Rect.Dy())
}

// worstQR is pairing content at the pairing package's limit (MaxQRBytes):
// the largest QR a session can show.
func worstQR(t testing.TB) []byte {
	q := pairing.QRContent{
		DeviceID:        strings.Repeat("D", 20),
		DeviceSerial:    strings.Repeat("S", 24),
		IPAddress:       "255.255.255.255",
		PairingCode:     "WWW-888-MMM",
		PairingToken:    sampleToken(),
		ExpiresAt:       "2026-12-31T23:59:59Z",
		FirmwareVersion: strings.Repeat("9", 24),
	}
	b := q.Marshal()
	if len(b) != pairing.MaxQRBytes {
		t.Fatalf("worst-case QR is %d bytes, want pairing.MaxQRBytes = %d", len(b), pairing.MaxQRBytes)
	}
	return b
}

// views returns the sample view of every state and worst cases: the longest
// texts each screen may show.
func views(t testing.TB) map[string]View {
	const label = "NEONATAL-ICU-BED-12-MONITOR-WEST" // 32 characters
	long := func(v View) View {
		v.DeviceLabel, v.DeviceID, v.DeviceSerial = label, "ZM-0123456789-0123456789-0123456", "SN-2024-0123456789-0123456789-01"
		v.IPAddress = "255.255.255.255"
		return v
	}
	m := map[string]View{}
	for _, s := range state.All {
		m[s.String()] = SampleView(s)
		m[s.String()+"/long"] = long(SampleView(s))
	}
	ready := long(SampleView(state.ReadyToPair))
	ready.QRText, ready.PairingCode, ready.Remaining = worstQR(t), "WWW-888-MMM", 10*time.Minute
	m["READY_TO_PAIR/worst"] = ready
	locked := long(SampleView(state.Unprovisioned))
	locked.Locked = 9*time.Minute + 59*time.Second
	m["UNPROVISIONED/locked"] = locked
	for c := failure.None + 1; c.String() != fmt.Sprintf("CODE(%d)", int(c)); c++ {
		v := long(SampleView(state.ProvisioningFailed))
		v.Failure = c
		v.FailureDetail = "server certificate not valid for monitoring.hospital.example.com"
		m["PROVISIONING_FAILED/"+c.String()] = v
	}
	for _, s := range []state.State{state.PairingReceived, state.ApplyingConfig, state.TestingConnection} {
		v := long(SampleView(s))
		v.Progress = "Checking the signer's certificate chain"
		m[s.String()+"/worst"] = v
	}
	prov := long(SampleView(state.Provisioned))
	prov.ServerHost = "central-monitoring-station-01.east-wing.hospital.example.org"
	m["PROVISIONED/worst"] = prov
	// The info pages the line under a 240×240 QR shows in turn.
	for _, base := range []string{"READY_TO_PAIR", "READY_TO_PAIR/long", "READY_TO_PAIR/worst"} {
		for page, left := range map[string]time.Duration{"instruction": 9*time.Minute + 56*time.Second, "id": 9*time.Minute + 47*time.Second, "ip": 9*time.Minute + 38*time.Second} {
			v := m[base]
			v.Remaining = left
			m[base+"/"+page] = v
		}
	}
	expired := long(SampleView(state.Unprovisioned))
	expired.SessionExpired = true
	m["UNPROVISIONED/expired"] = expired
	lockedFail := long(SampleView(state.ProvisioningFailed))
	lockedFail.Failure, lockedFail.Locked = failure.PairingCodeMismatch, 15*time.Minute
	m["PROVISIONING_FAILED/locked"] = lockedFail
	flt := SampleView(state.Unprovisioned)
	flt.Fault = fault.TPMKeys
	m["FAULT"] = flt
	for _, fl := range fault.All() {
		v := long(flt)
		v.Fault = fl
		m["FAULT/"+fl.Code()] = v
	}
	// Every state's screen but the pairing screen, with the longest
	// warning bar (a fault screen shows none: the firmware stopped).
	var names []string
	for name, v := range m {
		if v.State != state.ReadyToPair && v.Fault == fault.None {
			names = append(names, name)
		}
	}
	for _, name := range names {
		v := m[name]
		v.Warning = fault.AuditTampered
		if v.State == state.Provisioned {
			v.Notice = "Certificate revoked — contact biomedical engineering (CERTIFICATE_REVOKED)"
		}
		m[name+"/warning"] = v
	}
	return m
}

// TestWarningBar: a warning is said in a red bar at the bottom of every
// screen but the pairing screen, with its code, under the state's own
// text; the pairing screen keeps its QR as it was.
func TestWarningBar(t *testing.T) {
	r := newRenderer(t)
	for _, sz := range sizes {
		for _, s := range state.All {
			v := SampleView(s)
			plain, err := r.Render(v, sz.X, sz.Y)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range fault.AllWarnings() {
				v.Warning = w
				f, err := r.Render(v, sz.X, sz.Y)
				if err != nil {
					t.Fatalf("%v %v %v: %v", s, w, sz, err)
				}
				if s == state.ReadyToPair {
					if f.QR != plain.QR || f.ModulePx != plain.ModulePx {
						t.Errorf("%v: the warning moved the QR: %v %d px, was %v %d px", sz, f.QR, f.ModulePx, plain.QR, plain.ModulePx)
					}
					continue
				}
				text := joinTexts(f)
				if !strings.Contains(text, w.String()+" ("+w.Code()+")") || !strings.Contains(text, "Contact biomedical engineering") {
					t.Errorf("%v %v %v: warning not on the screen: %q", s, w, sz, text)
				}
				if got := f.Img.RGBAAt(1, sz.Y-2); got != red {
					t.Errorf("%v %v %v: bottom-left pixel %v, want the warning's red", s, w, sz, got)
				}
				if f.Truncated {
					t.Errorf("%v %v %v: truncated", s, w, sz)
				}
			}
		}
	}
}

// joinTexts is every line of text of f, in drawing order.
func joinTexts(f *Frame) string {
	var b strings.Builder
	for _, tb := range f.Texts {
		b.WriteString(tb.Text + "\n")
	}
	return b.String()
}

// TestFaultScreen: a fault replaces whatever the state would show, names
// what failed and offers no button prompt (the firmware cannot act on it).
func TestFaultScreen(t *testing.T) {
	r := newRenderer(t)
	for _, s := range []state.State{state.Unprovisioned, state.Provisioned, state.ReadyToPair} {
		v := SampleView(s)
		v.Fault = fault.TPMKeys
		f, err := r.Render(v, 240, 240)
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		var texts []string
		for _, tb := range f.Texts {
			texts = append(texts, tb.Text)
		}
		all := strings.Join(texts, "|")
		for _, want := range []string{"Device fault", "TPM keys unavailable", "Fault code F-TPM-01", "ICU-MON-04"} {
			if !strings.Contains(all, want) {
				t.Errorf("%s: fault screen lacks %q: %q", s, want, all)
			}
		}
		for _, never := range []string{"Press", "retry", "Provisioned"} {
			if strings.Contains(all, never) {
				t.Errorf("%s: fault screen shows %q: %q", s, never, all)
			}
		}
		if !f.QR.Empty() || f.TimerText() != "" {
			t.Errorf("%s: fault screen has a QR %v or countdown %q", s, f.QR, f.TimerText())
		}
	}
	// A fault after the same state's screen is a new screen, not a tick.
	a := SampleView(state.Unprovisioned)
	b := a
	b.Fault = fault.TPMKeys
	if sameScreen(a, b) {
		t.Error("sameScreen ignores Fault")
	}
}

// TestPairingStripPages: on 240×240 the line under the QR shows the code
// and the countdown, and in turn the instruction, the device ID and the IP
// address: the code for 6 s of every 9, each info page for 3 s, the
// instruction first; the QR never changes; a second's tick pushes the
// countdown, or the line when the page changes, and the panel is always
// what a full render of the same view draws.
func TestPairingStripPages(t *testing.T) {
	for _, name := range []string{"READY_TO_PAIR", "READY_TO_PAIR/long", "READY_TO_PAIR/worst"} {
		v := views(t)[name]
		v.Remaining = 10 * time.Minute
		d := newRecorder(240, 240)
		s, err := New(d)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Show(v); err != nil {
			t.Fatal(err)
		}
		d.take()
		first := s.Frame()
		qrRect := first.QR
		wantQR := cropPix(first.Img, qrRect)
		var order []string
		last := ""
		full := newRenderer(t) // warm; its last frame is dropped before each use
		for secs := 600; secs >= 0; secs-- {
			v.Remaining = time.Duration(secs) * time.Second
			if err := s.Show(v); err != nil {
				t.Fatal(err)
			}
			f := s.Frame()
			text := f.Texts[f.strip.textsFrom].Text
			isCode := text == v.PairingCode
			if want := secs%9 >= 3; isCode != want {
				t.Fatalf("%s at %d s: line shows %q", name, secs, text)
			}
			pushed := d.take()
			if text != last {
				order = append(order, text)
				if secs != 600 && (len(pushed) != 1 || pushed[0] != f.strip.rect) {
					t.Fatalf("%s at %d s: page change pushed %v, want the line %v", name, secs, pushed, f.strip.rect)
				}
				full.lastFrame = nil // a render from scratch, not a tick of the last one
				samePixels(t, full, d.panel, v)
				if !bytes.Equal(cropPix(d.panel, qrRect), wantQR) {
					t.Fatalf("%s at %d s: the QR changed", name, secs)
				}
				last = text
			} else if len(pushed) > 1 || len(pushed) == 1 && pushed[0] != f.Timer {
				t.Fatalf("%s at %d s: tick pushed %v", name, secs, pushed)
			}
		}
		id, ip := "ID "+v.DeviceID, "IP "+v.IPAddress
		// Pages in order after the code: instruction, then ID and IP
		// (apart when they do not fit together beside the countdown).
		if len(order) < 7 || order[0] != v.PairingCode || order[1] != pairInstruction || order[2] != v.PairingCode ||
			order[3] != id && order[3] != id+"  "+ip {
			t.Fatalf("%s: pages %q", name, order)
		}
		seen := strings.Join(order, "|")
		for _, want := range []string{pairInstruction, v.DeviceID, v.IPAddress} {
			if !strings.Contains(seen, want) {
				t.Errorf("%s: %q never shown: %q", name, want, order)
			}
		}
	}
}

// isPageView reports whether views() named a view after a page of the line
// under the QR.
func isPageView(name string) bool {
	for _, p := range []string{"/instruction", "/id", "/ip"} {
		if strings.HasSuffix(name, p) {
			return true
		}
	}
	return false
}

func cropPix(img *image.RGBA, r image.Rectangle) []byte {
	var b []byte
	for y := r.Min.Y; y < r.Max.Y; y++ {
		b = append(b, img.Pix[img.PixOffset(r.Min.X, y):img.PixOffset(r.Max.X, y)]...)
	}
	return b
}

// screenText is every line of text f shows, joined with spaces.
func screenText(f *Frame) string {
	var b strings.Builder
	for _, tb := range f.Texts {
		if tb.Text != timerTemplate {
			b.WriteString(tb.Text + " ")
		}
	}
	return b.String()
}

// TestErrorPathScreens: what a technician reads after a session ran out,
// after the wrong code that locked provisioning, after any other failure
// (naming the button and what one press does), and on a device fault (with
// the code to look up).
func TestErrorPathScreens(t *testing.T) {
	for _, tc := range []struct {
		name      string
		view      View
		want      []string
		not       []string
		countdown string
	}{
		{"UNPROVISIONED", SampleView(state.Unprovisioned), []string{"Press Enable Provisioning"}, []string{"expired"}, ""},
		{"UNPROVISIONED/expired", views(t)["UNPROVISIONED/expired"], []string{"Pairing code expired", "Press Enable Provisioning for a new code"}, []string{"locked"}, ""},
		{"PROVISIONING_FAILED", SampleView(state.ProvisioningFailed), []string{"Connection failed", "Check network, retry", "Code CONNECTION_FAILED", "Press Enable Provisioning for a new code"}, []string{"retry Press button", "start again"}, ""},
		{"PROVISIONING_FAILED/locked", views(t)["PROVISIONING_FAILED/locked"], []string{"Pairing code mismatch", "Too many wrong codes. Provisioning locked for", "Code PAIRING_CODE_MISMATCH", "Then press Enable Provisioning"}, []string{"Re-scan", "start again", "new code"}, "15:00"},
	} {
		for _, sz := range sizes {
			f, err := newRenderer(t).Render(tc.view, sz.X, sz.Y)
			if err != nil {
				t.Fatal(err)
			}
			text := strings.Join(strings.Fields(screenText(f)), " ")
			for _, w := range tc.want {
				if !strings.Contains(text, w) {
					t.Errorf("%s %v: no %q in %q", tc.name, sz, w, text)
				}
			}
			for _, n := range tc.not {
				if strings.Contains(text, n) {
					t.Errorf("%s %v: %q in %q", tc.name, sz, n, text)
				}
			}
			if f.TimerText() != tc.countdown {
				t.Errorf("%s %v: countdown %q, want %q", tc.name, sz, f.TimerText(), tc.countdown)
			}
		}
	}
	for _, fl := range fault.All() {
		v := SampleView(state.ReadyToPair)
		v.Fault = fl
		f, err := newRenderer(t).Render(v, 240, 240)
		if err != nil {
			t.Fatal(err)
		}
		text := strings.Join(strings.Fields(screenText(f)), " ")
		if !strings.Contains(text, fl.String()) || !strings.Contains(text, "Fault code "+fl.Code()) {
			t.Errorf("%s: %q", fl.Code(), text)
		}
	}
	// Each field changes the screen, not only its countdown.
	base := SampleView(state.ProvisioningFailed)
	for name, change := range map[string]func(*View){
		"SessionExpired": func(v *View) { v.SessionExpired = true },
		"Locked":         func(v *View) { v.Locked = time.Minute },
		"Warning":        func(v *View) { v.Warning = fault.DiskFull },
	} {
		v := base
		change(&v)
		if sameScreen(base, v) {
			t.Errorf("sameScreen ignores %s", name)
		}
	}
}

func TestQRDecodesEverywhere(t *testing.T) {
	r := newRenderer(t)
	for name, v := range views(t) {
		if v.State != state.ReadyToPair || isPageView(name) {
			continue // the pages leave the QR as it is (TestPairingStripPages)
		}
		for _, sz := range sizes {
			t.Run(fmt.Sprintf("%s/%dx%d", name, sz.X, sz.Y), func(t *testing.T) {
				f, err := r.Render(v, sz.X, sz.Y)
				if err != nil {
					t.Fatal(err)
				}
				want := string(v.QRText)
				panel := roundTrip565(t, f.Img)
				for _, c := range []struct {
					name string
					img  image.Image
				}{{"frame", f.Img}, {"rgb565", panel}, {"rgb565 0.9x", scale(panel, 0.9)}, {"rgb565 2x", scale(panel, 2)}} {
					got, err := decodeQR(c.img)
					if err != nil {
						t.Fatalf("%s: decode: %v", c.name, err)
					}
					if got != want {
						t.Fatalf("%s: decoded %q, want %q", c.name, got, want)
					}
				}
			})
		}
	}
}

// TestQRGeometry checks module size and quiet zone: at least 3 px per
// module, the quiet zone all white and 4 modules wide, except for a version
// 13 QR on a 240×240 panel where only 2 modules leave room for the code.
func TestQRGeometry(t *testing.T) {
	r := newRenderer(t)
	for _, name := range []string{"READY_TO_PAIR", "READY_TO_PAIR/worst"} {
		v := views(t)[name]
		m, err := qr.Encode(v.QRText)
		if err != nil {
			t.Fatal(err)
		}
		for _, sz := range sizes {
			f, err := r.Render(v, sz.X, sz.Y)
			if err != nil {
				t.Fatal(err)
			}
			wantQuiet := QuietModules
			if sz == (image.Point{240, 240}) && m.Version > 12 {
				wantQuiet = MinQuietModules
			}
			if f.ModulePx < MinModulePx || f.QuietModules != wantQuiet {
				t.Errorf("%s %v: version %d at %d px, quiet %d; want >= %d px, quiet %d", name, sz, m.Version, f.ModulePx, f.QuietModules, MinModulePx, wantQuiet)
			}
			side := (m.Size + 2*f.QuietModules) * f.ModulePx
			if f.QR.Dx() != side || f.QR.Dy() != side || !f.QR.In(f.Img.Rect) {
				t.Errorf("%s %v: QR rect %v, side want %d", name, sz, f.QR, side)
			}
			q := f.QuietModules * f.ModulePx
			sym := image.Rect(f.QR.Min.X+q, f.QR.Min.Y+q, f.QR.Max.X-q, f.QR.Max.Y-q)
			for y := f.QR.Min.Y; y < f.QR.Max.Y; y++ {
				for x := f.QR.Min.X; x < f.QR.Max.X; x++ {
					p := f.Img.RGBAAt(x, y)
					if !image.Pt(x, y).In(sym) {
						if p != white {
							t.Fatalf("%s %v: quiet zone pixel (%d,%d) is %v", name, sz, x, y, p)
						}
						continue
					}
					mx, my := (x-sym.Min.X)/f.ModulePx, (y-sym.Min.Y)/f.ModulePx
					want := white
					if m.Dark(mx, my) {
						want = color.RGBA{0, 0, 0, 0xff}
					}
					if p != want {
						t.Fatalf("%s %v: module (%d,%d) pixel (%d,%d) is %v, want %v", name, sz, mx, my, x, y, p, want)
					}
				}
			}
		}
	}
}

// TestNothingClipped measures every line of text of every screen, size and
// worst case: inside the frame, clear of the QR and its quiet zone, not
// overlapping another line, not cut short.
func TestNothingClipped(t *testing.T) {
	r := newRenderer(t)
	for name, v := range views(t) {
		for _, sz := range sizes {
			f, err := r.Render(v, sz.X, sz.Y)
			if err != nil {
				t.Fatalf("%s %v: %v", name, sz, err)
			}
			if f.Truncated {
				t.Errorf("%s %v: text truncated", name, sz)
			}
			if len(f.Texts) == 0 {
				t.Errorf("%s %v: no text", name, sz)
			}
			for i, tb := range f.Texts {
				if !tb.Ink.In(f.Img.Rect) {
					t.Errorf("%s %v: %q outside the frame: ink %v", name, sz, tb.Text, tb.Ink)
				}
				if tb.Ink.Overlaps(f.QR) {
					t.Errorf("%s %v: %q overlaps the QR %v: ink %v", name, sz, tb.Text, f.QR, tb.Ink)
				}
				if tb.Text != timerTemplate && tb.Text != f.TimerText() && tb.Ink.Overlaps(f.Timer) {
					t.Errorf("%s %v: %q reaches into the countdown's rectangle %v: ink %v", name, sz, tb.Text, f.Timer, tb.Ink)
				}
				for _, o := range f.Texts[i+1:] {
					if tb.Ink.Overlaps(o.Ink) && tb.Text != timerTemplate && o.Text != timerTemplate {
						t.Errorf("%s %v: %q and %q overlap: %v %v", name, sz, tb.Text, o.Text, tb.Ink, o.Ink)
					}
				}
			}
			if tt := f.TimerText(); tt != "" {
				var timerInk image.Rectangle
				for _, tb := range f.Texts {
					if tb.Text == timerTemplate {
						timerInk = tb.Ink
					}
				}
				if timerInk.Empty() || !timerInk.In(f.Timer) {
					t.Errorf("%s %v: widest countdown ink %v not inside the timer rect %v", name, sz, timerInk, f.Timer)
				}
			}
		}
	}
}

// TestReadableCode: the pairing code's capitals are at least 14 px tall on
// every size (legible from about a metre on a 2.8" 320×240 panel).
func TestReadableCode(t *testing.T) {
	r := newRenderer(t)
	v := views(t)["READY_TO_PAIR/worst"]
	for _, sz := range sizes {
		f, err := r.Render(v, sz.X, sz.Y)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, tb := range f.Texts {
			if strings.Contains(v.PairingCode, tb.Text) && len(tb.Text) >= 3 {
				found = true
				if tb.Ink.Dy() < 14 {
					t.Errorf("%v: code %q only %d px tall", sz, tb.Text, tb.Ink.Dy())
				}
			}
		}
		if !found {
			t.Errorf("%v: pairing code not drawn", sz)
		}
		if f.TimerText() != "10:00" {
			t.Errorf("%v: countdown %q, want 10:00", sz, f.TimerText())
		}
	}
}

// docImage is a screen docs/screens.md (or the README) shows.
type docImage struct {
	file string
	view View
	size image.Point
}

// docImages are the screens in docs/img: every state on 240×240, the wide
// layouts, the worst cases, and the screens a technician meets on the error
// paths. TestGolden keeps them equal to what the firmware draws.
func docImages(t testing.TB) []docImage {
	vs := views(t)
	sq, qvga, hvga := image.Pt(240, 240), image.Pt(320, 240), image.Pt(480, 320)
	imgs := []docImage{}
	for _, s := range state.All {
		imgs = append(imgs, docImage{fmt.Sprintf("%s_240x240.png", s), SampleView(s), sq})
	}
	page := func(left time.Duration) View {
		v := SampleView(state.ReadyToPair)
		v.Remaining = left
		return v
	}
	with := func(s state.State, f func(*View)) View {
		v := SampleView(s)
		f(&v)
		return v
	}
	// The failure with the longest texts the panel can show: not the codes
	// only the Central Station finds (it could not reach the device).
	centralOnly := map[failure.Code]bool{failure.IdentityMismatch: true, failure.DeviceNotListening: true}
	worstFail := ""
	for name, v := range vs {
		if strings.HasPrefix(name, "PROVISIONING_FAILED/") && v.Locked == 0 && v.Warning == fault.NoWarning && !centralOnly[v.Failure] &&
			(worstFail == "" || len(v.Failure.Title()+v.Failure.UserAction()) > len(vs[worstFail].Failure.Title()+vs[worstFail].Failure.UserAction())) {
			worstFail = name
		}
	}
	return append(imgs,
		docImage{"UNPROVISIONED_240x240_locked.png", vs["UNPROVISIONED/locked"], sq},
		docImage{"UNPROVISIONED_240x240_expired.png", with(state.Unprovisioned, func(v *View) { v.SessionExpired = true }), sq},
		docImage{"READY_TO_PAIR_240x240_worst.png", vs["READY_TO_PAIR/worst"], sq},
		docImage{"READY_TO_PAIR_240x240_instruction.png", page(9*time.Minute + 56*time.Second), sq},
		docImage{"READY_TO_PAIR_240x240_id.png", page(9*time.Minute + 47*time.Second), sq},
		docImage{"READY_TO_PAIR_240x240_ip.png", page(9*time.Minute + 38*time.Second), sq},
		docImage{"READY_TO_PAIR_320x240.png", SampleView(state.ReadyToPair), qvga},
		docImage{"READY_TO_PAIR_480x320.png", SampleView(state.ReadyToPair), hvga},
		docImage{"APPLYING_CONFIG_480x320.png", SampleView(state.ApplyingConfig), hvga},
		docImage{"PROVISIONING_FAILED_240x240_locked.png", with(state.ProvisioningFailed, func(v *View) {
			v.Failure, v.FailureDetail, v.Locked = failure.PairingCodeMismatch, "", 15*time.Minute
		}), sq},
		docImage{"PROVISIONING_FAILED_320x240.png", SampleView(state.ProvisioningFailed), qvga},
		docImage{"PROVISIONING_FAILED_320x240_worst.png", vs[worstFail], qvga},
		docImage{"FAULT_240x240.png", vs["FAULT"], sq},
		docImage{"PROVISIONED_240x240_warning.png", with(state.Provisioned, func(v *View) { v.Warning = fault.AuditTampered }), sq},
		docImage{"UNPROVISIONED_320x240_warning.png", with(state.Unprovisioned, func(v *View) { v.Warning = fault.DiskFull }), qvga},
	)
}

// TestGolden compares every state at every tested size with the PNGs in
// testdata/, and the documentation's screens with docs/img/ (which holds
// nothing else). -update rewrites both; look at the new ones.
func TestGolden(t *testing.T) {
	r := newRenderer(t)
	for _, sz := range sizes {
		for _, s := range state.All {
			name := fmt.Sprintf("%s_%dx%d.png", s, sz.X, sz.Y)
			t.Run(name, func(t *testing.T) {
				golden(t, r, SampleView(s), sz, filepath.Join("testdata", name))
			})
		}
	}
	docs := filepath.Join("..", "..", "..", "docs", "img")
	want := map[string]bool{}
	for _, d := range docImages(t) {
		want[d.file] = true
		t.Run("docs/img/"+d.file, func(t *testing.T) {
			golden(t, r, d.view, d.size, filepath.Join(docs, d.file))
		})
	}
	files, err := filepath.Glob(filepath.Join(docs, "*.png"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if !want[filepath.Base(f)] {
			t.Errorf("%s is not a screen the firmware draws any more (docImages): remove it", f)
		}
	}
}

// golden compares v rendered at sz with the PNG at path (or writes it with
// -update).
func golden(t *testing.T, r *Renderer, v View, sz image.Point, path string) {
	t.Helper()
	f, err := r.Render(v, sz.X, sz.Y)
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		var buf bytes.Buffer
		if err := png.Encode(&buf, f.Img); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	fh, err := os.Open(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create)", err)
	}
	defer fh.Close()
	want, err := png.Decode(fh)
	if err != nil {
		t.Fatal(err)
	}
	if want.Bounds() != f.Img.Rect {
		t.Fatalf("golden is %v, frame %v", want.Bounds(), f.Img.Rect)
	}
	diff := 0
	for y := 0; y < sz.Y; y++ {
		for x := 0; x < sz.X; x++ {
			if color.RGBAModel.Convert(want.At(x, y)) != f.Img.RGBAAt(x, y) {
				diff++
			}
		}
	}
	if diff > 0 {
		t.Errorf("%d pixels differ from %s (look at the new render; -update if intended)", diff, path)
	}
}

func TestRenderErrors(t *testing.T) {
	r := newRenderer(t)
	if _, err := r.Render(SampleView(state.Unprovisioned), 239, 240); !errors.Is(err, ErrTooSmall) {
		t.Errorf("239×240: %v", err)
	}
	if _, err := r.Render(SampleView(state.Unprovisioned), 240, 200); !errors.Is(err, ErrTooSmall) {
		t.Errorf("240×200: %v", err)
	}
	v := SampleView(state.ReadyToPair)
	v.QRText = nil
	if _, err := r.Render(v, 240, 240); !errors.Is(err, ErrNoQR) {
		t.Errorf("no QR: %v", err)
	}
	v.QRText = bytes.Repeat([]byte("x"), 1200) // version 27: 125 modules
	if _, err := r.Render(v, 240, 240); !errors.Is(err, ErrQRTooBig) {
		t.Errorf("huge QR: %v", err)
	}
	if _, err := r.Render(View{State: 99}, 240, 240); !errors.Is(err, ErrBadState) {
		t.Errorf("bad state: %v", err)
	}
	var buf bytes.Buffer
	if err := RenderPNG(SampleView(state.Provisioned), 100, 100, &buf); !errors.Is(err, ErrTooSmall) {
		t.Errorf("RenderPNG 100×100: %v", err)
	}
}

func TestOtherSizes(t *testing.T) {
	r := newRenderer(t)
	for _, sz := range []image.Point{{240, 320}, {800, 480}, {272, 240}} {
		for name, v := range views(t) {
			f, err := r.Render(v, sz.X, sz.Y)
			if err != nil {
				t.Fatalf("%s %v: %v", name, sz, err)
			}
			if f.Truncated {
				t.Errorf("%s %v: truncated", name, sz)
			}
			if v.State == state.ReadyToPair && !isPageView(name) {
				if got, err := decodeQR(f.Img); err != nil || got != string(v.QRText) {
					t.Errorf("%s %v: decode %v", name, sz, err)
				}
			}
		}
	}
}

func TestFormatCountdown(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0:00", -time.Second: "0:00", time.Millisecond: "0:01", time.Second: "0:01",
		59*time.Second + time.Millisecond: "1:00", 10 * time.Minute: "10:00",
		9*time.Minute + 59*time.Second: "9:59", 3 * time.Hour: "99:59",
	} {
		if got := FormatCountdown(d); got != want {
			t.Errorf("FormatCountdown(%v) = %q, want %q", d, got, want)
		}
	}
}

// recorder is a display.Drawer that keeps the panel's pixels and the
// rectangles pushed.
type recorder struct {
	panel *image.RGBA
	rects []image.Rectangle
	fail  error
}

func newRecorder(w, h int) *recorder { return &recorder{panel: image.NewRGBA(image.Rect(0, 0, w, h))} }

func (d *recorder) String() string          { return "recorder" }
func (d *recorder) Halt() error             { return nil }
func (d *recorder) ColorModel() color.Model { return color.RGBAModel }
func (d *recorder) Bounds() image.Rectangle { return d.panel.Rect }
func (d *recorder) Draw(r image.Rectangle, src image.Image, sp image.Point) error {
	if d.fail != nil {
		return d.fail
	}
	d.rects = append(d.rects, r)
	draw.Draw(d.panel, r, src, sp, draw.Src)
	return nil
}

func (d *recorder) take() []image.Rectangle { r := d.rects; d.rects = nil; return r }

func samePixels(t *testing.T, r *Renderer, panel *image.RGBA, v View) {
	t.Helper()
	f, err := r.Render(v, panel.Rect.Dx(), panel.Rect.Dy())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(f.Img.Pix, panel.Pix) {
		t.Fatal("the panel after partial updates differs from a full render of the same view")
	}
}

func TestScreenPartialUpdates(t *testing.T) {
	r := newRenderer(t)
	for _, sz := range sizes {
		d := newRecorder(sz.X, sz.Y)
		s, err := New(d)
		if err != nil {
			t.Fatal(err)
		}
		full := []image.Rectangle{d.panel.Rect}
		v := SampleView(state.ReadyToPair)
		if err := s.Show(v); err != nil {
			t.Fatal(err)
		}
		if got := d.take(); fmt.Sprint(got) != fmt.Sprint(full) {
			t.Fatalf("%v first show pushed %v", sz, got)
		}
		// A countdown tick pushes only the countdown.
		v.Remaining -= time.Second
		if err := s.Show(v); err != nil {
			t.Fatal(err)
		}
		got := d.take()
		if len(got) != 1 || got[0] != s.Frame().Timer || got[0].Dx()*got[0].Dy() > sz.X*sz.Y/8 {
			t.Fatalf("%v tick pushed %v, want only the timer %v", sz, got, s.Frame().Timer)
		}
		samePixels(t, r, d.panel, v)
		// Less than a second later the text is the same: nothing pushed.
		v.Remaining -= 300 * time.Millisecond
		if err := s.Show(v); err != nil {
			t.Fatal(err)
		}
		if got := d.take(); len(got) != 0 {
			t.Fatalf("%v same text pushed %v", sz, got)
		}
		// A new QR (token rotation) pushes the whole frame.
		v.QRText = append([]byte(nil), v.QRText...)
		v.QRText[len(v.QRText)-3] ^= 1
		if err := s.Show(v); err != nil {
			t.Fatal(err)
		}
		if got := d.take(); fmt.Sprint(got) != fmt.Sprint(full) {
			t.Fatalf("%v new QR pushed %v", sz, got)
		}
		// A state change pushes the whole frame.
		if err := s.Show(SampleView(state.PairingReceived)); err != nil {
			t.Fatal(err)
		}
		if got := d.take(); fmt.Sprint(got) != fmt.Sprint(full) {
			t.Fatalf("%v state change pushed %v", sz, got)
		}
		samePixels(t, r, d.panel, SampleView(state.PairingReceived))
		// Lockout countdown on UNPROVISIONED ticks too.
		u := SampleView(state.Unprovisioned)
		u.Locked = 5 * time.Minute
		if err := s.Show(u); err != nil {
			t.Fatal(err)
		}
		d.take()
		u.Locked -= time.Second
		if err := s.Show(u); err != nil {
			t.Fatal(err)
		}
		if got := d.take(); len(got) != 1 || got[0] != s.Frame().Timer {
			t.Fatalf("%v lock tick pushed %v", sz, got)
		}
		samePixels(t, r, d.panel, u)
		// The lockout's countdown on the failure screen of the code that
		// locked provisioning ticks the same way.
		pf := views(t)["PROVISIONING_FAILED/locked"]
		if err := s.Show(pf); err != nil {
			t.Fatal(err)
		}
		d.take()
		pf.Locked -= time.Second
		if err := s.Show(pf); err != nil {
			t.Fatal(err)
		}
		if got := d.take(); len(got) != 1 || got[0] != s.Frame().Timer {
			t.Fatalf("%v failure lock tick pushed %v", sz, got)
		}
		samePixels(t, r, d.panel, pf)
		if err := s.Show(u); err != nil {
			t.Fatal(err)
		}
		d.take()
		// The lock ending changes the screen.
		u.Locked = 0
		if err := s.Show(u); err != nil {
			t.Fatal(err)
		}
		if got := d.take(); fmt.Sprint(got) != fmt.Sprint(full) {
			t.Fatalf("%v unlock pushed %v", sz, got)
		}
	}
}

func TestScreenPushFailure(t *testing.T) {
	d := newRecorder(240, 240)
	s, err := New(d)
	if err != nil {
		t.Fatal(err)
	}
	v := SampleView(state.ReadyToPair)
	if err := s.Show(v); err != nil {
		t.Fatal(err)
	}
	d.take()
	d.fail = errors.New("spi: bus error")
	v.Remaining -= time.Second
	if err := s.Show(v); err == nil || !strings.Contains(err.Error(), "bus error") {
		t.Fatalf("failed push: %v", err)
	}
	d.fail = nil
	if err := s.Show(v); err != nil {
		t.Fatal(err)
	}
	if got := d.take(); len(got) != 1 || got[0] != d.panel.Rect {
		t.Fatalf("after a failed push, want the whole frame again; pushed %v", got)
	}
	if _, err := New(newRecorder(200, 240)); !errors.Is(err, ErrTooSmall) {
		t.Errorf("small display: %v", err)
	}
}

func TestWarmFillsTheGlyphCacheWithoutDrawing(t *testing.T) {
	p := newRecorder(240, 240)
	s, err := New(p)
	if err != nil {
		t.Fatal(err)
	}
	v := SampleView(state.Unprovisioned)
	if err := s.Warm(v); err != nil {
		t.Fatal(err)
	}
	if n := len(p.take()); n != 0 {
		t.Errorf("Warm drew %d times on the panel", n)
	}
	warmed := s.r.cachedGlyphs()
	if warmed == 0 {
		t.Fatal("Warm cached no glyphs")
	}
	if err := s.Show(v); err != nil {
		t.Fatal(err)
	}
	if n := s.r.cachedGlyphs(); n != warmed {
		t.Errorf("showing the warmed view rasterized %d more glyphs", n-warmed)
	}
	if err := s.Warm(View{State: state.ReadyToPair}); err == nil {
		t.Error("Warm accepted a READY_TO_PAIR view without a QR")
	}
}

// cachedGlyphs counts the glyphs rasterized so far, over every face.
func (r *Renderer) cachedGlyphs() int {
	n := 0
	for _, f := range r.fonts.faces {
		n += len(f.glyphs)
	}
	return n
}

func TestNewWithRendererShowsTheFrameRenderedBeforeTheDisplayOpened(t *testing.T) {
	r, err := NewRenderer()
	if err != nil {
		t.Fatal(err)
	}
	v := SampleView(state.Unprovisioned)
	early, err := r.Render(v, 240, 240) // before any display exists
	if err != nil {
		t.Fatal(err)
	}
	glyphs := r.cachedGlyphs()
	p := newRecorder(240, 240)
	s, err := NewWithRenderer(p, r)
	if err != nil {
		t.Fatal(err)
	}
	if s.r != r {
		t.Fatal("the Screen does not draw with the renderer it was given")
	}
	if err := s.Show(v); err != nil {
		t.Fatal(err)
	}
	if n := r.cachedGlyphs(); n != glyphs {
		t.Errorf("showing the view rendered early rasterized %d more glyphs", n-glyphs)
	}
	if !bytes.Equal(s.Frame().Img.Pix, early.Img.Pix) {
		t.Error("the frame shown differs from the one rendered before the display opened")
	}
	if got := p.take(); len(got) != 1 || got[0] != p.panel.Rect {
		t.Errorf("want one whole-frame push, got %v", got)
	}
	if _, err := NewWithRenderer(newRecorder(200, 240), r); !errors.Is(err, ErrTooSmall) {
		t.Errorf("small display: %v", err)
	}
	if _, err := NewWithRenderer(p, nil); err == nil {
		t.Error("no renderer: no error")
	}
}
