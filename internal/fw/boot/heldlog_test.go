package boot

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

func TestHeldHandler(t *testing.T) {
	var out bytes.Buffer
	h := newHeldHandler(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelInfo}))
	log := slog.New(h)
	log.Info("boot", "step", "one")
	log.With("part", "disk").Info("mounted")
	if out.Len() != 0 {
		t.Fatalf("info written while held: %q", out.String())
	}
	log.Error("display", "err", "gone")
	if !strings.Contains(out.String(), "msg=display err=gone") || strings.Contains(out.String(), "step=one") {
		t.Fatalf("error not written at once, or info with it: %q", out.String())
	}
	log.Debug("not enabled")
	h.release()
	log.Info("after")
	got := out.String()
	iOne, iDisk, iAfter := strings.Index(got, "step=one"), strings.Index(got, "msg=mounted part=disk"), strings.Index(got, "msg=after")
	if iOne < 0 || iDisk < 0 || iAfter < 0 || !(iOne < iDisk && iDisk < iAfter) {
		t.Errorf("held records not written in order on release, then the rest: %q", got)
	}
	if strings.Contains(got, "not enabled") {
		t.Errorf("a disabled level was written: %q", got)
	}
}

// The first frame's trace line goes out at once, ahead of the held start-up
// lines, which follow it.
func TestFirstFrameTraceLetsTheHeldLinesOut(t *testing.T) {
	var out bytes.Buffer
	text := slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelInfo})
	held := newHeldHandler(text)
	trace := &bootTrace{log: slog.New(held), direct: slog.New(text), release: held.release}
	trace.mark("data partition mounted")
	trace.mark("settings opened")
	if out.Len() != 0 {
		t.Fatalf("start-up lines written before the first frame: %q", out.String())
	}
	trace.mark(firstFrameDrawn)
	trace.mark("keys ready")
	got := out.String()
	iFrame, iData, iSet, iKeys := strings.Index(got, firstFrameDrawn), strings.Index(got, "data partition mounted"), strings.Index(got, "settings opened"), strings.Index(got, "keys ready")
	if iFrame < 0 || iData < 0 || iSet < 0 || iKeys < 0 || !(iFrame < iData && iData < iSet && iSet < iKeys) {
		t.Errorf("want the first frame's line, then the held lines in order, then the rest: %q", got)
	}
}
