package main

import (
	"bytes"
	"image"
	"log/slog"
	"strings"
	"testing"

	"periph.io/x/conn/v3/display/displaytest"

	"github.com/zmonitor/firmware/internal/fw/screen"
)

func traceInto(buf *bytes.Buffer) *bootTrace {
	return &bootTrace{log: slog.New(slog.NewTextHandler(buf, nil))}
}

func TestEarlyScreenRendersTheBootScreenBeforeTheDisplayOpens(t *testing.T) {
	args := kernelArgs{deviceID: "ZM-EARLY-01", serial: "SN-EARLY-000001", label: "Bed 4"}
	e := startEarlyScreen()
	e.request(&warmRequest{view: bootView(args), size: image.Pt(240, 240)})
	var log bytes.Buffer
	panel := &displaytest.Drawer{Img: image.NewNRGBA(image.Rect(0, 0, 240, 240))}
	s := e.screen(panel, traceInto(&log))
	if s == nil {
		t.Fatal("no screen")
	}
	for _, step := range []string{"screen ready (fonts parsed)", "boot screen warmed (command line identity)"} {
		if !strings.Contains(log.String(), step) {
			t.Errorf("trace lacks %q:\n%s", step, log.String())
		}
	}
	if err := s.Show(bootView(args)); err != nil {
		t.Fatal(err)
	}
	// What the panel shows is what a renderer made from scratch draws.
	r, err := screen.NewRenderer()
	if err != nil {
		t.Fatal(err)
	}
	want, err := r.Render(bootView(args), 240, 240)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(want.Img.Pix); i += 4 {
		w, g := want.Img.Pix[i:i+3], panel.Img.Pix[i:i+3]
		if !bytes.Equal(w, g) {
			t.Fatalf("pixel %d: panel %v, want %v", i/4, g, w)
		}
	}
}

func TestEarlyScreenWithoutARequest(t *testing.T) {
	e := startEarlyScreen()
	var log bytes.Buffer
	panel := &displaytest.Drawer{Img: image.NewNRGBA(image.Rect(0, 0, 240, 240))}
	if s := e.screen(panel, traceInto(&log)); s == nil {
		t.Fatal("no screen")
	}
	if strings.Contains(log.String(), "boot screen warmed") {
		t.Errorf("warmed without a request:\n%s", log.String())
	}
	// Too late: ignored, and it does not block.
	e.request(&warmRequest{view: bootView(kernelArgs{deviceID: "ZM-LATE"}), size: image.Pt(240, 240)})
}

func TestEarlyScreenOnATooSmallDisplay(t *testing.T) {
	e := startEarlyScreen()
	e.request(nil)
	var log bytes.Buffer
	if s := e.screen(&displaytest.Drawer{Img: image.NewNRGBA(image.Rect(0, 0, 128, 128))}, traceInto(&log)); s != nil {
		t.Error("a screen on a 128×128 display")
	}
}
