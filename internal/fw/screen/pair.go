package screen

import (
	"fmt"
	"image"
	"strings"

	"github.com/zmonitor/firmware/internal/fw/qr"
)

// pairGeom is where the QR goes on a READY_TO_PAIR screen.
type pairGeom struct {
	wide  bool            // text in a column right of the QR; else a strip below
	px    int             // pixels per module
	quiet int             // quiet zone in modules (the least on any side)
	qr    image.Rectangle // symbol plus quiet zone
}

// pairLayout chooses the module size and the QR's place for an n-module QR
// on a w×h frame. Wide frames put the QR on the left, at the largest module
// size that leaves a text column of at least minColumn pixels; other frames
// put it at the top, centred, with a strip of at least minStrip pixels
// below for the code and the countdown. The quiet zone is QuietModules wide
// unless only MinQuietModules leaves room for the strip.
func pairLayout(w, h, n int) (pairGeom, error) {
	for px := h / (n + 2*QuietModules); px >= MinModulePx; px-- {
		side := (n + 2*QuietModules) * px
		if w-side >= minColumn {
			y := (h - side) / 2
			return pairGeom{wide: true, px: px, quiet: QuietModules, qr: image.Rect(0, y, side, y+side)}, nil
		}
	}
	for q := QuietModules; q >= MinQuietModules; q-- {
		if px := min(w/(n+2*q), (h-minStrip)/(n+2*q)); px >= MinModulePx {
			side := (n + 2*q) * px
			x := (w - side) / 2
			return pairGeom{px: px, quiet: q, qr: image.Rect(x, 0, x+side, side)}, nil
		}
	}
	return pairGeom{}, fmt.Errorf("%w: %d modules at %d px with a %d-module quiet zone on %d×%d",
		ErrQRTooBig, n, MinModulePx, MinQuietModules, w, h)
}

func (r *Renderer) readyToPair(f *Frame, v View) error {
	if len(v.QRText) == 0 {
		return ErrNoQR
	}
	m, err := r.encodeQR(v.QRText)
	if err != nil {
		return fmt.Errorf("encode QR: %w", err)
	}
	w, h := f.Img.Rect.Dx(), f.Img.Rect.Dy()
	g, err := pairLayout(w, h, m.Size)
	if err != nil {
		return fmt.Errorf("layout QR version %d: %w", m.Version, err)
	}
	fillRect(f.Img, f.Img.Rect, white)
	drawQR(f.Img, m, g)
	f.QR, f.ModulePx, f.QuietModules = g.qr, g.px, g.quiet
	if g.wide {
		r.pairColumn(f, v, image.Rect(g.qr.Max.X, margin(w)/2, w-margin(w)/2, h-margin(w)/2))
	} else {
		r.pairStrip(f, v, image.Rect(0, g.qr.Max.Y, w, h))
	}
	return nil
}

// drawQR writes the modules straight into the frame's pixels: one row of
// pixels per module row, copied px times.
func drawQR(img *image.RGBA, m *qr.Matrix, g pairGeom) {
	fillRect(img, g.qr, white)
	ox := g.qr.Min.X + g.quiet*g.px
	oy := g.qr.Min.Y + g.quiet*g.px
	row := make([]byte, m.Size*g.px*4)
	for my := 0; my < m.Size; my++ {
		for mx := 0; mx < m.Size; mx++ {
			c := byte(0xff)
			if m.Dark(mx, my) {
				c = 0
			}
			for i := mx * g.px * 4; i < (mx+1)*g.px*4; i += 4 {
				row[i], row[i+1], row[i+2], row[i+3] = c, c, c, 0xff
			}
		}
		for dy := 0; dy < g.px; dy++ {
			copy(img.Pix[img.PixOffset(ox, oy+my*g.px+dy):], row)
		}
	}
}

// pairStrip lays the code (left) and the countdown (right) on one line in
// the strip under the QR, as large as the strip allows; the IP address goes
// on a second line when there is room for it. The size is chosen for the
// widest code of the same shape (codeTemplate) and the widest countdown
// (timerTemplate), so it does not depend on the letters drawn this session.
func (r *Renderer) pairStrip(f *Frame, v View, strip image.Rectangle) {
	w := strip.Dx()
	m := margin(w)
	capLimit := min(strip.Dy()-4, 44)
	face, ok := r.stripFace(v.PairingCode, w-2*m, capLimit)
	if !ok {
		f.Truncated = true
	}
	ch := capHeight(face)
	rowH := min(strip.Dy(), ch+8)
	base := strip.Min.Y + (rowH+ch)/2
	f.text(face, v.PairingCode, strip.Min.X+m, base, ink)
	_, desc := lineMetrics(face)
	tw := textWidth(face, timerTemplate)
	f.Timer = image.Rect(strip.Max.X-m-tw, strip.Min.Y, strip.Max.X-m, min(strip.Max.Y, base+desc))
	f.timerFace, f.timerBase, f.timerAlign, f.timerColor, f.timerBG = face, base, alignRight, blue, white
	r.drawTimer(f, v.timerText())
	f.Texts = append(f.Texts, timerBox(f))
	if rest := image.Rect(strip.Min.X+m, strip.Min.Y+rowH, strip.Max.X-m, strip.Max.Y-2); rest.Dy() >= 18 && v.IPAddress != "" {
		r.body(f, nil, rest, []item{{text: "IP " + v.IPAddress, kind: regular, max: 20, min: minFontSize, color: gray, wrap: true}})
	}
}

