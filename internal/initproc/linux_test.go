package initproc_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/zmonitor/firmware/internal/initproc"
	"github.com/zmonitor/firmware/internal/initproc/initproctest"
)

// realDisk reads through the real Linux layer and records the rest.
type realDisk struct {
	*initproctest.Sys
	linux initproc.Linux
}

func (r realDisk) Stat(p string) error                        { return r.linux.Stat(p) }
func (r realDisk) ReadAt(p string, off int64, b []byte) error { return r.linux.ReadAt(p, off, b) }

// TestMountDataRealImages checks the superblock probe on real files: an
// ext4 image made by mkfs.ext4 mounts, a blank one is refused unformatted.
func TestMountDataRealImages(t *testing.T) {
	mkfs, err := exec.LookPath("mkfs.ext4")
	if err != nil {
		t.Skip("mkfs.ext4 not found: run scripts/install-deps.sh")
	}
	dir := t.TempDir()
	ext4 := filepath.Join(dir, "ext4.img")
	blank := filepath.Join(dir, "blank.img")
	for _, p := range []string{ext4, blank} {
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(p, 8<<20); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := exec.Command(mkfs, "-F", "-q", ext4).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v %s", err, out)
	}
	sys := realDisk{Sys: &initproctest.Sys{PID: 1}}
	p := initproc.New(&initproc.Opts{Sys: sys})
	if err := p.MountData(initproc.Data{Device: ext4, Mount: "/data", FSType: "ext4"}); err != nil {
		t.Fatalf("ext4 image: %v", err)
	}
	if !slices.ContainsFunc(sys.Recorded(), func(c initproctest.Call) bool { return len(c) > 6 && string(c[:6]) == "mount " }) {
		t.Error("ext4 image not mounted")
	}
	if err := p.MountData(initproc.Data{Device: blank, Mount: "/data", FSType: "ext4"}); !errors.Is(err, initproc.ErrNoFilesystem) {
		t.Errorf("blank image: %v, want ErrNoFilesystem", err)
	}
	short := filepath.Join(dir, "short.img")
	if err := os.WriteFile(short, make([]byte, 100), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := p.MountData(initproc.Data{Device: short, Mount: "/data", FSType: "ext4"}); err == nil {
		t.Error("100-byte device accepted")
	}
}

func TestIsMountPoint(t *testing.T) {
	var l initproc.Linux
	dir := t.TempDir()
	for _, c := range []struct {
		path string
		want bool
	}{
		{"/", true},
		{"/proc", true},
		{dir, false},
		{filepath.Join(dir, "missing"), false},
	} {
		got, err := l.IsMountPoint(c.path)
		if err != nil || got != c.want {
			t.Errorf("IsMountPoint(%s) = %v, %v; want %v", c.path, got, err, c.want)
		}
	}
}
