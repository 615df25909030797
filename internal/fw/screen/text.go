package screen

import (
	"image"
	"image/color"
	"strings"
	"unicode/utf8"

	"github.com/fogleman/gg"
)

// minFontSize is the smallest text the layouts ever use, in pixels.
const minFontSize = 10

type align int

const (
	alignCenter align = iota
	alignLeft
	alignRight
)

// item is one entry of a vertical stack: a text (wrapped or not) or a
// graphic. Sizes are in pixels; the fitter scales every item by one factor
// between its max and its min until the stack fits its box.
type item struct {
	text     string
	kind     fontKind
	max, min int
	color    color.RGBA
	wrap     bool
	timer    bool // the countdown (its reserve is timerTemplate)
	// reserve is the widest text the item may ever show (one line); the
	// layout keeps room for it so that a later text fits in the same place.
	reserve string

	// graphic items have no text: draw paints into the rectangle.
	draw func(dc *gg.Context, r image.Rectangle)
}

// placed is an item (or one line of it) at its final place.
type placed struct {
	text     string
	face     *cachedFace
	x, base  int // dot
	color    color.RGBA
	line     image.Rectangle // the line box (advance × ascent+descent)
	timer    bool
	graphic  func(dc *gg.Context, r image.Rectangle)
	truncate bool
}

// fitStack lays items out top to bottom inside box, centred horizontally,
// with the spare height spread evenly between them. It reports false when
// even the minimum sizes do not fit; the lines are then cut to the box.
func (fs *fonts) fitStack(items []item, box image.Rectangle) ([]placed, bool) {
	for scale := 100; scale >= 0; scale -= 4 {
		if out, ok := fs.tryStack(items, box, scale, false); ok {
			return out, true
		}
	}
	out, _ := fs.tryStack(items, box, 0, true)
	return out, false
}

func (fs *fonts) tryStack(items []item, box image.Rectangle, scale int, force bool) ([]placed, bool) {
	type block struct {
		lines  []string
		face   *cachedFace
		height int
		asc    int
	}
	blocks := make([]block, len(items))
	total := 0
	ok := true
	for i, it := range items {
		size := max(it.min, it.max*scale/100)
		if it.draw != nil {
			blocks[i] = block{height: size}
			total += size
			continue
		}
		f := fs.face(it.kind, size)
		asc, desc := lineMetrics(f)
		var lines []string
		if it.wrap {
			lines = wrapText(f, it.text, box.Dx())
		} else {
			lines = []string{it.text}
		}
		for _, l := range lines {
			w := textWidth(f, l)
			if it.reserve != "" {
				w = max(w, textWidth(f, it.reserve))
			}
			if w > box.Dx() {
				ok = false
			}
		}
		blocks[i] = block{lines: lines, face: f, height: len(lines) * (asc + desc), asc: asc}
		total += blocks[i].height
	}
	if total > box.Dy() {
		ok = false
	}
	if !ok && !force {
		return nil, false
	}
	gap := 0
	if spare := box.Dy() - total; spare > 0 {
		gap = spare / (len(items) + 1)
	}
	y := box.Min.Y + gap
	var out []placed
	for i, it := range items {
		b := blocks[i]
		if it.draw != nil {
			out = append(out, placed{graphic: it.draw, line: image.Rect(box.Min.X, y, box.Max.X, y+b.height)})
			y += b.height + gap
			continue
		}
		lh := b.height / len(b.lines)
		for _, l := range b.lines {
			text := l
			cut := false
			if force {
				text, cut = ellipsize(b.face, l, box.Dx())
			}
			w := textWidth(b.face, text)
			x := box.Min.X + (box.Dx()-w)/2
			out = append(out, placed{
				text: text, face: b.face, x: x, base: y + b.asc, color: it.color, timer: it.timer,
				line: image.Rect(x, y, x+w, y+lh), truncate: cut,
			})
			y += lh
		}
		y += gap
	}
	return out, ok
}

// wrapText breaks s into lines no wider than width: at spaces first, and
// inside words that are too long after '-', '.', '/', ':' or '_' where
// possible, else anywhere.
func wrapText(f *cachedFace, s string, width int) []string {
	var lines []string
	line := ""
	for _, word := range strings.Fields(s) {
		if line != "" && textWidth(f, line+" "+word) <= width {
			line += " " + word
			continue
		}
		if line != "" {
			lines = append(lines, line)
			line = ""
		}
		for textWidth(f, word) > width {
			n := breakPoint(f, word, width)
			lines = append(lines, word[:n])
			word = word[n:]
		}
		line = word
	}
	if line != "" || len(lines) == 0 {
		lines = append(lines, line)
	}
	return lines
}

// breakPoint returns how many bytes of word go on a line of width: the
// longest prefix that fits, ending after punctuation if one does; at least
// one rune.
func breakPoint(f *cachedFace, word string, width int) int {
	best, bestPunct := 0, 0
	for i, r := range word {
		end := i + utf8.RuneLen(r)
		if textWidth(f, word[:end]) > width {
			break
		}
		best = end
		if strings.ContainsRune("-./:_", r) {
			bestPunct = end
		}
	}
	switch {
	case bestPunct > 0:
		return bestPunct
	case best > 0:
		return best
	}
	_, n := utf8.DecodeRuneInString(word)
	return n
}

// ellipsize cuts s to fit width, ending it with "…"; it reports whether it
// cut.
func ellipsize(f *cachedFace, s string, width int) (string, bool) {
	if textWidth(f, s) <= width {
		return s, false
	}
	r := []rune(s)
	for len(r) > 0 && textWidth(f, string(r)+"…") > width {
		r = r[:len(r)-1]
	}
	return string(r) + "…", true
}
