//go:build linux

package console

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/goburrow/serial"
	"golang.org/x/sys/unix"
)

// openPTY returns the master side of a new pty and the path of its slave.
func openPTY(t *testing.T) (*os.File, string) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	fd := int(m.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		m.Close()
		t.Fatalf("unlock pty: %v", err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		m.Close()
		t.Fatalf("pty number: %v", err)
	}
	return m, fmt.Sprintf("/dev/pts/%d", n)
}

// TestOverPTY runs the console on the slave side of a pty opened with the
// real serial package (8N1 at 115200, 100 ms read timeout, as on the UART)
// and types on the master side as picocom would.
func TestOverPTY(t *testing.T) {
	master, slave := openPTY(t)
	defer master.Close()
	port, err := serial.Open(&serial.Config{Address: slave, BaudRate: 115200, DataBits: 8, StopBits: 1, Parity: "N", Timeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatalf("open %s: %v", slave, err)
	}
	dev := newFake(t)
	c, err := New(port, dev, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	stopped := false
	defer func() {
		// Stop Run before closing the port it reads, also when a check failed.
		cancel()
		if !stopped {
			<-done
		}
		port.Close()
	}()

	// A reader goroutine moves the master side's output to a channel (the
	// pty master does not support read deadlines); readUntil waits for want
	// for at most 5 s.
	chunks := make(chan []byte, 64)
	go func() {
		for {
			buf := make([]byte, 4096)
			n, err := master.Read(buf)
			if n > 0 {
				chunks <- buf[:n]
			}
			if err != nil {
				close(chunks)
				return
			}
		}
	}()
	var seen strings.Builder
	readUntil := func(want string) string {
		t.Helper()
		timeout := time.After(5 * time.Second)
		for !strings.Contains(seen.String(), want) {
			select {
			case b, ok := <-chunks:
				if !ok {
					t.Fatalf("pty closed waiting for %q; got %q", want, seen.String())
				}
				seen.Write(b)
			case <-timeout:
				t.Fatalf("timed out waiting for %q; got %q", want, seen.String())
			}
		}
		out := seen.String()
		i := strings.Index(out, want) + len(want)
		seen.Reset()
		seen.WriteString(out[i:])
		return out[:i]
	}
	readUntil("Type help.\r\nzm> ")
	for _, tc := range []struct{ in, want string }{
		{"status\r", "state: READY_TO_PAIR\r\n"},
		{"status\r\n", "state: READY_TO_PAIR\r\n"},
		{"bogus\r", `error: unknown command "bogus"; type help`},
		{"verx\x7fsion\n", "zmonitor 1.2.3"},
		{"h\xc3\xa9lp\r", "error: unprintable input"},
		{strings.Repeat("x", 400) + "\r", "error: line too long (max 256)"},
	} {
		if _, err := master.Write([]byte(tc.in)); err != nil {
			t.Fatal(err)
		}
		out := readUntil(tc.want)
		out += readUntil("zm> ")
		if strings.Count(out, "zm> ") != 1 {
			t.Errorf("%q: want one prompt, got %q", tc.in, out)
		}
	}
	// Line editing, with the bytes a terminal (xterm, picocom, screen)
	// sends for each key.
	for _, tc := range []struct {
		name, in string
		want     []string // in order
		not      string
	}{
		{"Tab completes", "sta\t\r", []string{"sta\x1b[3Dstatus\r\n", "state: READY_TO_PAIR\r\n", "zm> "}, ""},
		{"Tab that completes nothing is not typed", "xyz\t\r", []string{`error: unknown command "xyz"; type help`, "zm> "}, "\t"},
		{"second Tab lists", "e\t\t\x15version\r", []string{"echo  enroll\r\n", "zm> e", "zmonitor 1.2.3", "zm> "}, ""},
		{"Ctrl-L clears and redraws", "sta\x0ctus\r", []string{"\x1b[2J\x1b[Hzm> sta", "state: READY_TO_PAIR\r\n", "zm> "}, ""},
		{"the line after Ctrl-L", "version\r", []string{"zmonitor 1.2.3", "zm> "}, ""},
		{"Up: history", "\x1b[A\r", []string{"version\r\nzmonitor 1.2.3", "zm> "}, ""},
		{"Up Up: older", "\x1b[A\x1b[A\r", []string{"state: READY_TO_PAIR\r\n", "zm> "}, "zmonitor 1.2.3"},
		{"Up Down: back to the line typed", "ver\x1b[A\x1b[Bsion\r", []string{"zmonitor 1.2.3", "zm> "}, ""},
		{"Ctrl-A Ctrl-E", "ersio\x01v\x05n\r", []string{"zmonitor 1.2.3", "zm> "}, ""},
		{"Home End", "ersio\x1b[Hv\x1b[Fn\r", []string{"zmonitor 1.2.3", "zm> "}, ""},
		{"Left, insert, Delete", "vrsionx\x1b[D\x1b[3~\x1b[D\x1b[D\x1b[D\x1b[D\x1b[De\r", []string{"zmonitor 1.2.3", "zm> "}, ""},
		{"Ctrl-U", "garbage\x15version\r", []string{"zmonitor 1.2.3", "zm> "}, "unknown command"},
		{"Ctrl-W", "foo bar\x17\x17version\r", []string{"zmonitor 1.2.3", "zm> "}, "unknown command"},
		{"Ctrl-H", "verx\x08sion\r", []string{"zmonitor 1.2.3", "zm> "}, ""},
		{"Ctrl-C drops the line", "reboot\x03version\r", []string{"reboot^C\r\nzm> ", "zmonitor 1.2.3", "zm> "}, "rebooting"},
		{"stray Esc does not eat Enter", "version\x1b\r", []string{"zmonitor 1.2.3", "zm> "}, ""},
	} {
		if _, err := master.Write([]byte(tc.in)); err != nil {
			t.Fatal(err)
		}
		out := ""
		for _, w := range tc.want {
			out += readUntil(w)
		}
		if tc.not != "" && strings.Contains(out, tc.not) {
			t.Errorf("%s: %q in the output %q", tc.name, tc.not, out)
		}
	}
	if dev.reboots != 0 {
		t.Errorf("a dropped reboot line ran: %d reboots", dev.reboots)
	}
	// The QR over the serial line decodes.
	if _, err := master.Write([]byte("qr\r")); err != nil {
		t.Fatal(err)
	}
	out := readUntil("\x1b[0m\r\nzm> ")
	if got := decodeHalfBlocks(t, out); got != string(dev.qr) {
		t.Errorf("QR over the pty decoded %q", got)
	}
	cancel()
	select {
	case err := <-done:
		stopped = true
		if err != context.Canceled {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not stop after cancel")
	}
}
