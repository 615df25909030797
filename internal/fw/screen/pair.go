package screen

import (
	"fmt"
	"image"
	"image/color"
	"strings"
	"time"

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
// the strip under the QR, as large as the strip allows. The size is chosen
// for the widest code of the same shape (codeTemplate) and the widest
// countdown (timerTemplate), so it does not depend on the letters drawn this
// session.
//
// Below that line go the instruction ("Scan the QR or type the code …")
// and the device's ID and IP address, which the typed-code path needs. A
// 240×240 panel has no room for them: there the line under the QR shows
// them in turn, 3 s each after 6 s of the code, on the code's place (the
// countdown stays; see stripPageAt). The QR and its quiet zone never move.
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
	_, desc := lineMetrics(face)
	tw := textWidth(face, timerTemplate)
	f.Timer = image.Rect(strip.Max.X-m-tw, strip.Min.Y, strip.Max.X-m, min(strip.Max.Y, base+desc))
	f.timerFace, f.timerBase, f.timerAlign, f.timerColor, f.timerBG = face, base, alignRight, blue, white
	code := stripPage{text: v.PairingCode, face: face, x: strip.Min.X + m, base: base, color: ink, timer: true}

	rest := image.Rect(strip.Min.X+m, strip.Min.Y+rowH, strip.Max.X-m, strip.Max.Y-2)
	id, ip := "", ""
	if v.DeviceID != "" {
		id = "ID " + v.DeviceID
	}
	if v.IPAddress != "" {
		ip = "IP " + v.IPAddress
	}
	static := infoItems(id, ip)
	if ps, ok := r.fonts.fitStack(static, rest); ok && rest.Dy() >= 2*minFontSize {
		// Room for everything at once (a panel taller than wide).
		f.text(code.face, code.text, code.x, code.base, code.color)
		r.drawTimer(f, v.timerText())
		f.Texts = append(f.Texts, timerBox(f))
		r.drawPlaced(f, nil, ps, rest, white)
		return
	}
	row := image.Rect(strip.Min.X, strip.Min.Y, strip.Max.X, min(strip.Max.Y, base+desc+1))
	beside := image.Rect(strip.Min.X+m, row.Min.Y, f.Timer.Min.X-stripGap(face.size), row.Max.Y)
	whole := image.Rect(strip.Min.X+m, row.Min.Y, strip.Max.X-m, row.Max.Y)
	st := &stripPages{rect: row, timer: f.Timer, pages: []stripPage{code}, textsFrom: len(f.Texts), cur: -1}
	st.pages = append(st.pages, r.infoPage(pairInstruction, bold, ink, minFontSize+2, face, beside, whole, base, capLimit))
	// The ID and the address on one page if they fit beside the countdown
	// at a readable size, else one page each.
	both := r.infoPage(strings.TrimSpace(id+"  "+ip), regular, ink, minInfoFont, face, beside, whole, base, capLimit)
	if both.timer && both.face.size >= minInfoFont || id == "" || ip == "" {
		if both.text != "" {
			st.pages = append(st.pages, both)
		}
	} else {
		st.pages = append(st.pages,
			r.infoPage(id, regular, ink, minFontSize, face, beside, whole, base, capLimit),
			r.infoPage(ip, regular, ink, minFontSize, face, beside, whole, base, capLimit))
	}
	for _, p := range st.pages {
		f.Truncated = f.Truncated || p.truncated
	}
	f.strip = st
	r.drawStripPage(f, st.pageAt(v.Remaining), v.timerText())
}

// pairInstruction tells the technician what to do with the pairing screen
// and, read with the countdown beside it, what the countdown means.
const pairInstruction = "Scan QR or type code within"

// minInfoFont is the least size at which the ID and the address share a
// page under the QR; below it each gets its own, larger.
const minInfoFont = 14

// infoItems stacks the instruction and the device's ID and address (those
// not empty) for a panel with room for them under the code.
func infoItems(id, ip string) []item {
	items := []item{{text: "Scan the QR or type the code before the time runs out", kind: bold, max: 16, min: minFontSize, color: ink, wrap: true}}
	for _, t := range []string{id, ip} {
		if t != "" {
			items = append(items, item{text: t, kind: regular, max: 16, min: minFontSize, color: gray, wrap: true})
		}
	}
	return items
}

// stripPages is the line under the QR on a 240×240 panel: the code and the
// countdown, or in turn one of the info pages (stripPageAt). Tick redraws
// the whole line when the page changes.
type stripPages struct {
	rect      image.Rectangle
	timer     image.Rectangle // the countdown's, on the pages that show it
	pages     []stripPage     // pages[0]: the pairing code
	cur       int             // the page drawn
	textsFrom int             // the page's entries in Frame.Texts start here
}

