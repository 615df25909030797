package boot

import (
	"errors"
	"fmt"
	"image"
	"sync"
	"time"

	"periph.io/x/conn/v3/display"

	"github.com/zmonitor/firmware/internal/fw/screen"
)

// screenMaker makes the firmware's one Screen, and gets its renderer ready
// while the rest of the boot runs: the fonts are compiled in, so they are
// parsed from the first instant; the first frame is rendered ahead as soon
// as its view can be guessed (PID 1: the kernel command line's identity and
// the board profile's panel size); the Screen is made on the display once
// it opens. Under QEMU's emulated CPU parsing and rendering take ~0.1 s;
// started once the display had opened, they were the last thing the first
// frame waited for (docs/qemu.md, "Where the boot time goes").
type screenMaker struct {
	aheadOnce sync.Once
	ahead     chan renderAhead // at most one request, then closed
	parsed    chan parsedFonts

	displayOnce sync.Once
	display     chan openedDisplay // exactly one

	made sync.Once
	scr  *screen.Screen
	err  error
}

// renderAhead is the view to render before the display opens, and the
// panel's size.
type renderAhead struct {
	view screen.View
	size image.Point
}

// parsedFonts is the renderer the early goroutine made, and when (time
// since the kernel started; warmed is 0 when nothing was rendered ahead).
type parsedFonts struct {
	r              *screen.Renderer
	err            error
	parsed, warmed time.Duration
}

type openedDisplay struct {
	d   display.Drawer
	err error
}

// startScreen starts parsing the fonts.
func startScreen() *screenMaker {
	m := &screenMaker{ahead: make(chan renderAhead, 1), parsed: make(chan parsedFonts, 1), display: make(chan openedDisplay, 1)}
	go func() {
		var out parsedFonts
		out.r, out.err = screen.NewRenderer()
		out.parsed = sinceKernelStart()
		req, ok := <-m.ahead
		if out.err == nil && ok {
			if _, err := out.r.Render(req.view, req.size.X, req.size.Y); err == nil {
				out.warmed = sinceKernelStart()
			}
		}
		m.parsed <- out
	}()
	return m
}

// renderAhead asks for v to be rendered at size once the fonts are parsed,
// so that the frame that shows it is found made. Only the first call
// counts; none is needed.
func (m *screenMaker) renderAhead(v screen.View, size image.Point) {
	m.aheadOnce.Do(func() {
		m.ahead <- renderAhead{v, size}
		close(m.ahead)
	})
}

// noRenderAhead says that nothing will be asked to be rendered ahead.
func (m *screenMaker) noRenderAhead() { m.aheadOnce.Do(func() { close(m.ahead) }) }

// setDisplay hands over the opened display, or why it did not open. Only
// the first call counts.
func (m *screenMaker) setDisplay(d display.Drawer, err error) {
	if d == nil && err == nil {
		err = errors.New("no display")
	}
	m.displayOnce.Do(func() { m.display <- openedDisplay{d, err} })
}

// get waits for the fonts and the display and returns the Screen, the same
// one on every call, or why there is none: the display did not open, the
// fonts could not be parsed, or the display is too small.
func (m *screenMaker) get(tr *bootTrace) (*screen.Screen, error) {
	m.made.Do(func() {
		m.noRenderAhead() // nothing was asked: do not wait for a request
		out := <-m.parsed
		od := <-m.display
		switch {
		case od.err != nil:
			m.err = fmt.Errorf("display: %w", od.err)
		case out.err != nil:
			m.err = out.err
		default:
			tr.at("screen ready (fonts parsed)", out.parsed)
			if out.warmed != 0 {
				tr.at("first frame rendered ahead", out.warmed)
			}
			m.scr, m.err = screen.NewWithRenderer(od.d, out.r)
		}
	})
	return m.scr, m.err
}
