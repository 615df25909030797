package main

import (
	"image"
	"sync"
	"time"

	"periph.io/x/conn/v3/display"

	"github.com/zmonitor/firmware/internal/fw/screen"
)

// earlyScreen gets the screen's renderer ready while PID 1 mounts the file
// systems and opens the display: the fonts are compiled in, so they are
// parsed from the first instant, and the UNPROVISIONED boot screen is
// rendered at the board's panel size as soon as the kernel command line and
// the board profile are known. Under QEMU's emulated CPU the two take
// ~0.1 s; started once the display had opened, they were the last thing
// the first frame waited for (docs/qemu.md, "Where the boot time goes").
type earlyScreen struct {
	once sync.Once
	warm chan warmRequest // at most one request, then closed
	done chan earlyRenderer
}

// warmRequest is the view to render ahead and the panel's size.
type warmRequest struct {
	view screen.View
	size image.Point
}

// earlyRenderer is what the early goroutine made, and when (time since the
// kernel started; warmed is 0 when nothing was rendered ahead).
type earlyRenderer struct {
	r              *screen.Renderer
	err            error
	parsed, warmed time.Duration
}

// startEarlyScreen starts parsing the fonts.
func startEarlyScreen() *earlyScreen {
	e := &earlyScreen{warm: make(chan warmRequest, 1), done: make(chan earlyRenderer, 1)}
	go func() {
		var out earlyRenderer
		out.r, out.err = screen.NewRenderer()
		out.parsed = sinceKernelStart()
		req, ok := <-e.warm
		if out.err == nil && ok {
			if _, err := out.r.Render(req.view, req.size.X, req.size.Y); err == nil {
				out.warmed = sinceKernelStart()
			}
		}
		e.done <- out
	}()
	return e
}

// request asks for r's view to be rendered ahead at its size; nil asks for
// nothing. Only the first call counts.
func (e *earlyScreen) request(r *warmRequest) {
	e.once.Do(func() {
		if r != nil {
			e.warm <- *r
		}
		close(e.warm)
	})
}

// screen waits for the renderer and returns a Screen drawing with it on d,
// or nil if the fonts could not be parsed or d is too small (device.Run
// then makes its own Screen and reports why).
func (e *earlyScreen) screen(d display.Drawer, trace *bootTrace) *screen.Screen {
	e.request(nil) // nothing was asked: do not wait for a request
	out := <-e.done
	if out.err != nil {
		return nil
	}
	trace.at("screen ready (fonts parsed)", out.parsed)
	if out.warmed != 0 {
		trace.at("boot screen warmed (command line identity)", out.warmed)
	}
	s, err := screen.NewWithRenderer(d, out.r)
	if err != nil {
		return nil
	}
	return s
}