// stripPage is one text on the line under the QR.
type stripPage struct {
	text      string
	face      *cachedFace
	x, base   int
	color     color.RGBA
	timer     bool // the countdown shows beside it
	truncated bool
}

// Timing of the pages: the code for stripCodeSecs, then an info page for
// stripInfoSecs, the next info page after the code again, and so on.
const (
	stripCodeSecs = 6
	stripInfoSecs = 3
)

// pageAt returns the page shown with left on the countdown. It follows the
// countdown's displayed seconds, so a frame rendered again for the same
// second is the same: in each 9 s the code shows for 6 s, then the next info
// page for 3 s. A 10-minute session shows the code for its first 4 s, then
// the instruction.
func (s *stripPages) pageAt(left time.Duration) int {
	n := len(s.pages) - 1
	if n == 0 {
		return 0
	}
	secs := int((max(left, 0) + time.Second - 1) / time.Second)
	period := stripCodeSecs + stripInfoSecs
	if secs%period >= stripInfoSecs {
		return 0
	}
	k := secs / period // counts down: the pages go forward as it does
	return 1 + (n-k%n)%n
}

// infoPage lays out text on the line under the QR: beside the countdown
// in the largest face of kind from code's size down to least that fits,
// else over the whole line (the countdown then hides while it shows; a
// trailing " within", which reads into the countdown, is dropped), down to
// minFontSize, else cut with "…".
func (r *Renderer) infoPage(text string, kind fontKind, c color.RGBA, least int, code *cachedFace, beside, whole image.Rectangle, base, capLimit int) stripPage {
	if text == "" {
		return stripPage{}
	}
	fit := func(text string, box image.Rectangle, least int) (stripPage, bool) {
		for size := code.size; size >= least; size-- {
			fc := r.fonts.face(kind, size)
			if textWidth(fc, text) <= box.Dx() && capHeight(fc) <= capLimit {
				return stripPage{text: text, face: fc, x: box.Min.X, base: base, color: c, timer: box == beside}, true
			}
		}
		return stripPage{}, false
	}
	if p, ok := fit(text, beside, least); ok {
		return p
	}
	text = strings.TrimSuffix(text, " within")
	if p, ok := fit(text, whole, minFontSize); ok {
		return p
	}
	fc := r.fonts.face(kind, minFontSize)
	cut, _ := ellipsize(fc, text, whole.Dx())
	return stripPage{text: cut, face: fc, x: whole.Min.X, base: base, color: c, truncated: true}
}

// drawStripPage draws page i of f's strip (and the countdown t beside it,
// where the page has it), replacing the page drawn before.
func (r *Renderer) drawStripPage(f *Frame, i int, t string) {
	s := f.strip
	fillRect(f.Img, s.rect, white)
	f.Texts = f.Texts[:s.textsFrom]
	p := s.pages[i]
	f.text(p.face, p.text, p.x, p.base, p.color)
	f.timerText, f.Timer = "", image.Rectangle{}
	if p.timer {
		f.Timer = s.timer
		r.drawTimer(f, t)
		f.Texts = append(f.Texts, timerBox(f))
	}
	s.cur = i
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
// the column allows), the countdown, the device ID and the IP address (what
// the typed-code path asks for) beside the QR.
func (r *Renderer) pairColumn(f *Frame, v View, box image.Rectangle) {
	h := f.Img.Rect.Dy()
	items := []item{{text: "Pairing code", kind: regular, max: h / 14, min: minFontSize, color: gray}}
	for _, g := range strings.Split(v.PairingCode, "-") {
		items = append(items, item{text: g, kind: bold, max: h / 4, min: 16, color: ink, reserve: codeTemplate(g)})
	}
	items = append(items,
		item{text: "Time left", kind: regular, max: h / 14, min: minFontSize, color: gray},
		item{text: v.timerText(), kind: bold, max: h / 6, min: 14, color: blue, timer: true, reserve: timerTemplate})
	if v.DeviceID != "" {
		items = append(items,
			item{text: "Device ID", kind: regular, max: h / 14, min: minFontSize, color: gray},
			item{text: v.DeviceID, kind: regular, max: h / 14, min: minFontSize, color: ink, wrap: true})
	}
	if v.IPAddress != "" {
		items = append(items,
			item{text: "IP address", kind: regular, max: h / 14, min: minFontSize, color: gray},
			item{text: v.IPAddress, kind: regular, max: h / 14, min: minFontSize, color: ink, wrap: true})
	}
	r.body(f, nil, box, items)
}
