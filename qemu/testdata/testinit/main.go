// Command testinit is the /init of the qemu package's boot test. It prints
// markers on the console ("testinit: ..."), checks the board's devices,
// reports edges of PL061 line 3, draws a pattern into /dev/fb0, keeps a
// boot counter on the data disk, serves TCP port 8444 and obeys console
// commands ("poweroff", "echo X"). It is not part of the firmware.
package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/zmonitor/firmware/internal/fw/sys/netup"
	"golang.org/x/sys/unix"
)

func say(format string, args ...any) {
	fmt.Printf("testinit: "+format+"\n", args...)
}

func main() {
	say("start")
	for _, m := range []struct{ fstype, target string }{
		{"devtmpfs", "/dev"}, {"proc", "/proc"}, {"sysfs", "/sys"}, {"tmpfs", "/tmp"},
	} {
		if err := unix.Mount(m.fstype, m.target, m.fstype, 0, ""); err != nil {
			say("mount %s: %v", m.target, err)
		}
	}
	bootCount()
	tpm()
	fb()
	network()
	if ev := gpio(); ev != nil {
		go edges(ev)
	}
	say("ready")
	commands()
}

// bootCount mounts /dev/vda on /data and increments /data/boots.
func bootCount() {
	if err := unix.Mount("/dev/vda", "/data", "ext4", 0, ""); err != nil {
		say("data: mount: %v", err)
		return
	}
	n := 0
	if b, err := os.ReadFile("/data/boots"); err == nil {
		n, _ = strconv.Atoi(strings.TrimSpace(string(b)))
	}
	n++
	f, err := os.Create("/data/boots")
	if err == nil {
		fmt.Fprintf(f, "%d\n", n)
		err = f.Sync()
		f.Close()
	}
	if err != nil {
		say("data: write: %v", err)
		return
	}
	say("boot %d", n)
}

// tpm sends TPM2_GetRandom(8) to /dev/tpmrm0 and checks the response code.
// The device is opened blocking: os.OpenFile would put a pollable device in
// non-blocking mode, the kernel then runs the command in the background, and
// a read before it has finished returns 0 bytes (EOF), which under a loaded
// host made this check fail after a power cut. (go-tpm, which the firmware
// uses, polls for readability before it reads.)
func tpm() {
	fd, err := unix.Open("/dev/tpmrm0", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		say("tpm: %v", err)
		return
	}
	f := os.NewFile(uintptr(fd), "/dev/tpmrm0") // a blocking descriptor stays blocking
	defer f.Close()
	cmd := []byte{0x80, 0x01, 0, 0, 0, 12, 0, 0, 0x01, 0x7b, 0, 8}
	if _, err := f.Write(cmd); err != nil {
		say("tpm: write: %v", err)
		return
	}
	resp := make([]byte, 64)
	n, err := f.Read(resp)
	if err != nil || n < 10 {
		say("tpm: read %d: %v", n, err)
		return
	}
	if rc := binary.BigEndian.Uint32(resp[6:10]); rc != 0 {
		say("tpm: rc %#x", rc)
		return
	}
	say("tpm ok")
}

// fb draws four quadrants into /dev/fb0: red, green / blue, white.
func fb() {
	read := func(name string) string {
		b, _ := os.ReadFile("/sys/class/graphics/fb0/" + name)
		return strings.TrimSpace(string(b))
	}
	var w, h int
	fmt.Sscanf(read("virtual_size"), "%d,%d", &w, &h)
	bpp, _ := strconv.Atoi(read("bits_per_pixel"))
	stride, _ := strconv.Atoi(read("stride"))
	if w == 0 || bpp != 32 {
		say("fb: size %dx%d bpp %d", w, h, bpp)
		return
	}
	if tty, err := os.OpenFile("/dev/tty0", os.O_RDWR, 0); err == nil {
		_ = unix.IoctlSetInt(int(tty.Fd()), 0x4B3A, 1) // KDSETMODE, KD_GRAPHICS
		defer tty.Close()
	}
	f, err := os.OpenFile("/dev/fb0", os.O_RDWR, 0)
	if err != nil {
		say("fb: %v", err)
		return
	}
	defer f.Close()
	frame := make([]byte, stride*h)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			var c uint32 // XRGB8888
			switch {
			case x < w/2 && y < h/2:
				c = 0xff0000
			case y < h/2:
				c = 0x00ff00
			case x < w/2:
				c = 0x0000ff
			default:
				c = 0xffffff
			}
			binary.LittleEndian.PutUint32(frame[y*stride+4*x:], c)
		}
	}
	if _, err := f.WriteAt(frame, 0); err != nil {
		say("fb: write: %v", err)
		return
	}
	// Without fbcon nobody has set the mode yet, and QEMU shows its
	// 640x480 placeholder: FBIOPUT_VSCREENINFO with FB_ACTIVATE_FORCE
	// makes the DRM fbdev emulation do the modeset.
	var v [160]byte // struct fb_var_screeninfo
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), 0x4600, uintptr(unsafe.Pointer(&v[0]))); errno != 0 {
		say("fb: FBIOGET_VSCREENINFO: %v", errno)
		return
	}
	binary.LittleEndian.PutUint32(v[84:], 128) // activate = FB_ACTIVATE_FORCE
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), 0x4601, uintptr(unsafe.Pointer(&v[0]))); errno != 0 {
		say("fb: FBIOPUT_VSCREENINFO: %v", errno)
		return
	}
	say("fb %dx%d drawn", w, h)
}

