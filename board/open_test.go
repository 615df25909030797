package board

import (
	"errors"
	"fmt"
	"image"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestCheckSize(t *testing.T) {
	if err := checkSize(image.Rect(0, 0, 240, 240), 240, 240); err != nil {
		t.Error(err)
	}
	if err := checkSize(image.Rect(0, 0, 1024, 768), 240, 240); err != nil {
		t.Errorf("larger framebuffer refused: %v", err)
	}
	if err := checkSize(image.Rect(0, 0, 240, 200), 240, 240); err == nil {
		t.Error("smaller framebuffer accepted")
	}
}

// On the build host there is no PL061: OpenButton must fail with the
// board's name and the line in the message.
func TestOpenButtonWithoutHardwareSaysWhat(t *testing.T) {
	p := QEMUVirt()
	p.Button.Line.Chip = "no-such-chip"
	_, err := OpenButton(p)
	if err == nil || !strings.HasPrefix(err.Error(), "board qemu-virt: button no-such-chip line 3: ") || !errors.Is(err, ErrNoChip) {
		t.Errorf("OpenButton on the host = %v", err)
	}
}

func TestOpenConsoleOverPTY(t *testing.T) {
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skip(err)
	}
	defer m.Close()
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetUint32(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	p := QEMUVirt()
	p.Console.Device = fmt.Sprintf("/dev/pts/%d", n)
	c, err := OpenConsole(p)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("ok\n")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 3)
	if _, err := m.Read(buf); err != nil || string(buf) != "ok\n" {
		t.Errorf("read %q, %v", buf, err)
	}
	p.Console.Device = "/dev/does-not-exist"
	if _, err := OpenConsole(p); err == nil || !strings.HasPrefix(err.Error(), "board qemu-virt: console") {
		t.Errorf("OpenConsole(missing) = %v", err)
	}
}
