package auditlog

import (
	"bytes"
	"errors"
	"fmt"
)

// Markers the device's console prints around `audit export`'s records, so
// that a capture of the console (a terminal log with prompts, echo and
// other output around the export) can be cut to the log. (Not PEM-like:
// the console blanks lines that look like a PEM block.)
const (
	ExportBegin = "=== BEGIN ZMONITOR AUDIT LOG ==="
	ExportEnd   = "=== END ZMONITOR AUDIT LOG ==="
)

// ErrCutShort is returned by FromCapture when the capture has the begin
// marker but not the end marker: the export stopped (an error, a cable
// pulled) and what follows the marker is not the whole log.
var ErrCutShort = errors.New("audit export: no end marker: the capture is cut short")

// FromCapture returns the records of an export: the record lines between
// the markers when b has them (a console capture: other lines there are
// the firmware's log), else b itself (a file of JSON Lines). Serial line ends (CR LF) become LF: a record never holds a
// CR of its own (JSON escapes it).
func FromCapture(b []byte) ([]byte, error) {
	b = bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n"))
	i := bytes.Index(b, []byte(ExportBegin+"\n"))
	if i < 0 {
		if bytes.Contains(b, []byte(ExportEnd)) {
			return nil, fmt.Errorf("audit export: an end marker without the begin marker")
		}
		return b, nil
	}
	b = b[i+len(ExportBegin)+1:]
	j := bytes.Index(b, []byte(ExportEnd))
	if j < 0 {
		return nil, ErrCutShort
	}
	if j > 0 && b[j-1] != '\n' {
		return nil, fmt.Errorf("audit export: the end marker does not start a line")
	}
	if bytes.Contains(b[j+len(ExportEnd):], []byte(ExportBegin)) {
		return nil, fmt.Errorf("audit export: the capture holds more than one export: cut it to one")
	}
	// The firmware's log shares the serial line: its lines (never a "{")
	// may land between records. Dropping them cannot make a log verify
	// that would not: every record line is kept and checked.
	var out []byte
	for _, line := range bytes.SplitAfter(b[:j], []byte("\n")) {
		if len(line) > 0 && line[0] == '{' {
			out = append(out, line...)
		}
	}
	return out, nil
}
