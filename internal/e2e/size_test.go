package e2e

import (
	"github.com/zmonitor/firmware/internal/testkit/harness"

	"context"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/zmonitor/firmware/board"
	"github.com/zmonitor/firmware/internal/testkit/testpki"
)

// The size goals of the firmware image: the stripped firmware binary under
// 10 MB (issue 14; 8 MB from issue 5 until then) and the gzip initramfs
// under 4 MB, in decimal bytes.
const (
	firmwareBudget  = 10_000_000
	initramfsBudget = 4_000_000
)

// TestFirmwareWithinSizeBudget builds the firmware exactly as make firmware
// does and fails when it, or the initramfs that carries it, outgrows its
// budget. docs/image.md ("Binary size") says where the bytes go and what
// was traded for them.
func TestFirmwareWithinSizeBudget(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-compiles the firmware; skipped with -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dir := t.TempDir()
	fw, err := harness.BuildFirmware(ctx, repoRoot(t), dir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	initrd := filepath.Join(dir, "initramfs.cpio.gz")
	root, err := testpki.NewCA("size budget root", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	anchor := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: root.Cert.Raw})
	if err := harness.BuildInitramfs(fw, board.QEMUVirt(), anchor, initrd); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		path   string
		budget int64
	}{{fw, firmwareBudget}, {initrd, initramfsBudget}} {
		st, err := os.Stat(c.path)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %d bytes (budget %d, %.1f%% used)", filepath.Base(c.path), st.Size(), c.budget, 100*float64(st.Size())/float64(c.budget))
		if st.Size() >= c.budget {
			t.Errorf("%s is %d bytes, over its %d-byte budget by %d", filepath.Base(c.path), st.Size(), c.budget, st.Size()-c.budget)
		}
	}
}
