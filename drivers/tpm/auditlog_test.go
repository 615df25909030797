package tpm

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zmonitor/firmware/internal/base/clock"
	"github.com/zmonitor/firmware/internal/base/clock/clocktest"
	"github.com/zmonitor/firmware/internal/fw/audit"
	"github.com/zmonitor/firmware/internal/proto/auditlog"
)

// The audit log anchored in a real TPM (the simulator, swtpm): records are
// written and the TPM power-cycled, then someone with the disk deletes the
// last records, or edits one and recomputes the chain after it. Both pass
// the hash chain alone (auditlog.Verify); both are refused by the anchor the
// TPM kept.
func TestAuditLogAnchoredInTheTPM(t *testing.T) {
	build := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name   string
		tamper func(t *testing.T, b []byte) []byte
		want   string
	}{
		{"last records deleted", func(t *testing.T, b []byte) []byte {
			ls := bytes.SplitAfter(b, []byte("\n"))
			return bytes.Join(ls[:len(ls)-3], nil) // the empty tail and two records
		}, "were deleted"},
		{"record edited and chain recomputed", func(t *testing.T, b []byte) []byte {
			b = bytes.Replace(b, []byte("press 1"), []byte("press 9"), 1)
			return rechain(t, b)
		}, "the log was changed and its chain recomputed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			forEachBackend(t, func(t *testing.T, b backend) {
				dir := t.TempDir()
				fc := clocktest.New(build.Add(time.Hour))
				s, err := New(b.open(t), provision)
				if err != nil {
					t.Fatal(err)
				}
				o := audit.Opts{Wall: clock.NewWall(fc, build, nil), Mono: fc, Anchor: s, Signer: s.Identity(), DeviceID: "ZM-001"}
				l, err := audit.Open(dir, o)
				if err != nil {
					t.Fatal(err)
				}
				for i := 0; i < 5; i++ {
					if err := l.Record(audit.Event{Event: "BUTTON_PRESSED", Actor: "button", Reason: fmt.Sprintf("press %d", i)}); err != nil {
						t.Fatal(err)
					}
				}
				if err := l.Close(); err != nil {
					t.Fatal(err)
				}
				_ = s.Close()
				b.restart(t) // a power cycle

				path := filepath.Join(dir, audit.FileName)
				whole, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				bad := tc.tamper(t, whole)
				if _, _, err := auditlog.Verify(bytes.NewReader(bad)); err != nil {
					t.Fatalf("the tampered log should pass the hash chain alone: %v", err)
				}
				if err := os.WriteFile(path, bad, 0o600); err != nil {
					t.Fatal(err)
				}
				s2 := newStore(t, b, nil)
				o.Anchor, o.Signer = s2, s2.Identity()
				_, err = audit.Open(dir, o)
				var ae *audit.AnchorError
				if !errors.As(err, &ae) || !errors.Is(err, audit.ErrTampered) || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("Open = %v, want an AnchorError saying %q", err, tc.want)
				}
			})
		})
	}
}

// rechain recomputes every line's hash and the next line's prev, as
// someone with the disk who edited a line would.
func rechain(t *testing.T, b []byte) []byte {
	t.Helper()
	var out []byte
	prev := ""
	for _, ln := range bytes.SplitAfter(b, []byte("\n")) {
		if len(ln) == 0 {
			continue
		}
		s := strings.TrimSuffix(string(ln), "\n")
		if prev != "" {
			i := strings.LastIndex(s, `,"prev":"`) + 1
			s = s[:i+8] + prev + s[i+8+64:]
		}
		i := strings.LastIndex(s, `,"hash":"`)
		sum := sha256.Sum256([]byte(s[:i] + "}"))
		prev = hex.EncodeToString(sum[:])
		s = s[:i] + `,"hash":"` + prev + `"}`
		out = append(out, s+"\n"...)
	}
	return out
}
