package screen

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"math"

	"github.com/fogleman/gg"
	"golang.org/x/image/font"
	"golang.org/x/image/math/fixed"

	"github.com/zmonitor/firmware/internal/fw/fault"
	"github.com/zmonitor/firmware/internal/fw/qr"
	"github.com/zmonitor/firmware/internal/proto/state"
)

// MinWidth and MinHeight are the smallest panel the layouts support.
const (
	MinWidth  = 240
	MinHeight = 240
	// MaxSide bounds either side of a frame (a sanity limit, not a panel).
	MaxSide = 4096
)

// Quiet zone and module size rules for the pairing QR.
const (
	// MinModulePx is the smallest module drawn, in pixels.
	MinModulePx = 3
	// QuietModules is the quiet zone kept around the QR (ISO/IEC 18004).
	QuietModules = 4
	// MinQuietModules is the quiet zone accepted only when the full one
	// leaves no room for the pairing code (a version 13 QR on 240×240).
	MinQuietModules = 2
	// minStrip is the least height of the code and countdown strip under
	// the QR on square panels.
	minStrip = 21
	// minColumn is the least width of the text column beside the QR on wide
	// panels.
	minColumn = 72
)

// Errors of Render.
var (
	ErrTooSmall = errors.New("screen: frame smaller than 240×240")
	ErrNoQR     = errors.New("screen: READY_TO_PAIR view without QR text")
	ErrQRTooBig = errors.New("screen: QR too large for the frame")
	ErrBadState = errors.New("screen: unknown state")
)

// Colours. Text on white and white on the header colours all have a
// contrast ratio of at least 6.5:1 (WCAG AAA for large text).
var (
	white = color.RGBA{0xff, 0xff, 0xff, 0xff}
	ink   = color.RGBA{0x12, 0x12, 0x12, 0xff}
	gray  = color.RGBA{0x42, 0x42, 0x42, 0xff}
	light = color.RGBA{0xbd, 0xbd, 0xbd, 0xff}
	slate = color.RGBA{0x26, 0x32, 0x38, 0xff}
	blue  = color.RGBA{0x0d, 0x47, 0xa1, 0xff}
	green = color.RGBA{0x1b, 0x5e, 0x20, 0xff}
	red   = color.RGBA{0xb7, 0x1c, 0x1c, 0xff}
)

// TextBox is one line of text drawn in a frame.
type TextBox struct {
	Text string
	// Ink is the bounding box of the glyphs' pixels; Line is the line box
	// (advance width × ascent+descent).
	Ink, Line image.Rectangle
}

// Frame is a rendered screen.
type Frame struct {
	Img *image.RGBA
	// Texts lists every line of text drawn, for layout checks.
	Texts []TextBox
	// QR is the QR symbol with its quiet zone (empty when there is none);
	// ModulePx and QuietModules are its module size and quiet zone.
	QR           image.Rectangle
	ModulePx     int
	QuietModules int
	// Timer is the countdown's reserved rectangle (empty when none).
	Timer image.Rectangle
	// Truncated is true when some text had to be cut to fit; the tested
	// views never are.
	Truncated bool

	// strip is the line under the QR whose text changes with the countdown
	// (READY_TO_PAIR on a 240×240 panel), nil elsewhere.
	strip *stripPages

	timerFace  *cachedFace
	timerBase  int
	timerAlign align
	timerColor color.RGBA
	timerBG    color.RGBA
	timerText  string
}

// TimerText is the countdown currently drawn.
func (f *Frame) TimerText() string { return f.timerText }

// Renderer draws views. It holds the parsed fonts and a cache of faces and
// glyphs; it is not safe for concurrent use.
type Renderer struct {
	fonts *fonts
	// The last QR encoded: encoding costs milliseconds and the QR changes
	// only when the token rotates (every 30 s), not on every frame.
	qrText []byte
	qr     *qr.Matrix
	// The last frame rendered from scratch and its view: a view that differs
	// only in its countdown starts from a copy of it.
	lastView  View
	lastFrame *Frame
}

// clone returns a deep copy of f.
func (f *Frame) clone() *Frame {
	c := *f
	c.Img = &image.RGBA{Pix: bytes.Clone(f.Img.Pix), Stride: f.Img.Stride, Rect: f.Img.Rect}
	c.Texts = append([]TextBox(nil), f.Texts...)
	if f.strip != nil {
		st := *f.strip
		c.strip = &st
	}
	return &c
}

