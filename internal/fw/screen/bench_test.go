package screen

import (
	"testing"
	"time"

	"github.com/zmonitor/firmware/drivers/rgb565"
	"github.com/zmonitor/firmware/internal/proto/state"
)

// BenchmarkRenderReadyToPair240 renders a whole 240×240 READY_TO_PAIR frame
// whose countdown changed (from the cached static layer) and converts the
// whole frame to RGB565.
func BenchmarkRenderReadyToPair240(b *testing.B) {
	r := newRenderer(b)
	v := SampleView(state.ReadyToPair)
	buf := make([]byte, 240*240*2)
	if _, err := r.Render(v, 240, 240); err != nil { // warm the caches
		b.Fatal(err)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		v.Remaining = time.Duration(i%600) * time.Second
		f, err := r.Render(v, 240, 240)
		if err != nil {
			b.Fatal(err)
		}
		rgb565.Encode(buf, 480, f.Img, f.Img.Rect, rgb565.BigEndian)
	}
}

// BenchmarkRenderNewViewReadyToPair240 lays out and draws a 240×240
// READY_TO_PAIR frame from scratch (no static layer; the QR matrix and the
// glyphs are cached) and converts it to RGB565: what a screen change costs.
func BenchmarkRenderNewViewReadyToPair240(b *testing.B) {
	r := newRenderer(b)
	views := [2]View{SampleView(state.ReadyToPair), SampleView(state.ReadyToPair)}
	views[1].DeviceLabel = "other"
	buf := make([]byte, 240*240*2)
	if _, err := r.Render(views[0], 240, 240); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		f, err := r.Render(views[i%2], 240, 240)
		if err != nil {
			b.Fatal(err)
		}
		rgb565.Encode(buf, 480, f.Img, f.Img.Rect, rgb565.BigEndian)
	}
}

// BenchmarkTickReadyToPair240 is a countdown tick on 240×240: redraw the
// countdown's rectangle and convert only it, what happens every second.
func BenchmarkTickReadyToPair240(b *testing.B) {
	r := newRenderer(b)
	v := SampleView(state.ReadyToPair)
	f, err := r.Render(v, 240, 240)
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 240*240*2)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		v.Remaining = time.Duration(i%600) * time.Second
		rect := r.Tick(f, v)
		rgb565.Encode(buf, rect.Dx()*2, f.Img, rect, rgb565.BigEndian)
	}
	b.ReportMetric(float64(f.Timer.Dx()*f.Timer.Dy()*2), "bytes/tick")
}

// BenchmarkRenderColdReadyToPair240 includes parsing the fonts (NewRenderer)
// and the first rasterization of every glyph: the cost at boot.
func BenchmarkRenderColdReadyToPair240(b *testing.B) {
	v := SampleView(state.ReadyToPair)
	for b.Loop() {
		r, err := NewRenderer()
		if err != nil {
			b.Fatal(err)
		}
		if _, err := r.Render(v, 240, 240); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRenderColdAllStates240 makes a new Renderer and renders the
// sample view of every state once at 240×240: the first render of each
// screen (faces made, glyphs measured and rasterized), as after boot.
func BenchmarkRenderColdAllStates240(b *testing.B) {
	for b.Loop() {
		r, err := NewRenderer()
		if err != nil {
			b.Fatal(err)
		}
		for _, s := range state.All {
			if _, err := r.Render(SampleView(s), 240, 240); err != nil {
				b.Fatal(err)
			}
		}
	}
}
