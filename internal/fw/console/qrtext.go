package console

import (
	"strings"

	"github.com/zmonitor/firmware/internal/fw/qr"
)

// Half-block rendering of a QR: each character cell is one module wide and
// two modules tall, which is square on a terminal whose cells are about
// twice as tall as wide.
const (
	quietModules = 4
	// ansiOn sets black on bright white so the code is dark-on-light on
	// every terminal theme; ansiOff restores the terminal's colours.
	ansiOn  = "\x1b[30;107m"
	ansiOff = "\x1b[0m"
)

// HalfBlocks draws m with a 4-module quiet zone using ▀ ▄ █ and spaces, dark
// modules in the foreground colour. With ansi set each line forces black on
// white; without it the terminal's own colours are used (correct on a light
// theme, inverted on a dark one).
func HalfBlocks(m *qr.Matrix, ansi bool) string {
	var b strings.Builder
	lo, hi := -quietModules, m.Size+quietModules
	for y := lo; y < hi; y += 2 {
		if ansi {
			b.WriteString(ansiOn)
		}
		for x := lo; x < hi; x++ {
			top, bottom := m.Dark(x, y), y+1 < hi && m.Dark(x, y+1)
			switch {
			case top && bottom:
				b.WriteRune('█')
			case top:
				b.WriteRune('▀')
			case bottom:
				b.WriteRune('▄')
			default:
				b.WriteByte(' ')
			}
		}
		if ansi {
			b.WriteString(ansiOff)
		}
		b.WriteByte('\n')
	}
	return b.String()
}