// encodeQR returns the matrix of text, reusing the last one when the text
// is the same.
func (r *Renderer) encodeQR(text []byte) (*qr.Matrix, error) {
	if r.qr != nil && bytes.Equal(text, r.qrText) {
		return r.qr, nil
	}
	m, err := qr.Encode(text)
	if err != nil {
		return nil, err
	}
	r.qrText, r.qr = bytes.Clone(text), m
	return m, nil
}

// NewRenderer parses the embedded fonts.
func NewRenderer() (*Renderer, error) {
	f, err := newFonts()
	if err != nil {
		return nil, fmt.Errorf("screen: %w", err)
	}
	return &Renderer{fonts: f}, nil
}

// Render draws v on a new w×h frame.
func (r *Renderer) Render(v View, w, h int) (*Frame, error) {
	if w < MinWidth || h < MinHeight {
		return nil, fmt.Errorf("%w: %d×%d", ErrTooSmall, w, h)
	}
	if w > MaxSide || h > MaxSide {
		return nil, fmt.Errorf("screen: frame %d×%d larger than %d", w, h, MaxSide)
	}
	if lf := r.lastFrame; lf != nil && lf.Img.Rect == image.Rect(0, 0, w, h) && sameScreen(r.lastView, v) {
		f := lf.clone()
		r.Tick(f, v)
		return f, nil
	}
	f := &Frame{Img: image.NewRGBA(image.Rect(0, 0, w, h))}
	var err error
	switch {
	case v.Fault != fault.None:
		r.fault(f, v)
	case v.State == state.Unprovisioned, v.State == state.Decommissioned:
		r.unprovisioned(f, v)
	case v.State == state.ReadyToPair:
		err = r.readyToPair(f, v)
	case v.State == state.PairingReceived, v.State == state.ApplyingConfig, v.State == state.TestingConnection:
		r.busy(f, v)
	case v.State == state.Provisioned:
		r.provisioned(f, v)
	case v.State == state.ProvisioningFailed:
		r.failed(f, v)
	default:
		err = fmt.Errorf("%w %d", ErrBadState, int(v.State))
	}
	if err != nil {
		return nil, fmt.Errorf("render %s: %w", v.State, err)
	}
	r.lastView, r.lastFrame = v, f.clone()
	return f, nil
}

// Tick redraws the countdown of f for v, which must show the same screen as
// the view f was rendered from. It returns the rectangle that changed, empty
// when the countdown text is unchanged.
func (r *Renderer) Tick(f *Frame, v View) image.Rectangle {
	t := v.timerText()
	if s := f.strip; s != nil {
		if p := s.pageAt(v.Remaining); p != s.cur {
			r.drawStripPage(f, p, t)
			return s.rect
		}
		if !s.pages[s.cur].timer {
			return image.Rectangle{}
		}
	}
	if f.Timer.Empty() || t == f.timerText {
		return image.Rectangle{}
	}
	fillRect(f.Img, f.Timer, f.timerBG)
	r.drawTimer(f, t)
	return f.Timer
}

// drawTimer draws t in the frame's countdown rectangle. The countdown is in
// Go Bold, a proportional font, yet it does not jitter from tick to tick:
// the Go fonts' digits are tabular and unkerned, so every m:ss has the same
// width and is placed at the same x (TestCountdownKeepsItsPlace).
func (r *Renderer) drawTimer(f *Frame, t string) {
	w := textWidth(f.timerFace, t)
	x := f.Timer.Min.X + (f.Timer.Dx()-w)/2
	switch f.timerAlign {
	case alignLeft:
		x = f.Timer.Min.X
	case alignRight:
		x = f.Timer.Max.X - w
	}
	drawString(f.Img, f.timerFace, t, x, f.timerBase, f.timerColor)
	f.timerText = t
}

// ---- drawing primitives ----

func fillRect(img *image.RGBA, r image.Rectangle, c color.RGBA) {
	r = r.Intersect(img.Rect)
	if r.Empty() {
		return
	}
	row := img.Pix[img.PixOffset(r.Min.X, r.Min.Y) : img.PixOffset(r.Max.X-1, r.Min.Y)+4]
	for i := 0; i < len(row); i += 4 {
		row[0+i], row[1+i], row[2+i], row[3+i] = c.R, c.G, c.B, c.A
	}
	for y := r.Min.Y + 1; y < r.Max.Y; y++ {
		copy(img.Pix[img.PixOffset(r.Min.X, y):], row)
	}
}

func drawString(img *image.RGBA, f *cachedFace, s string, x, base int, c color.RGBA) {
	d := font.Drawer{Dst: img, Src: image.NewUniform(c), Face: f, Dot: fixed.P(x, base)}
	d.DrawString(s)
}

