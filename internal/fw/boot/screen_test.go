package boot

import (
	"bytes"
	"errors"
	"image"
	"log/slog"
	"strings"
	"testing"

	"periph.io/x/conn/v3/display/displaytest"

	"github.com/zmonitor/firmware/internal/base/version"
	"github.com/zmonitor/firmware/internal/fw/engine"
	"github.com/zmonitor/firmware/internal/fw/screen"
)

func traceInto(buf *bytes.Buffer) *bootTrace {
	return &bootTrace{log: slog.New(slog.NewTextHandler(buf, nil))}
}

// bootView is the UNPROVISIONED screen PID 1 renders ahead from the kernel
// command line (readProfile).
func bootView(k kernelArgs) screen.View {
	return engine.StartView(engine.Options{DeviceID: k.deviceID, DeviceSerial: k.serial, DeviceLabel: k.label, FirmwareVersion: version.Version}, "0.0.0.0")
}

func TestScreenMakerRendersTheFirstFrameBeforeTheDisplayOpens(t *testing.T) {
	args := kernelArgs{deviceID: "ZM-EARLY-01", serial: "SN-EARLY-000001", label: "Bed 4"}
	m := startScreen()
	m.renderAhead(bootView(args), image.Pt(240, 240))
	var log bytes.Buffer
	panel := &displaytest.Drawer{Img: image.NewNRGBA(image.Rect(0, 0, 240, 240))}
	m.setDisplay(panel, nil)
	s, err := m.get(traceInto(&log))
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range []string{"screen ready (fonts parsed)", "first frame rendered ahead"} {
		if !strings.Contains(log.String(), step) {
			t.Errorf("trace lacks %q:\n%s", step, log.String())
		}
	}
	if again, _ := m.get(nil); again != s {
		t.Error("a second get made another Screen")
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

func TestScreenMakerWithoutARequest(t *testing.T) {
	m := startScreen()
	var log bytes.Buffer
	m.setDisplay(&displaytest.Drawer{Img: image.NewNRGBA(image.Rect(0, 0, 240, 240))}, nil)
	if s, err := m.get(traceInto(&log)); s == nil || err != nil {
		t.Fatalf("no screen: %v", err)
	}
	if strings.Contains(log.String(), "rendered ahead") {
		t.Errorf("rendered ahead without a request:\n%s", log.String())
	}
	// Too late: ignored, and it does not block.
	m.renderAhead(bootView(kernelArgs{deviceID: "ZM-LATE"}), image.Pt(240, 240))
}

func TestScreenMakerOnATooSmallDisplay(t *testing.T) {
	m := startScreen()
	m.noRenderAhead()
	m.setDisplay(&displaytest.Drawer{Img: image.NewNRGBA(image.Rect(0, 0, 128, 128))}, nil)
	if s, err := m.get(nil); s != nil || !errors.Is(err, screen.ErrTooSmall) {
		t.Errorf("a screen on a 128×128 display: %v, %v", s, err)
	}
}

func TestScreenMakerWithoutADisplay(t *testing.T) {
	m := startScreen()
	m.setDisplay(nil, errors.New("no /dev/fb0"))
	if s, err := m.get(nil); s != nil || err == nil || err.Error() != "display: no /dev/fb0" {
		t.Errorf("get without a display = %v, %v", s, err)
	}
}
