package qemu

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// fakeQMP serves QMP on a unix socket: the greeting, then one reply per
// command from replies (command → JSON line), after an event.
func fakeQMP(t *testing.T, replies map[string]string) (sock string, got chan string) {
	t.Helper()
	sock = filepath.Join(t.TempDir(), "qmp.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	got = make(chan string, 16)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.Write([]byte(`{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}}, "capabilities": ["oob"]}}` + "\r\n"))
				sc := bufio.NewScanner(c)
				for sc.Scan() {
					var req struct {
						Execute   string          `json:"execute"`
						Arguments json.RawMessage `json:"arguments"`
					}
					if json.Unmarshal(sc.Bytes(), &req) != nil {
						return
					}
					got <- req.Execute + " " + string(req.Arguments)
					c.Write([]byte(`{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "POWERDOWN"}` + "\r\n"))
					r, ok := replies[req.Execute]
					if !ok {
						r = `{"return": {}}`
					}
					c.Write([]byte(r + "\r\n"))
				}
			}()
		}
	}()
	return sock, got
}

func TestQMPPressButton(t *testing.T) {
	sock, got := fakeQMP(t, nil)
	if err := PressButton(context.Background(), sock); err != nil {
		t.Fatal(err)
	}
	if c := <-got; c != "qmp_capabilities " {
		t.Errorf("first command %q", c)
	}
	if c := <-got; c != "system_powerdown " {
		t.Errorf("second command %q", c)
	}
}

func TestQMPErrorReply(t *testing.T) {
	sock, _ := fakeQMP(t, map[string]string{"screendump": `{"error": {"class": "GenericError", "desc": "no surface"}}`})
	_, err := Screenshot(context.Background(), sock, t.TempDir())
	var qe *QMPError
	if !errors.As(err, &qe) || qe.Class != "GenericError" || qe.Desc != "no surface" || qe.Command != "screendump" {
		t.Fatalf("Screenshot: %v, want the QMP error", err)
	}
}

func TestQMPNoServer(t *testing.T) {
	err := PressButton(context.Background(), filepath.Join(t.TempDir(), "none.sock"))
	if err == nil || !strings.Contains(err.Error(), "press button: qmp: connect") {
		t.Fatalf("PressButton without QEMU: %v", err)
	}
}

