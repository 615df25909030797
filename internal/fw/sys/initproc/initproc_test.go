package initproc_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/zmonitor/firmware/internal/fw/sys/initproc"
	"github.com/zmonitor/firmware/internal/fw/sys/initproc/initproctest"
	"golang.org/x/sys/unix"
)

var _ initproc.Syscalls = (*initproctest.Sys)(nil)

func newInit(sys *initproctest.Sys) *initproc.Init {
	return initproc.New(&initproc.Opts{Sys: sys})
}

func mounts(calls []initproctest.Call) []string {
	var m []string
	for _, c := range calls {
		if strings.HasPrefix(string(c), "mount ") {
			f := strings.Fields(string(c))
			m = append(m, f[3]+" "+f[2])
		}
	}
	return m
}

func TestMountingAgainStacksNothing(t *testing.T) {
	// PID 1 mounts the pseudo file systems first, then runs every boot
	// step (the same mounts included): proc, devpts and tmpfs would stack
	// a second instance on top if they were mounted again.
	sys := &initproctest.Sys{PID: 1}
	p := newInit(sys)
	if err := p.Boot(initproc.PseudoMounts()); err != nil {
		t.Fatal(err)
	}
	if err := p.Boot(initproc.DefaultSteps("zm-0001")); err != nil {
		t.Fatal(err)
	}
	got := mounts(sys.Recorded())
	want := []string{"proc /proc", "sysfs /sys", "devtmpfs /dev", "devpts /dev/pts", "tmpfs /run", "tmpfs /tmp"}
	if !slices.Equal(got, want) {
		t.Errorf("mounts %q, want each once: %q", got, want)
	}
	sys.Files = map[string][]byte{"/dev/vda": ext4Image()}
	for range 2 {
		if err := p.MountData(vda); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(mounts(sys.Recorded())); n != len(want)+1 {
		t.Errorf("%d mounts after mounting the data partition twice, want %d", n, len(want)+1)
	}
}

func TestBootMountsInOrder(t *testing.T) {
	sys := &initproctest.Sys{PID: 1}
	p := newInit(sys)
	if !p.IsPID1() {
		t.Fatal("IsPID1 false with pid 1")
	}
	if err := p.Boot(initproc.DefaultSteps("zm-0001")); err != nil {
		t.Fatalf("Boot: %v", err)
	}
	want := []string{"proc /proc", "sysfs /sys", "devtmpfs /dev", "devpts /dev/pts", "tmpfs /run", "tmpfs /tmp"}
	if got := mounts(sys.Recorded()); !slices.Equal(got, want) {
		t.Errorf("mounts %q, want %q", got, want)
	}
	calls := sys.Recorded()
	for _, c := range []initproctest.Call{
		"symlink /proc/self/fd /dev/fd",
		"symlink /proc/self/fd/2 /dev/stderr",
		"sethostname zm-0001",
		"setrlimit nofile 1024",
		initproctest.Call(fmt.Sprintf("reboot %#x", uint32(unix.LINUX_REBOOT_CMD_CAD_OFF))),
		"mkdir /tmp -rwxrwxrwx",
	} {
		if !slices.Contains(calls, c) {
			t.Errorf("no call %q in %q", c, calls)
		}
	}
	if i, j := slices.Index(calls, "mkdir /dev/pts -rwxr-xr-x"), slices.Index(calls, "mount devtmpfs /dev devtmpfs 0x2 mode=0755"); i < j {
		t.Errorf("/dev/pts created (%d) before devtmpfs mounted (%d)", i, j)
	}
}

func TestBootAlreadyMountedIsFine(t *testing.T) {
	sys := &initproctest.Sys{PID: 1, Errs: map[initproctest.Call]error{
		"mount devtmpfs /dev devtmpfs 0x2 mode=0755": unix.EBUSY,
		"symlink /proc/self/fd /dev/fd":              os.ErrExist,
	}}
	if err := newInit(sys).Boot(nil); err != nil {
		t.Fatalf("Boot with /dev already mounted: %v", err)
	}
}

func TestBootErrorNamesStep(t *testing.T) {
	sys := &initproctest.Sys{PID: 1, Errs: map[initproctest.Call]error{
		"mount devtmpfs /dev devtmpfs 0x2 mode=0755": unix.ENODEV,
	}}
	err := newInit(sys).Boot(nil)
	if err == nil || !strings.HasPrefix(err.Error(), "mount devtmpfs on /dev: ") || !errors.Is(err, unix.ENODEV) {
		t.Fatalf("Boot: %v, want 'mount devtmpfs on /dev: ...' wrapping ENODEV", err)
	}
	if got := mounts(sys.Recorded()); len(got) != 3 {
		t.Errorf("Boot went on after the failure: %q", got)
	}
}

func TestHostnameRejected(t *testing.T) {
	for _, h := range []string{"bad name", strings.Repeat("a", 65), "a/b", "x\x00"} {
		sys := &initproctest.Sys{PID: 1}
		err := newInit(sys).Boot([]initproc.Step{initproc.Hostname(h)})
		if err == nil || !strings.HasPrefix(err.Error(), "set hostname") {
			t.Errorf("hostname %q: %v", h, err)
		}
	}
}

func TestIsPID1(t *testing.T) {
	if newInit(&initproctest.Sys{PID: 4242}).IsPID1() {
		t.Error("IsPID1 true for pid 4242")
	}
	if initproc.New(nil).IsPID1() {
		t.Error("the test binary is not init")
	}
}

func ext4Image() []byte {
	b := make([]byte, 4096)
	b[1024+0x38], b[1024+0x39] = 0x53, 0xEF
	return b
}

var vda = initproc.Data{Device: "/dev/vda", Mount: "/data", FSType: "ext4"}

func TestMountData(t *testing.T) {
	sys := &initproctest.Sys{PID: 1,
		Files:       map[string][]byte{"/dev/vda": ext4Image()},
		AppearAfter: map[string]int{"/dev/vda": 5},
	}
	if err := newInit(sys).MountData(vda); err != nil {
		t.Fatalf("MountData: %v", err)
	}
	want := initproctest.Call(fmt.Sprintf("mount /dev/vda /data ext4 %#x ", unix.MS_NODEV|unix.MS_NOSUID|unix.MS_NOEXEC|unix.MS_NOATIME))
	if !slices.Contains(sys.Recorded(), want) {
		t.Errorf("no %q in %q", want, sys.Recorded())
	}
	if sys.Slept != 100*time.Millisecond {
		t.Errorf("waited %v for a device that appeared after 5 polls, want 100ms", sys.Slept)
	}
}

func TestMountDataNoDevice(t *testing.T) {
	sys := &initproctest.Sys{PID: 1}
	d := vda
	d.Wait = time.Second
	err := newInit(sys).MountData(d)
	if !errors.Is(err, initproc.ErrNoDevice) || !strings.Contains(err.Error(), "mount data partition /dev/vda on /data") {
		t.Fatalf("MountData: %v, want ErrNoDevice with the step", err)
	}
	if sys.Slept != time.Second {
		t.Errorf("waited %v, want the 1s bound", sys.Slept)
	}
}

func TestMountDataBlankDiskNotFormatted(t *testing.T) {
	sys := &initproctest.Sys{PID: 1, Files: map[string][]byte{"/dev/vda": make([]byte, 4096)}}
	err := newInit(sys).MountData(vda)
	if !errors.Is(err, initproc.ErrNoFilesystem) {
		t.Fatalf("MountData on a blank disk: %v, want ErrNoFilesystem", err)
	}
	if mounted, _ := sys.IsMountPoint("/data"); mounted {
		t.Error("mounted a blank disk")
	}
}

func TestMountDataBadConfig(t *testing.T) {
	for _, d := range []initproc.Data{
		{Device: "/dev/vda", Mount: "/data", FSType: "vfat"},
		{Mount: "/data", FSType: "ext4"},
	} {
		if err := newInit(&initproctest.Sys{PID: 1}).MountData(d); err == nil {
			t.Errorf("MountData(%+v) succeeded", d)
		}
	}
}

func TestShutdown(t *testing.T) {
	for _, tc := range []struct {
		how initproc.How
		cmd int
	}{
		{initproc.PowerOff, unix.LINUX_REBOOT_CMD_POWER_OFF},
		{initproc.Reboot, unix.LINUX_REBOOT_CMD_RESTART},
		{initproc.Halt, unix.LINUX_REBOOT_CMD_HALT},
	} {
		t.Run(tc.how.String(), func(t *testing.T) {
			sys := &initproctest.Sys{PID: 1}
			if err := newInit(sys).Shutdown(tc.how, "/data"); err != nil {
				t.Fatal(err)
			}
			want := []initproctest.Call{"sync", "unmount /data 0", "sync", initproctest.Call(fmt.Sprintf("reboot %#x", uint32(tc.cmd)))}
			if got := sys.Recorded(); !slices.Equal(got, want) {
				t.Errorf("calls %q, want %q", got, want)
			}
		})
	}
}

func TestShutdownBusyDataRemountsReadOnly(t *testing.T) {
	sys := &initproctest.Sys{PID: 1, Errs: map[initproctest.Call]error{"unmount /data 0": unix.EBUSY}}
	if err := newInit(sys).Shutdown(initproc.PowerOff, "/data"); err != nil {
		t.Fatal(err)
	}
	ro := initproctest.Call(fmt.Sprintf("mount  /data  %#x ", unix.MS_REMOUNT|unix.MS_RDONLY))
	calls := sys.Recorded()
	if !slices.Contains(calls, ro) {
		t.Errorf("no read-only remount in %q", calls)
	}
	if !strings.HasPrefix(string(calls[len(calls)-1]), "reboot ") {
		t.Errorf("last call %q, want the reboot", calls[len(calls)-1])
	}
}

func TestShutdownRebootFails(t *testing.T) {
	cmd := initproctest.Call(fmt.Sprintf("reboot %#x", uint32(unix.LINUX_REBOOT_CMD_POWER_OFF)))
	sys := &initproctest.Sys{PID: 1, Errs: map[initproctest.Call]error{cmd: unix.EPERM}}
	err := newInit(sys).Shutdown(initproc.PowerOff, "")
	if !errors.Is(err, unix.EPERM) || !strings.Contains(err.Error(), "shutdown: power off") {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := newInit(sys).Shutdown(initproc.How(9), ""); err == nil {
		t.Error("unknown How accepted")
	}
}

func TestShutdownFor(t *testing.T) {
	for sig, want := range map[os.Signal]initproc.How{
		syscall.SIGTERM: initproc.Reboot, syscall.SIGINT: initproc.Reboot,
		syscall.SIGUSR1: initproc.Halt, syscall.SIGUSR2: initproc.PowerOff,
	} {
		if got, ok := initproc.ShutdownFor(sig); !ok || got != want {
			t.Errorf("%v → %v %v, want %v", sig, got, ok, want)
		}
	}
	if _, ok := initproc.ShutdownFor(syscall.SIGHUP); ok {
		t.Error("SIGHUP shuts down")
	}
}

func TestSuperviseReapsThenShutsDown(t *testing.T) {
	sys := &initproctest.Sys{PID: 1, Children: []int{0, 1}}
	p := newInit(sys)
	sigs := make(chan os.Signal, 3)
	sigs <- syscall.SIGHUP
	sigs <- syscall.SIGCHLD
	sigs <- syscall.SIGUSR2
	if how := p.Supervise(context.Background(), sigs); how != initproc.PowerOff {
		t.Fatalf("Supervise → %v, want power off", how)
	}
	if len(sys.Children) != 0 {
		t.Errorf("%d children not reaped", len(sys.Children))
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if how := p.Supervise(ctx, nil); how != 0 {
		t.Errorf("Supervise after cancel → %v", how)
	}
}

func TestReapCounts(t *testing.T) {
	sys := &initproctest.Sys{PID: 1, Children: []int{0, 2, 3}}
	if n := newInit(sys).Reap(); n != 3 {
		t.Errorf("Reap → %d, want 3", n)
	}
}

func TestSetSystemTime(t *testing.T) {
	sys := &initproctest.Sys{PID: 1}
	p := initproc.New(&initproc.Opts{Sys: sys})
	at := time.Date(2026, 3, 4, 5, 6, 7, 0, time.FixedZone("x", 3600))
	if err := p.SetSystemTime(at); err != nil {
		t.Fatal(err)
	}
	if !sys.Now.Equal(at) || !sys.RTC.Equal(at) || sys.RTC.Location() != time.UTC {
		t.Errorf("system %v rtc %v", sys.Now, sys.RTC)
	}
	sys.Errs = map[initproctest.Call]error{"setrtc /dev/rtc0 2026-03-04T04:06:07Z": unix.EACCES}
	if err := p.SetSystemTime(at); !errors.Is(err, unix.EACCES) || !strings.Contains(err.Error(), "/dev/rtc0") {
		t.Errorf("SetSystemTime with a failing RTC: %v", err)
	}
}

func TestHowString(t *testing.T) {
	if s := initproc.How(0).String(); s != "How(0)" {
		t.Errorf("How(0) = %q", s)
	}
}

func TestExpediteRCU(t *testing.T) {
	sys := &initproctest.Sys{PID: 1}
	if err := newInit(sys).Do(initproc.ExpediteRCU(true), initproc.ExpediteRCU(false)); err != nil {
		t.Fatalf("Do: %v", err)
	}
	want := []initproctest.Call{"write /sys/kernel/rcu_expedited 1", "write /sys/kernel/rcu_expedited 0"}
	if got := sys.Recorded(); !slices.Equal(got, want) {
		t.Errorf("calls %q, want %q", got, want)
	}
	sys = &initproctest.Sys{PID: 1, Errs: map[initproctest.Call]error{"write /sys/kernel/rcu_expedited 1": unix.EACCES}}
	err := newInit(sys).Do(initproc.ExpediteRCU(true))
	if err == nil || !strings.HasPrefix(err.Error(), "set /sys/kernel/rcu_expedited to 1: ") || !errors.Is(err, unix.EACCES) {
		t.Fatalf("Do = %v, want the step named and EACCES wrapped", err)
	}
}
