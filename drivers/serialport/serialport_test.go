package serialport

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// openPTY returns the master side of a new pseudo-terminal and the path of
// its slave, which the tests open with the real serial package.
func openPTY(t *testing.T) (*os.File, string) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlockpt: %v", err)
	}
	n, err := unix.IoctlGetUint32(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("ptsname: %v", err)
	}
	// The master side must not translate or echo either.
	tio, err := unix.IoctlGetTermios(int(m.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	tio.Lflag &^= unix.ECHO | unix.ICANON | unix.ISIG | unix.IEXTEN
	tio.Iflag &^= unix.ICRNL | unix.IXON
	tio.Oflag &^= unix.OPOST
	if err := unix.IoctlSetTermios(int(m.Fd()), unix.TCSETS, tio); err != nil {
		t.Fatal(err)
	}
	return m, fmt.Sprintf("/dev/pts/%d", n)
}

func openPort(t *testing.T, cfg Config) (*Port, *os.File) {
	t.Helper()
	m, slave := openPTY(t)
	cfg.Device = slave
	p, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p, m
}

func TestTermiosIs8N1Raw(t *testing.T) {
	p, _ := openPort(t, Config{})
	f, err := os.OpenFile(p.cfg.Device, os.O_RDONLY|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tio, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	if tio.Cflag&unix.PARENB != 0 || tio.Iflag&unix.INPCK != 0 {
		t.Errorf("parity enabled: cflag %#o iflag %#o", tio.Cflag, tio.Iflag)
	}
	if tio.Cflag&unix.CSIZE != unix.CS8 {
		t.Errorf("character size %#o; want CS8", tio.Cflag&unix.CSIZE)
	}
	if tio.Cflag&unix.CSTOPB != 0 {
		t.Error("two stop bits")
	}
	if tio.Cflag&unix.CBAUD != unix.B115200 { // TCGETS leaves c_ispeed unset; the speed is in CBAUD
		t.Errorf("speed %#o; want B115200", tio.Cflag&unix.CBAUD)
	}
	if tio.Lflag&(unix.ECHO|unix.ICANON) != 0 || tio.Oflag&unix.OPOST != 0 || tio.Iflag&unix.ICRNL != 0 {
		t.Errorf("not raw: lflag %#o oflag %#o iflag %#o", tio.Lflag, tio.Oflag, tio.Iflag)
	}
	if got := p.String(); got != p.cfg.Device+" 115200 8N1" {
		t.Errorf("String() = %q", got)
	}
}

func TestOtherBaud(t *testing.T) {
	p, m := openPort(t, Config{Baud: 9600})
	tio, err := unix.IoctlGetTermios(int(m.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	if tio.Cflag&unix.CBAUD != unix.B9600 {
		t.Errorf("speed %#o; want B9600", tio.Cflag&unix.CBAUD)
	}
	if _, err := Open(Config{Device: p.cfg.Device, Baud: 12345}); err == nil {
		t.Error("unsupported baud accepted")
	}
	if _, err := Open(Config{}); err == nil {
		t.Error("empty device accepted")
	}
}

func TestBytesBothWays(t *testing.T) {
	p, m := openPort(t, Config{})
	// Device to laptop.
	msg := []byte("status\r\nZ Monitor \x00\xff\x1b[0m\n")
	if n, err := p.Write(msg); err != nil || n != len(msg) {
		t.Fatalf("Write = %d, %v", n, err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(m, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, msg) {
		t.Errorf("laptop got %q; want %q (CR/LF must pass untouched)", got, msg)
	}
	// Laptop to device.
	in := []byte("help\r\x7f\x03")
	if _, err := m.Write(in); err != nil {
		t.Fatal(err)
	}
	var all []byte
	buf := make([]byte, 64)
	for len(all) < len(in) {
		n, err := p.Read(buf)
		if err != nil && !errors.Is(err, ErrTimeout) {
			t.Fatal(err)
		}
		all = append(all, buf[:n]...)
	}
	if !bytes.Equal(all, in) {
		t.Errorf("device got %q; want %q", all, in)
	}
}

func TestReadTimeout(t *testing.T) {
	p, _ := openPort(t, Config{ReadTimeout: 5 * time.Millisecond})
	n, err := p.Read(make([]byte, 8))
	if n != 0 || !errors.Is(err, ErrTimeout) {
		t.Fatalf("Read on a quiet line = %d, %v; want 0, ErrTimeout", n, err)
	}
}

func TestLargeWriteArrivesComplete(t *testing.T) {
	p, m := openPort(t, Config{})
	want := make([]byte, 64<<10)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range want {
		want[i] = byte(rng.Uint32())
	}
	got := make(chan []byte)
	go func() {
		b := make([]byte, len(want))
		_, err := io.ReadFull(m, b)
		if err != nil {
			b = nil
		}
		got <- b
	}()
	n, err := p.Write(want)
	if err != nil || n != len(want) {
		t.Fatalf("Write = %d, %v", n, err)
	}
	if b := <-got; !bytes.Equal(b, want) {
		t.Fatalf("received %d bytes, differing from the %d written", len(b), len(want))
	}
}

func TestWriteTimeoutWithoutReader(t *testing.T) {
	// Long enough that the pty's buffer is full well before the deadline
	// even on a loaded host (with 1 ms the deadline could pass while the
	// buffer was still filling, and Write rightly gave up without a wait).
	p, _ := openPort(t, Config{WriteTimeout: 100 * time.Millisecond})
	var slept time.Duration
	p.sleep = func(d time.Duration) { slept += d; time.Sleep(d) }
	n, err := p.Write(make([]byte, 1<<20)) // far more than the pty buffers
	if !errors.Is(err, ErrWriteTimeout) || n == 0 || n == 1<<20 {
		t.Fatalf("Write with nobody reading = %d, %v; want a partial count and ErrWriteTimeout", n, err)
	}
	if slept == 0 {
		t.Error("Write never waited for room")
	}
}

func TestClosed(t *testing.T) {
	p, _ := openPort(t, Config{})
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	if _, err := p.Write([]byte("x")); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Write after Close = %v", err)
	}
	if _, err := p.Read(make([]byte, 1)); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Read after Close = %v", err)
	}
}

func TestHangUpIsEOF(t *testing.T) {
	p, m := openPort(t, Config{})
	m.Close()
	_, err := p.Read(make([]byte, 8))
	if err == nil || errors.Is(err, ErrTimeout) {
		t.Fatalf("Read after hang-up = %v; want a final error", err)
	}
}

func TestErrTimeoutIsATimeout(t *testing.T) {
	var te interface{ Timeout() bool }
	if !errors.As(ErrTimeout, &te) || !te.Timeout() {
		t.Fatal("ErrTimeout does not report Timeout() == true; readers would treat it as a failure")
	}
}