func (f *Frame) text(face *cachedFace, s string, x, base int, c color.RGBA) {
	drawString(f.Img, face, s, x, base, c)
	ib := inkBounds(face, s, x, base)
	asc, desc := lineMetrics(face)
	f.Texts = append(f.Texts, TextBox{
		Text: s,
		Ink:  image.Rect(ib.Min.X.Floor(), ib.Min.Y.Floor(), ib.Max.X.Ceil(), ib.Max.Y.Ceil()),
		Line: image.Rect(x, base-asc, x+textWidth(face, s), base+desc),
	})
}

// drawPlaced draws a fitted stack; the timer line becomes the frame's timer.
func (r *Renderer) drawPlaced(f *Frame, dc *gg.Context, ps []placed, box image.Rectangle, bg color.RGBA) {
	for _, p := range ps {
		if p.graphic != nil {
			p.graphic(dc, p.line)
			continue
		}
		if p.truncate {
			f.Truncated = true
		}
		if p.timer {
			asc, desc := lineMetrics(p.face)
			f.Timer = image.Rect(box.Min.X, p.base-asc, box.Max.X, p.base+desc)
			f.timerFace, f.timerBase, f.timerAlign, f.timerColor, f.timerBG = p.face, p.base, alignCenter, p.color, bg
			r.drawTimer(f, p.text)
			ib := inkBounds(p.face, p.text, p.x, p.base)
			f.Texts = append(f.Texts, TextBox{Text: p.text, Line: p.line,
				Ink: image.Rect(ib.Min.X.Floor(), ib.Min.Y.Floor(), ib.Max.X.Ceil(), ib.Max.Y.Ceil())}, timerBox(f))
			continue
		}
		f.text(p.face, p.text, p.x, p.base, p.color)
	}
}

// ---- page frame: header bar and body ----

func margin(w int) int { return max(6, w/30) }

// page fills the background, draws a header bar with title and, when v
// has a warning (and no fault: a fault screen says only the fault), a red
// footer bar saying it; it returns the body box
// between them and a gg context on the frame.
func (r *Renderer) page(f *Frame, v View, title string, bar color.RGBA) (image.Rectangle, *gg.Context) {
	w, h := f.Img.Rect.Dx(), f.Img.Rect.Dy()
	fillRect(f.Img, f.Img.Rect, white)
	hh := max(36, h/6)
	fillRect(f.Img, image.Rect(0, 0, w, hh), bar)
	m := margin(w)
	ps, ok := r.fonts.fitStack([]item{{text: title, kind: bold, max: hh * 6 / 10, min: minFontSize + 4, color: white}},
		image.Rect(m, 2, w-m, hh-2))
	if !ok {
		f.Truncated = true
	}
	dc := gg.NewContextForRGBA(f.Img)
	r.drawPlaced(f, dc, ps, image.Rect(m, 0, w-m, hh), bar)
	bottom := h - m/2
	if v.Warning != fault.NoWarning && v.Fault == fault.None {
		bottom = h - r.warningBar(f, dc, v.Warning)
	}
	return image.Rect(m, hh+m/2, w-m, bottom), dc
}

// warningBar draws w in a red bar across the bottom of the frame (what is
// wrong and its code, then who to call) and returns the bar's height.
func (r *Renderer) warningBar(f *Frame, dc *gg.Context, w fault.Warning) int {
	fw, h := f.Img.Rect.Dx(), f.Img.Rect.Dy()
	bh := max(40, h/5)
	rc := image.Rect(0, h-bh, fw, h)
	fillRect(f.Img, rc, red)
	m := margin(fw)
	items := []item{
		{text: w.String() + " (" + w.Code() + ")", kind: bold, max: bh * 4 / 10, min: minFontSize, color: white, wrap: true},
		{text: "Contact biomedical engineering", kind: regular, max: bh * 3 / 10, min: minFontSize, color: white, wrap: true},
	}
	box := image.Rect(m, rc.Min.Y+2, fw-m, h-2)
	ps, ok := r.fonts.fitStack(items, box)
	if !ok {
		f.Truncated = true
	}
	r.drawPlaced(f, dc, ps, box, red)
	return bh
}

func (r *Renderer) body(f *Frame, dc *gg.Context, box image.Rectangle, items []item) {
	ps, ok := r.fonts.fitStack(items, box)
	if !ok {
		f.Truncated = true
	}
	r.drawPlaced(f, dc, ps, box, white)
}

func labelOf(v View) string {
	if v.DeviceLabel != "" {
		return v.DeviceLabel
	}
	return v.DeviceID
}

