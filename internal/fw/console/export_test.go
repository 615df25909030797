package console

import (
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/zmonitor/firmware/internal/proto/auditlog"
)

// exportingDevice is the fake with a whole audit log to export.
type exportingDevice struct {
	*fakeDevice
	log string
	err error
}

func (d *exportingDevice) AuditExport(w io.Writer) error {
	io.WriteString(w, d.log)
	return d.err
}

// `audit export` prints the whole log between the markers zm-central
// devices verify-audit cuts a capture at; an export that fails prints no
// end marker, so the capture is known to be cut short.
func TestAuditExport(t *testing.T) {
	log := `{"seq":1}` + "\n" + `{"seq":2}` + "\n"
	out := run(t, &exportingDevice{fakeDevice: newFake(t), log: log}, nil, "audit export\r")
	got, err := auditlog.FromCapture([]byte(out))
	if err != nil || string(got) != log {
		t.Fatalf("FromCapture(console output) = %q, %v; output:\n%s", got, err, out)
	}
	out = run(t, &exportingDevice{fakeDevice: newFake(t), log: `{"seq":1}` + "\n", err: errors.New("segment 2: hash mismatch")}, nil, "audit export\r")
	if _, err := auditlog.FromCapture([]byte(out)); !errors.Is(err, auditlog.ErrCutShort) || !strings.Contains(out, "error: audit export: segment 2: hash mismatch") {
		t.Fatalf("failed export: %v\n%s", err, out)
	}
	if out := run(t, newFake(t), nil, "audit export\r"); !strings.Contains(out, "error: audit export: this device cannot export its audit log") {
		t.Fatalf("device without export: %s", out)
	}
}