// maxStripFont is the largest font size the strip under the QR uses.
const maxStripFont = 64

// stripFace returns the largest Go Bold face, at most maxStripFont, in which
// the widest code of code's shape, a gap and the widest countdown fit width
// and whose capitals are at most capLimit tall. It reports false (and
// returns the minFontSize face) when even that does not fit.
//
// Every face made costs running the font's hinting programs, and every
// glyph it measures costs hinting that glyph, so the sizes are not all
// tried from the top: the size is estimated from the font's unhinted
// metrics, then moved up while the next size fits or down until one does
// (usually two faces). TestStripFaceIsLargest checks the result against
// trying every size from the top.
func (r *Renderer) stripFace(code string, width, capLimit int) (*cachedFace, bool) {
	tmpl := codeTemplate(code)
	fits := func(size int) bool {
		fc := r.fonts.face(bold, size)
		rest := stripGap(size) + textWidth(fc, timerTemplate)
		// The template first: it is as wide as the code or wider (the code
		// is measured only when it fits, to keep a probe to a few glyphs).
		return textWidth(fc, tmpl)+rest <= width && capHeight(fc) <= capLimit && textWidth(fc, code)+rest <= width
	}
	size := maxStripFont
	em := max(r.fonts.emWidth(bold, code), r.fonts.emWidth(bold, tmpl)) + 1.0/3 + r.fonts.emWidth(bold, timerTemplate)
	if ch := r.fonts.emCapHeight(bold); em > 0 && ch > 0 {
		size = min(maxStripFont, max(minFontSize, int(min(float64(width)/em, float64(capLimit)/ch))))
	}
	if fits(size) {
		for size < maxStripFont && fits(size+1) {
			size++
		}
		return r.fonts.face(bold, size), true
	}
	for size > minFontSize {
		size--
		if fits(size) {
			return r.fonts.face(bold, size), true
		}
	}
	return r.fonts.face(bold, minFontSize), false
}

// stripGap is the least space between the code and the countdown on the
// strip at font size px.
func stripGap(px int) int { return px / 3 }

// widestLetter and widestDigit are the widest capital letter and digit of
// Go Regular and Go Bold at every size the layouts use (all digits are
// equally wide); TestTabularDigits checks both.
const (
	widestLetter = 'W'
	widestDigit  = '0'
)

// codeTemplate returns code with every capital letter replaced by the widest
// letter and every digit by the widest digit: the widest code of the same
// shape ("TVL-016-APJ" gives "WWW-000-WWW"). Layouts keep room for it, so
// the code's size and place depend only on the panel, not on the letters.
func codeTemplate(code string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'A' && r <= 'Z':
			return widestLetter
		case r >= '0' && r <= '9':
			return widestDigit
		}
		return r
	}, code)
}

// timerBox describes the widest countdown the timer rectangle can hold.
func timerBox(f *Frame) TextBox {
	ib := inkBounds(f.timerFace, timerTemplate, f.Timer.Max.X-textWidth(f.timerFace, timerTemplate), f.timerBase)
	if f.timerAlign != alignRight {
		x := f.Timer.Min.X + (f.Timer.Dx()-textWidth(f.timerFace, timerTemplate))/2
		ib = inkBounds(f.timerFace, timerTemplate, x, f.timerBase)
	}
	return TextBox{Text: timerTemplate, Line: f.Timer,
		Ink: image.Rect(ib.Min.X.Floor(), ib.Min.Y.Floor(), ib.Max.X.Ceil(), ib.Max.Y.Ceil())}
}

// pairColumn stacks the code (one group of the code per line, as large as
// the column allows), the countdown and the IP address beside the QR.
func (r *Renderer) pairColumn(f *Frame, v View, box image.Rectangle) {
	h := f.Img.Rect.Dy()
	items := []item{{text: "Pairing code", kind: regular, max: h / 14, min: minFontSize, color: gray}}
	for _, g := range strings.Split(v.PairingCode, "-") {
		items = append(items, item{text: g, kind: bold, max: h / 4, min: 16, color: ink, reserve: codeTemplate(g)})
	}
	items = append(items,
		item{text: "Time left", kind: regular, max: h / 14, min: minFontSize, color: gray},
		item{text: v.timerText(), kind: bold, max: h / 6, min: 14, color: blue, timer: true, reserve: timerTemplate})
	if v.IPAddress != "" {
		items = append(items,
			item{text: "IP address", kind: regular, max: h / 14, min: minFontSize, color: gray},
			item{text: v.IPAddress, kind: regular, max: h / 14, min: minFontSize, color: ink, wrap: true})
	}
	r.body(f, nil, box, items)
}