// ---- screens ----

func (r *Renderer) unprovisioned(f *Frame, v View) {
	header := "Not provisioned"
	if v.State == state.Decommissioned {
		header = "Decommissioned"
	}
	box, dc := r.page(f, v, header, slate)
	h := f.Img.Rect.Dy()
	big, mid, small := h/9, h/13, h/17
	items := []item{{text: labelOf(v), kind: bold, max: big, min: 14, color: ink, wrap: true}}
	if id := idLine(v); id != "" {
		items = append(items, item{text: id, kind: regular, max: small, min: minFontSize, color: gray, wrap: true})
	}
	if v.IPAddress != "" {
		items = append(items, item{text: "IP " + v.IPAddress, kind: regular, max: small, min: minFontSize, color: gray, wrap: true})
	}
	switch {
	case v.Locked > 0:
		items = append(items,
			item{text: "Provisioning locked: too many wrong codes. Try again in", kind: bold, max: mid, min: 12, color: red, wrap: true},
			item{text: v.timerText(), kind: bold, max: big, min: 14, color: red, timer: true, reserve: timerTemplate})
	case v.SessionExpired:
		items = append(items,
			item{text: "Pairing code expired", kind: bold, max: mid, min: 12, color: red, wrap: true},
			item{text: pressNewCode, kind: bold, max: mid, min: 14, color: blue, wrap: true})
	case v.State == state.Decommissioned:
		items = append(items,
			item{text: DecommissionedText, kind: bold, max: mid, min: 12, color: ink, wrap: true},
			item{text: "Press Enable Provisioning to pair it again", kind: bold, max: mid, min: 14, color: blue, wrap: true})
	default:
		items = append(items, item{text: "Press Enable Provisioning", kind: bold, max: big, min: 14, color: blue, wrap: true})
	}
	r.body(f, dc, box, items)
}

// DecommissionedText is what the DECOMMISSIONED screen says happened.
const DecommissionedText = "Taken out of service by the hospital. Its configuration was erased."

// What a press of the Enable Provisioning button does, as the screens say it.
const (
	pressNewCode   = "Press Enable Provisioning for a new code"
	pressAfterLock = "Then press Enable Provisioning"
)

func idLine(v View) string {
	s := ""
	if v.DeviceLabel != "" && v.DeviceID != "" {
		s = "ID " + v.DeviceID
	}
	if v.DeviceSerial != "" {
		if s != "" {
			s += "  "
		}
		s += v.DeviceSerial
	}
	return s
}

// busySteps are the three steps after the tablet pushed a configuration.
var busySteps = map[state.State]struct {
	n     int
	title string
}{
	state.PairingReceived:   {1, "Checking configuration"},
	state.ApplyingConfig:    {2, "Applying configuration"},
	state.TestingConnection: {3, "Testing connection"},
}

func (r *Renderer) busy(f *Frame, v View) {
	box, dc := r.page(f, v, "Provisioning", blue)
	h := f.Img.Rect.Dy()
	step := busySteps[v.State]
	items := []item{
		{draw: func(dc *gg.Context, rc image.Rectangle) { stepDots(dc, rc, step.n, 3) }, max: h / 10, min: 14},
		{text: fmt.Sprintf("Step %d of 3", step.n), kind: regular, max: h / 15, min: minFontSize, color: gray},
		{text: step.title, kind: bold, max: h / 10, min: 14, color: ink, wrap: true},
	}
	if v.Progress != "" {
		items = append(items, item{text: v.Progress, kind: regular, max: h / 13, min: 12, color: ink, wrap: true})
	}
	items = append(items, item{text: "Do not switch off", kind: regular, max: h / 17, min: minFontSize, color: gray})
	r.body(f, dc, box, items)
}

// stepDots draws n circles across rc, the first done filled.
func stepDots(dc *gg.Context, rc image.Rectangle, done, n int) {
	d := float64(min(rc.Dy(), rc.Dx()/(2*n)))
	gap := d * 0.8
	total := float64(n)*d + float64(n-1)*gap
	x := float64(rc.Min.X) + (float64(rc.Dx())-total)/2 + d/2
	y := float64(rc.Min.Y) + float64(rc.Dy())/2
	for i := 0; i < n; i++ {
		cx := x + float64(i)*(d+gap)
		if i < n-1 {
			dc.SetColor(light)
			if i < done-1 {
				dc.SetColor(blue)
			}
			dc.SetLineWidth(math.Max(2, d/6))
			dc.DrawLine(cx+d/2, y, cx+d/2+gap, y)
			dc.Stroke()
		}
		dc.DrawCircle(cx, y, d/2-1)
		if i < done {
			dc.SetColor(blue)
			dc.Fill()
		} else {
			dc.SetColor(light)
			dc.SetLineWidth(math.Max(2, d/8))
			dc.Stroke()
		}
	}
}

