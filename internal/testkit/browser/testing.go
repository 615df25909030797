package browser

import (
	"bytes"
	"context"
	"os"
	"strings"
	"sync"
	"testing"
)

// EnvRequired, when "1", turns "no browser" into a test failure instead of
// a skip. `make unit` (and so `make test` and CI) sets it: there the
// browser is installed by scripts/install-deps.sh, and a test that quietly
// skipped would hide a broken set-up.
const EnvRequired = "ZM_TEST_BROWSER_REQUIRED"

// ForTest starts a browser for t and stops it when t ends. Without a
// browser on the machine the test is skipped, or fails when EnvRequired is
// set. When t fails, the browser's own output is logged.
func ForTest(t testing.TB, opts Options) *Browser {
	t.Helper()
	if _, err := Chromium(); err != nil {
		if os.Getenv(EnvRequired) == "1" {
			t.Fatalf("%v (%s=1)", err, EnvRequired)
		}
		t.Skip(err)
	}
	out := &syncBuffer{}
	if opts.Output == nil {
		opts.Output = out
	}
	b, err := Start(context.Background(), opts)
	if err != nil {
		t.Fatalf("%v\nbrowser output:\n%s", err, out.String())
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("%v", err)
		}
		if t.Failed() {
			if log := quiet(out.String()); log != "" {
				t.Logf("browser output:\n%s", log)
			}
		}
	})
	return b
}

// Tab opens a tab that closes when t ends.
func (b *Browser) Tab(t testing.TB) context.Context {
	ctx, cancel := b.NewTab()
	t.Cleanup(cancel)
	return ctx
}

// quiet drops the lines a headless browser in a container always prints
// (no D-Bus session or system bus) from its output.
func quiet(out string) string {
	var keep []string
	for _, l := range strings.Split(out, "\n") {
		if l != "" && !strings.Contains(l, "dbus") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

// syncBuffer is a bytes.Buffer the browser's output goroutine and the test
// can share.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

func (s *syncBuffer) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Len()
}
