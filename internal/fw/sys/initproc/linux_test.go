package initproc_test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/zmonitor/firmware/internal/fw/sys/initproc"
	"github.com/zmonitor/firmware/internal/fw/sys/initproc/initproctest"
	"golang.org/x/sys/unix"
)

// realDisk reads through the real Linux layer and records the rest.
type realDisk struct {
	*initproctest.Sys
	linux initproc.Linux
}

func (r realDisk) Stat(p string) error                        { return r.linux.Stat(p) }
func (r realDisk) ReadAt(p string, off int64, b []byte) error { return r.linux.ReadAt(p, off, b) }

// Mount records the call and, as the kernel does, refuses (EINVAL) a device
// without an ext4 superblock: a test cannot mount the real image.
func (r realDisk) Mount(source, target, fstype string, flags uintptr, data string) error {
	sb := make([]byte, 1024+0x38+2)
	if fstype == "ext4" && (r.linux.ReadAt(source, 0, sb) != nil || !initproctest.HasExt4Magic(sb)) {
		_ = r.Sys.Mount(source, target, "refused-"+fstype, flags, data)
		return unix.EINVAL
	}
	return r.Sys.Mount(source, target, fstype, flags, data)
}

// TestMountDataRealImages checks the superblock probe on real files: an
// ext4 image made by mkfs.ext4 mounts, a blank one is refused unformatted,
// and a real ext4 image whose mount fails keeps the mount's error.
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
	if err := p.MountData(initproc.Data{Device: blank, Mount: "/data-blank", FSType: "ext4"}); !errors.Is(err, initproc.ErrNoFilesystem) {
		t.Errorf("blank image: %v, want ErrNoFilesystem", err)
	}
	sys.Errs = map[initproctest.Call]error{
		initproctest.Call(fmt.Sprintf("mount %s /data2 ext4 %#x ", ext4, unix.MS_NODEV|unix.MS_NOSUID|unix.MS_NOEXEC|unix.MS_NOATIME)): unix.EIO,
	}
	err = p.MountData(initproc.Data{Device: ext4, Mount: "/data2", FSType: "ext4"})
	if !errors.Is(err, unix.EIO) || errors.Is(err, initproc.ErrNoFilesystem) {
		t.Errorf("ext4 image whose mount fails: %v, want the mount's EIO", err)
	}
	short := filepath.Join(dir, "short.img")
	if err := os.WriteFile(short, make([]byte, 100), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := p.MountData(initproc.Data{Device: short, Mount: "/data-short", FSType: "ext4"}); err == nil {
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

// The FileLimit step sets the real limit, soft and hard; the Go runtime
// does not put its own start-up value back for a child process. It runs in
// a child (this test binary again) so that the test process keeps its own.
func TestFileLimitSetsTheRealLimit(t *testing.T) {
	if os.Getenv("INITPROC_FILE_LIMIT_CHILD") == "1" {
		if err := initproc.New(&initproc.Opts{Sys: initproc.Linux{}}).Do(initproc.FileLimit(321)); err != nil {
			fmt.Println("error:", err)
			return
		}
		var lim unix.Rlimit
		if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
			fmt.Println("error:", err)
			return
		}
		// A child process of this one sees the limit too.
		out, err := exec.Command("sh", "-c", "ulimit -n").Output()
		fmt.Printf("limit %d %d child %s", lim.Cur, lim.Max, out)
		if err != nil {
			fmt.Println("error:", err)
		}
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestFileLimitSetsTheRealLimit$")
	cmd.Env = append(os.Environ(), "INITPROC_FILE_LIMIT_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	if want := "limit 321 321 child 321\n"; !strings.HasPrefix(string(out), want) {
		t.Errorf("child says %q, want %q", out, want)
	}
}