func TestParseQMPMessage(t *testing.T) {
	for _, ok := range []string{`{"QMP": {}}`, `{"return": {}}`, `{"return": []}`, `{"error": {"class": "C", "desc": "d"}}`, `{"event": "STOP"}`} {
		if _, err := parseQMPMessage([]byte(ok)); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{``, `[]`, `{}`, `{"return": {}, "event": "X"}`, `{"return"`, `"x"`} {
		if _, err := parseQMPMessage([]byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func FuzzParseQMPMessage(f *testing.F) {
	f.Add([]byte(`{"QMP": {"version": {}, "capabilities": []}}`))
	f.Add([]byte(`{"return": {}, "id": 1}`))
	f.Add([]byte(`{"error": {"class": "GenericError", "desc": "x"}}`))
	f.Add([]byte(`{"event": "POWERDOWN", "timestamp": {"seconds": 1}}`))
	f.Add([]byte(`{"error": null, "return": null}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parseQMPMessage(b)
		if err != nil {
			return
		}
		n := 0
		for _, p := range []bool{m.QMP != nil, m.Return != nil, m.Error != nil, m.Event != ""} {
			if p {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("accepted %q as %d kinds", b, n)
		}
	})
}

func TestConsoleExpect(t *testing.T) {
	c := newConsole(nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan []string, 1)
	go func() {
		m, err := c.expect(ctx, regexp.MustCompile(`boot (\d+)`))
		if err != nil {
			t.Error(err)
		}
		done <- m
	}()
	c.Write([]byte("hello\nbo"))
	c.Write([]byte("ot 7\nboot 8\n"))
	if m := <-done; !slices.Equal(m, []string{"boot 7", "7"}) {
		t.Errorf("match %q", m)
	}
	// The cursor moved past the first match.
	if m, err := c.expect(ctx, regexp.MustCompile(`boot (\d+)`)); err != nil || m[1] != "8" {
		t.Errorf("second match %q %v", m, err)
	}
	c.end(nil)
	if _, err := c.expect(ctx, regexp.MustCompile(`never`)); !errors.Is(err, ErrConsoleClosed) {
		t.Errorf("expect after end: %v", err)
	}
	c.restart()
	cancel()
	if _, err := c.expect(ctx, regexp.MustCompile(`boot`)); !errors.Is(err, context.Canceled) {
		t.Errorf("expect after restart sees old output or no cancel: %v", err)
	}
}

func TestConsoleWatch(t *testing.T) {
	c := newConsole(nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c.Write([]byte("boot 1\n"))
	if _, err := c.expect(ctx, regexp.MustCompile(`boot 1`)); err != nil {
		t.Fatal(err)
	}
	done := make(chan []string, 1)
	go func() {
		m, err := c.watch(ctx, regexp.MustCompile(`frame at=(\S+)`))
		if err != nil {
			t.Error(err)
		}
		done <- m
	}()
	select {
	case m := <-done:
		t.Fatalf("matched %q before the line came", m)
	case <-time.After(20 * time.Millisecond):
	}
	c.Write([]byte("fra"))
	c.Write([]byte("me at=1.2s\nprompt> "))
	if m := <-done; !slices.Equal(m, []string{"frame at=1.2s", "1.2s"}) {
		t.Errorf("match %q", m)
	}
	// Watch sees what is before the cursor and leaves the cursor alone.
	if m, err := c.watch(ctx, regexp.MustCompile(`boot (\d)`)); err != nil || m[1] != "1" {
		t.Errorf("watch before the cursor: %q %v", m, err)
	}
	if m, err := c.expect(ctx, regexp.MustCompile(`frame at=(\S+)`)); err != nil || m[1] != "1.2s" {
		t.Errorf("expect after watch: %q %v", m, err)
	}
	c.end(nil)
	if _, err := c.watch(ctx, regexp.MustCompile(`never`)); !errors.Is(err, ErrConsoleClosed) {
		t.Errorf("watch after end: %v", err)
	}
}

func TestConsoleBounded(t *testing.T) {
	var copyTo strings.Builder
	c := newConsole(&copyTo)
	chunk := make([]byte, 1<<20)
	for range 6 {
		c.Write(chunk)
	}
	if n := len(c.text()); n != maxConsole {
		t.Errorf("kept %d bytes, want %d", n, maxConsole)
	}
	if copyTo.Len() != 6<<20 {
		t.Errorf("copied %d bytes", copyTo.Len())
	}
}

func TestConfigValidate(t *testing.T) {
	good := Config{Kernel: "/k", Initrd: "/i", StateDir: "/s"}.withDefaults()
	if err := good.validate(); err != nil {
		t.Fatal(err)
	}
	for name, mod := range map[string]func(*Config){
		"no kernel":     func(c *Config) { c.Kernel = "" },
		"comma":         func(c *Config) { c.StateDir = "/a,b" },
		"tiny disk":     func(c *Config) { c.DiskSize = 1 << 20 },
		"huge display":  func(c *Config) { c.Width = 10000 },
		"bad port":      func(c *Config) { c.HostFwd = []HostFwd{{GuestPort: 70000}} },
		"twice":         func(c *Config) { c.HostFwd = []HostFwd{{GuestPort: 1}, {GuestPort: 1}} },
		"guest no host": func(c *Config) { c.GuestFwd = []GuestFwd{{GuestPort: 443}} },
		"no CPU":        func(c *Config) { c.CPUs = -1 },
		"16 CPUs":       func(c *Config) { c.CPUs = 16 },
	} {
		c := good
		mod(&c)
		if err := c.validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestQEMUArgs(t *testing.T) {
	c := Config{Kernel: "/k/Image", Initrd: "/i.cpio.gz", StateDir: "/s", Append: "zmonitor.verbose=1", Width: 320, Height: 240,
		HostFwd:  []HostFwd{{GuestPort: 8444, HostPort: 40000}},
		GuestFwd: []GuestFwd{{GuestPort: 443, HostPort: 40001}},
	}.withDefaults()
	args := strings.Join(qemuArgs(c, paths{dir: "/s"}), " ")
	for _, want := range []string{
		"-M virt -cpu cortex-a53 -smp 2 -m 256 ",
		"-append console=ttyAMA0 panic=-1 quiet zmonitor.verbose=1 ",
		"-chardev socket,id=con0,path=/s/console.sock,server=on,wait=on,logfile=/s/console.log,logappend=on -serial chardev:con0 ",
		"-qmp unix:/s/qmp.sock,server=on,wait=off ",
		"-device tpm-tis-device,tpmdev=tpm0 ",
		"-device virtio-gpu-pci,xres=320,yres=240 ",
		"-netdev user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:40000-:8444,guestfwd=tcp:10.0.2.100:443-cmd:socat - TCP:127.0.0.1:40001 ",
		"-device virtio-net-pci,netdev=n0,romfile=",
	} {
		if !strings.Contains(args+" ", want) {
			t.Errorf("command line lacks %q:\n%s", want, args)
		}
	}
}

// U-Boot keeps its variables in itself: QEMU loads it as the boot ROM and
// the board has no flash store.
func TestQEMUArgsThroughUBoot(t *testing.T) {
	c := Config{Kernel: "/k/zmonitor.efi", StateDir: "/s", Firmware: &Firmware{Code: "/fw/u-boot.bin"}}.withDefaults()
	if err := c.validate(); err != nil {
		t.Fatal(err)
	}
	args := strings.Join(qemuArgs(c, paths{dir: "/s"}), " ")
	for _, want := range []string{"-M virt,acpi=off ", "-bios /fw/u-boot.bin ", "-kernel /k/zmonitor.efi "} {
		if !strings.Contains(args+" ", want) {
			t.Errorf("command line lacks %q:\n%s", want, args)
		}
	}
	for _, not := range []string{"pflash", "-initrd", "-append"} {
		if strings.Contains(args, not) {
			t.Errorf("command line has %q:\n%s", not, args)
		}
	}
	c.Initrd = "/i.cpio.gz"
	if err := c.validate(); err == nil || !strings.Contains(err.Error(), "initrd with UEFI") {
		t.Errorf("an initrd with UEFI firmware: %v", err)
	}
	c.Initrd, c.Firmware.Code = "", ""
	if err := c.validate(); err == nil || !strings.Contains(err.Error(), "without its code") {
		t.Errorf("firmware without its code: %v", err)
	}
	c.Firmware.Code, c.PCRBanks = "/c", "sha256;rm"
	if err := c.validate(); err == nil || !strings.Contains(err.Error(), "PCR banks") {
		t.Errorf("PCR banks %q accepted: %v", c.PCRBanks, err)
	}
}

func TestEnsureTPMAllocatesOnlyTheGivenBanks(t *testing.T) {
	setup, err := exec.LookPath("swtpm_setup")
	if err != nil {
		t.Skip("swtpm_setup not found: run scripts/install-deps.sh")
	}
	dir := t.TempDir()
	if err := ensureTPM(context.Background(), setup, dir, "sha256"); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(dir, "tpm2-00.permall"))
	if err != nil {
		t.Fatal(err)
	}
	// A second call keeps the state (the TPM's keys live in it).
	if err := ensureTPM(context.Background(), "/nonexistent/swtpm_setup", dir, "sha256"); err != nil {
		t.Fatalf("existing state: %v", err)
	}
	if st2, _ := os.Stat(filepath.Join(dir, "tpm2-00.permall")); !st2.ModTime().Equal(st.ModTime()) {
		t.Error("the TPM state was made again")
	}
	empty := t.TempDir()
	if err := ensureTPM(context.Background(), setup, empty, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(empty, "tpm2-00.permall")); err == nil {
		t.Error("no banks given, yet a state was made")
	}
}

func TestKernelLogDropsQuiet(t *testing.T) {
	c := Config{Kernel: "/k", Initrd: "/i", StateDir: "/s", KernelLog: true}.withDefaults()
	args := strings.Join(qemuArgs(c, paths{dir: "/s"}), " ")
	if !strings.Contains(args, "-append console=ttyAMA0 panic=-1 ") || strings.Contains(args, "quiet") {
		t.Errorf("with KernelLog: %s", args)
	}
}

func TestEnsureDisk(t *testing.T) {
	mkfs, err := exec.LookPath("mkfs.ext4")
	if err != nil {
		t.Skip("mkfs.ext4 not found: run scripts/install-deps.sh")
	}
	path := filepath.Join(t.TempDir(), "data.img")
	created, err := ensureDisk(context.Background(), mkfs, path, 16<<20)
	if err != nil || !created {
		t.Fatalf("ensureDisk: %v %v", created, err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != 16<<20 || binary.LittleEndian.Uint16(b[1024+0x38:]) != 0xEF53 {
		t.Fatalf("disk of %d bytes without the ext4 magic", len(b))
	}
	// A second call keeps the disk (and its data).
	b[4<<20] = 0x42
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if created, err := ensureDisk(context.Background(), mkfs, path, 16<<20); err != nil || created {
		t.Fatalf("second ensureDisk: %v %v", created, err)
	}
	if b2, _ := os.ReadFile(path); b2[4<<20] != 0x42 {
		t.Error("existing disk was reformatted")
	}
	if _, err := ensureDisk(context.Background(), "/nonexistent/mkfs", filepath.Join(t.TempDir(), "x.img"), 16<<20); err == nil {
		t.Error("missing mkfs accepted")
	}
}

func TestStateLock(t *testing.T) {
	p := filepath.Join(t.TempDir(), "lock")
	a, err := lockState(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lockState(p); err == nil || !strings.Contains(err.Error(), "in use by another board") {
		t.Errorf("second lock: %v", err)
	}
	a.Close()
	b, err := lockState(p)
	if err != nil {
		t.Errorf("lock after release: %v", err)
	}
	b.Close()
}

func TestStartRejectsBadConfig(t *testing.T) {
	if _, err := Start(context.Background(), Config{}); err == nil || !strings.Contains(err.Error(), "kernel path is required") {
		t.Fatalf("Start: %v", err)
	}
}