func (r *Renderer) provisioned(f *Frame, v View) {
	box, dc := r.page(f, v, "Provisioned", green)
	h := f.Img.Rect.Dy()
	items := []item{
		{draw: checkMark, max: h / 4, min: 32},
		{text: labelOf(v), kind: bold, max: h / 9, min: 14, color: ink, wrap: true},
	}
	if v.ServerHost != "" {
		items = append(items,
			item{text: "Server", kind: regular, max: h / 17, min: minFontSize, color: gray},
			item{text: v.ServerHost, kind: regular, max: h / 13, min: 12, color: ink, wrap: true})
	}
	if v.Notice != "" {
		items = append(items, item{text: v.Notice, kind: bold, max: h / 14, min: minFontSize, color: red, wrap: true})
	}
	r.body(f, dc, box, items)
}

// checkMark draws a green disc with a white tick, centred in rc.
func checkMark(dc *gg.Context, rc image.Rectangle) {
	d := float64(min(rc.Dx(), rc.Dy()))
	cx := float64(rc.Min.X) + float64(rc.Dx())/2
	cy := float64(rc.Min.Y) + float64(rc.Dy())/2
	dc.SetColor(green)
	dc.DrawCircle(cx, cy, d/2-1)
	dc.Fill()
	dc.SetColor(white)
	dc.SetLineWidth(d / 9)
	dc.SetLineCapRound()
	dc.SetLineJoinRound()
	dc.MoveTo(cx-d*0.24, cy+d*0.02)
	dc.LineTo(cx-d*0.06, cy+d*0.2)
	dc.LineTo(cx+d*0.26, cy-d*0.18)
	dc.Stroke()
}

// fault is the screen of a device that could not start: no state, no
// button prompt, only what failed, its code to look up, and who to call.
func (r *Renderer) fault(f *Frame, v View) {
	box, dc := r.page(f, v, "Device fault", red)
	h := f.Img.Rect.Dy()
	items := []item{{text: labelOf(v), kind: bold, max: h / 11, min: 14, color: ink, wrap: true}}
	if id := idLine(v); id != "" {
		items = append(items, item{text: id, kind: regular, max: h / 17, min: minFontSize, color: gray, wrap: true})
	}
	items = append(items,
		item{text: v.Fault.String(), kind: bold, max: h / 12, min: 14, color: red, wrap: true},
		item{text: "Fault code " + v.Fault.Code(), kind: bold, max: h / 12, min: 14, color: ink},
		item{text: "Provisioning is not available. Contact biomedical engineering with the fault code.", kind: regular, max: h / 15, min: 12, color: ink, wrap: true})
	r.body(f, dc, box, items)
}

func (r *Renderer) failed(f *Frame, v View) {
	box, dc := r.page(f, v, "Provisioning failed", red)
	h := f.Img.Rect.Dy()
	items := []item{
		{text: v.Failure.Title(), kind: bold, max: h / 10, min: 14, color: red, wrap: true},
	}
	if v.Locked > 0 {
		// The wrong code that locked provisioning: re-scanning cannot help.
		items = append(items,
			item{text: "Too many wrong codes. Provisioning locked for", kind: bold, max: h / 13, min: 12, color: ink, wrap: true},
			item{text: v.timerText(), kind: bold, max: h / 9, min: 14, color: red, timer: true, reserve: timerTemplate},
			item{text: "Code " + v.Failure.String(), kind: regular, max: h / 20, min: minFontSize, color: gray, wrap: true},
			item{text: pressAfterLock, kind: bold, max: h / 13, min: 12, color: blue, wrap: true})
		r.body(f, dc, box, items)
		return
	}
	if a := v.Failure.UserAction(); a != "" {
		items = append(items, item{text: a, kind: bold, max: h / 11, min: 14, color: ink, wrap: true})
	}
	if v.FailureDetail != "" {
		items = append(items, item{text: v.FailureDetail, kind: regular, max: h / 17, min: minFontSize, color: gray, wrap: true})
	}
	items = append(items,
		item{text: "Code " + v.Failure.String(), kind: regular, max: h / 20, min: minFontSize, color: gray, wrap: true},
		item{text: pressNewCode, kind: bold, max: h / 12, min: 14, color: blue, wrap: true})
	r.body(f, dc, box, items)
}
