package audittest_test

import (
	"errors"
	"testing"

	"github.com/zmonitor/firmware/internal/fw/audit"
	"github.com/zmonitor/firmware/internal/fw/audit/audittest"
	"github.com/zmonitor/firmware/internal/proto/auditlog"
)

func TestRecorder(t *testing.T) {
	var r audittest.Recorder
	if err := r.Record(audit.Event{Event: "BOOT"}); err != nil {
		t.Fatal(err)
	}
	if err := r.Record(audit.Event{Event: "X", Reason: "a\nb"}); !errors.Is(err, auditlog.ErrRefused) {
		t.Fatalf("fake accepted what the log refuses: %v", err)
	}
	if ev := r.Named("BOOT"); len(ev) != 1 || len(r.Events()) != 1 {
		t.Fatalf("events %+v", r.Events())
	}
	failing := audittest.Recorder{Err: errors.New("disk full")}
	if err := failing.Record(audit.Event{Event: "BOOT"}); err == nil || len(failing.Events()) != 0 {
		t.Fatal("Err not returned")
	}
}