// network leases an address with netup (DHCP from QEMU's user-mode
// network) and serves port 8444.
func network() {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := time.Now()
	// The renewal goroutine lives as long as the machine: Background.
	l, err := netup.Up(context.Background(), netup.Config{Interface: "eth0", ResolvConf: "/etc/resolv.conf", AttemptTimeout: 3 * time.Second})
	if err != nil || ctx.Err() != nil {
		say("net: %v %v", err, ctx.Err())
		return
	}
	say("lease %s via %s dns %v in %v", l.Address, l.Router, l.DNS, time.Since(start).Round(time.Millisecond))
	ln, err := net.Listen("tcp", ":8444")
	if err != nil {
		say("net: listen: %v", err)
		return
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			fmt.Fprintf(c, "hello from the guest\n")
			c.Close()
		}
	}()
	say("listening on 8444")
}

// gpioeventRequest is struct gpioevent_request of <linux/gpio.h> (ABI v1).
type gpioeventRequest struct {
	lineOffset  uint32
	handleFlags uint32
	eventFlags  uint32
	label       [32]byte
	fd          int32
}

const (
	gpioGetLineEventIoctl = 0xC030B404 // _IOWR(0xB4, 0x04, struct gpioevent_request)
	gpiohandleInput       = 1 << 0
	gpioeventBothEdges    = 3
)

// gpio requests edge events of PL061 line 3 (the button QMP
// system_powerdown pulses).
func gpio() *os.File {
	chip, err := os.OpenFile("/dev/gpiochip0", os.O_RDWR, 0)
	if err != nil {
		say("gpio: %v", err)
		return nil
	}
	defer chip.Close()
	req := gpioeventRequest{lineOffset: 3, handleFlags: gpiohandleInput, eventFlags: gpioeventBothEdges}
	copy(req.label[:], "testinit")
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, chip.Fd(), gpioGetLineEventIoctl, uintptr(unsafe.Pointer(&req))); errno != 0 {
		say("gpio: line event: %v", errno)
		return nil
	}
	say("gpio watching line 3")
	return os.NewFile(uintptr(req.fd), "gpio-line-3")
}

// edges reports every edge of the line.
func edges(ev *os.File) {
	buf := make([]byte, 16) // struct gpioevent_data {u64 timestamp; u32 id} padded
	for {
		if _, err := ev.Read(buf); err != nil {
			say("gpio: read: %v", err)
			return
		}
		kind := "falling"
		if binary.LittleEndian.Uint32(buf[8:]) == 1 {
			kind = "rising"
		}
		say("edge %s", kind)
	}
}

// commands obeys console lines.
func commands() {
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "poweroff":
			unix.Sync()
			if err := unix.Unmount("/data", 0); err != nil {
				say("unmount: %v", err)
			}
			unix.Sync()
			say("powering off")
			_ = unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
		case strings.HasPrefix(line, "dial "):
			dial(strings.TrimPrefix(line, "dial "))
		case strings.HasPrefix(line, "echo "):
			say("echo %s", strings.TrimPrefix(line, "echo "))
		}
	}
	for {
		time.Sleep(time.Hour)
	}
}

// dial connects to addr and prints the first line it gets.
func dial(addr string) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		say("dial: %v", err)
		return
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	say("got %q (%v)", line, err)
}
