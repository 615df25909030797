package auditlog

import (
	"bytes"
	"errors"
	"testing"
)

func TestFromCapture(t *testing.T) {
	recs := "{\"seq\":1}\n{\"seq\":2}\n"
	for name, c := range map[string]struct {
		in, want string
		err      bool
	}{
		"plain JSON Lines":  {recs, recs, false},
		"console capture":   {"zm> audit export\r\n" + ExportBegin + "\r\n{\"seq\":1}\r\n{\"seq\":2}\r\n" + ExportEnd + "\r\nzm> ", recs, false},
		"log lines between": {ExportBegin + "\r\n{\"seq\":1}\r\ntime=2026-12-08 level=INFO msg=state\r\n{\"seq\":2}\r\n" + ExportEnd + "\r\n", recs, false},
		"empty export":      {ExportBegin + "\n" + ExportEnd + "\n", "", false},
		"cut short":         {ExportBegin + "\n" + recs, "", true},
		"end only":          {recs + ExportEnd + "\n", "", true},
		"end mid-line":      {ExportBegin + "\n{\"seq\":1}" + ExportEnd + "\n", "", true},
		"two exports":       {ExportBegin + "\n" + ExportEnd + "\n" + ExportBegin + "\n" + ExportEnd + "\n", "", true},
	} {
		got, err := FromCapture([]byte(c.in))
		if (err != nil) != c.err || err == nil && string(got) != c.want {
			t.Errorf("%s: %q, %v", name, got, err)
		}
	}
	if _, err := FromCapture([]byte(ExportBegin + "\n" + recs)); !errors.Is(err, ErrCutShort) {
		t.Errorf("cut short: %v", err)
	}
}

func FuzzFromCapture(f *testing.F) {
	f.Add([]byte(ExportBegin + "\r\n{\"seq\":1}\r\n" + ExportEnd + "\r\n"))
	f.Add([]byte("{\"seq\":1}\n"))
	f.Add([]byte(ExportBegin + "\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := FromCapture(b)
		if err != nil {
			return
		}
		if len(got) > len(b) {
			t.Fatalf("FromCapture grew the input: %q", got)
		}
		if bytes.Contains(bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n")), []byte(ExportBegin+"\n")) {
			// Cut at the markers: only record lines, each whole.
			for _, line := range bytes.SplitAfter(got, []byte("\n")) {
				if len(line) > 0 && (line[0] != '{' || line[len(line)-1] != '\n') {
					t.Fatalf("FromCapture kept a line that is not a record: %q", line)
				}
			}
		}
		if _, _, err := Verify(bytes.NewReader(got)); err != nil && !errors.Is(err, ErrTampered) {
			// Verify's errors on bad bytes are ErrTampered, or a read
			// error, which a bytes.Reader never gives.
			t.Fatalf("Verify: %v", err)
		}
	})
}
