package auditlog

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

// chainOf seals n records linked as the firmware's log links them.
func chainOf(t *testing.T, n int) [][]byte {
	t.Helper()
	prev := ZeroHash
	var lines [][]byte
	for i := 1; i <= n; i++ {
		r := Record{Seq: uint64(i), WallTime: time.Date(2026, 12, 8, 3, 0, i, 0, time.UTC), BootID: strings.Repeat("ab", 16),
			Event: Event{Event: "BUTTON_PRESSED", Actor: "button"}, Prev: prev}
		line, err := Seal(&r)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, line)
		prev = r.Hash
	}
	return lines
}

func TestVerifyExportChain(t *testing.T) {
	lines := chainOf(t, 3)
	s, err := VerifyExport(bytes.NewReader(bytes.Join(lines, nil)), nil, "ZM-001")
	if err != nil || s.Records != 3 || s.LastHash == ZeroHash {
		t.Fatalf("VerifyExport = %+v, %v", s, err)
	}
	for name, bad := range map[string][]byte{
		"edited":        bytes.Join([][]byte{lines[0], bytes.Replace(lines[1], []byte("button"), []byte("buttoN"), 1), lines[2]}, nil),
		"middle gone":   bytes.Join([][]byte{lines[0], lines[2]}, nil),
		"torn last":     bytes.Join([][]byte{lines[0], lines[1], lines[2][:len(lines[2])-1]}, nil),
		"first missing": bytes.Join(lines[1:], nil),
	} {
		if _, err := VerifyExport(bytes.NewReader(bad), nil, ""); !errors.Is(err, ErrTampered) {
			t.Errorf("%s: %v, want ErrTampered", name, err)
		}
	}
	if s, err := VerifyExport(bytes.NewReader(nil), nil, ""); err != nil || s.Records != 0 || s.LastHash != ZeroHash {
		t.Errorf("empty log: %+v, %v", s, err)
	}
}
