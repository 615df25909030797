// Command bootcheck is a throwaway /init for the kernel boot test: it mounts
// the pseudo file systems, reports which board devices the kernel created,
// and powers the machine off. It is not part of the firmware.
package main

import (
	"fmt"
	"os"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// gpiolineInfo is struct gpioline_info of <linux/gpio.h> (ABI v1).
type gpiolineInfo struct {
	offset   uint32
	flags    uint32
	name     [32]byte
	consumer [32]byte
}

const (
	gpioGetLineInfo  = 0xC048B402 // _IOWR(0xB4, 0x02, struct gpioline_info)
	gpiolineFlagUsed = 1          // GPIOLINE_FLAG_KERNEL: requested by someone
)

// buttonLine reports whether PL061 line 3 (the QEMU power button) is free
// for userspace, i.e. gpio-keys did not claim it.
func buttonLine() string {
	fd, err := unix.Open("/dev/gpiochip0", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Sprintf("gpio: %v", err)
	}
	defer unix.Close(fd)
	info := gpiolineInfo{offset: 3}
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), gpioGetLineInfo, uintptr(unsafe.Pointer(&info))); errno != 0 {
		return fmt.Sprintf("gpio line info: %v", errno)
	}
	if info.flags&gpiolineFlagUsed != 0 {
		return fmt.Sprintf("gpio line 3 used by %q", strings.TrimRight(string(info.consumer[:]), "\x00"))
	}
	return "gpio line 3 free"
}

// wanted are the nodes the firmware needs on the qemu-virt board.
var wanted = []string{
	"/dev/console", "/dev/null", "/dev/tpm0", "/dev/tpmrm0",
	"/dev/fb0", "/dev/gpiochip0", "/dev/vda", "/dev/rtc0", "/sys/class/net/eth0",
}

func main() {
	fmt.Println("hello from init")
	for _, m := range []struct{ fstype, target string }{
		{"devtmpfs", "/dev"}, {"proc", "/proc"}, {"sysfs", "/sys"}, {"tmpfs", "/tmp"},
	} {
		if err := unix.Mount(m.fstype, m.target, m.fstype, 0, ""); err != nil {
			fmt.Printf("mount %s: %v\n", m.target, err)
		}
	}
	// Built-in drivers probe before init runs; allow a little slack anyway.
	deadline := time.Now().Add(3 * time.Second)
	for _, p := range wanted {
		for {
			_, err := os.Stat(p)
			if err == nil {
				fmt.Println("have", p)
				break
			}
			if time.Now().After(deadline) {
				fmt.Println("missing", p)
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	fmt.Println(buttonLine())
	// Entropy must be ready without waiting (Go's crypto/rand blocks otherwise).
	buf := make([]byte, 16)
	if _, err := unix.Getrandom(buf, unix.GRND_NONBLOCK); err != nil {
		fmt.Println("getrandom:", err)
	} else {
		fmt.Println("getrandom ok")
	}
	if b, err := os.ReadFile("/proc/uptime"); err == nil {
		fmt.Println("uptime", strings.Fields(string(b))[0])
	}
	fmt.Println("bootcheck done")
	unix.Sync()
	if err := unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF); err != nil {
		fmt.Println("power off:", err)
	}
	select {}
}
