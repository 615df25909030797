package serialport

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/goburrow/serial"
)

// Config says which UART to open.
type Config struct {
	// Device is the UART's device file, such as /dev/ttyAMA0.
	Device string
	// Baud is the line speed; zero means 115200.
	Baud int
	// ReadTimeout bounds how long Read waits for the first byte; zero
	// means 100 ms.
	ReadTimeout time.Duration
	// WriteTimeout bounds how long Write waits for room in the kernel's
	// transmit buffer; zero means 5 s.
	WriteTimeout time.Duration
}

// Defaults for the zero values of Config.
const (
	DefaultBaud         = 115200
	DefaultReadTimeout  = 100 * time.Millisecond
	DefaultWriteTimeout = 5 * time.Second
)

// ErrTimeout is returned by Read, with n == 0, when no byte arrived within
// Config.ReadTimeout. It is not a failure of the port.
var ErrTimeout error = timeoutError{}

// timeoutError reports Timeout() so that readers which know nothing of this
// package (the console, net-style code) treat it as "nothing arrived".
type timeoutError struct{}

func (timeoutError) Error() string { return "serialport: read timeout" }
func (timeoutError) Timeout() bool { return true }

// ErrWriteTimeout is returned by Write when the line did not take the bytes
// within Config.WriteTimeout (no reader, or flow control holding it).
var ErrWriteTimeout = errors.New("serialport: write timeout")

// Port is an open UART. Read and Write may be called concurrently with each
// other; Close should be called after the reader has stopped.
type Port struct {
	p      io.ReadWriteCloser
	cfg    Config
	wmu    sync.Mutex
	closed atomic.Bool
	// sleep waits for room in the transmit buffer; tests may replace it.
	sleep func(time.Duration)
}

// Open opens cfg.Device as 8N1 raw at cfg.Baud.
func Open(cfg Config) (*Port, error) {
	if cfg.Device == "" {
		return nil, errors.New("serialport: no device")
	}
	if cfg.Baud == 0 {
		cfg.Baud = DefaultBaud
	}
	if cfg.ReadTimeout == 0 {
		cfg.ReadTimeout = DefaultReadTimeout
	}
	if cfg.WriteTimeout == 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	if cfg.Baud < 0 || cfg.ReadTimeout < 0 || cfg.WriteTimeout < 0 {
		return nil, fmt.Errorf("serialport: %s: negative setting in %+v", cfg.Device, cfg)
	}
	p, err := serial.Open(&serial.Config{
		Address:  cfg.Device,
		BaudRate: cfg.Baud,
		DataBits: 8,
		StopBits: 1,
		Parity:   "N", // the package's default is "E"
		Timeout:  cfg.ReadTimeout,
	})
	if err != nil {
		return nil, fmt.Errorf("serialport: open %s at %d 8N1: %w", cfg.Device, cfg.Baud, err)
	}
	return &Port{p: p, cfg: cfg, sleep: time.Sleep}, nil
}

// String describes the port.
func (p *Port) String() string {
	return fmt.Sprintf("%s %d 8N1", p.cfg.Device, p.cfg.Baud)
}

// Read reads what has arrived, waiting at most Config.ReadTimeout for the
// first byte. It returns 0, ErrTimeout when nothing came.
func (p *Port) Read(b []byte) (int, error) {
	if p.closed.Load() {
		return 0, os.ErrClosed
	}
	if len(b) == 0 {
		return 0, nil
	}
	n, err := p.p.Read(b)
	if n < 0 { // the package passes read(2)'s -1 through
		n = 0
	}
	switch {
	case err == nil && n == 0:
		// The line reported readable but had nothing (a hang-up reads
		// as end of file on a tty).
		return 0, io.EOF
	case errors.Is(err, serial.ErrTimeout), errors.Is(err, syscall.EAGAIN):
		return 0, ErrTimeout
	case err != nil:
		if p.closed.Load() {
			return 0, os.ErrClosed
		}
		return n, fmt.Errorf("serialport: read %s: %w", p.cfg.Device, err)
	}
	return n, nil
}

// Write writes all of b, looping over short writes and waiting while the
// kernel's transmit buffer is full, for at most Config.WriteTimeout
// overall. It returns how many bytes were written.
func (p *Port) Write(b []byte) (int, error) {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	if p.closed.Load() {
		return 0, os.ErrClosed
	}
	deadline := time.Now().Add(p.cfg.WriteTimeout)
	// Time one byte takes on the line (10 bits in 8N1), at least 100 µs.
	pause := max(time.Second*10/time.Duration(p.cfg.Baud), 100*time.Microsecond)
	total := 0
	for total < len(b) {
		n, err := p.p.Write(b[total:])
		if n > 0 {
			total += n
		}
		switch {
		case err == nil && n > 0:
			continue
		case err == nil, errors.Is(err, syscall.EAGAIN), errors.Is(err, syscall.EINTR):
			if !time.Now().Before(deadline) {
				return total, fmt.Errorf("%w on %s after %d of %d bytes", ErrWriteTimeout, p.cfg.Device, total, len(b))
			}
			// The port hides its file descriptor, so it cannot be
			// polled for room: wait for a few bytes to drain.
			wait := pause * time.Duration(min(len(b)-total, 64))
			p.sleep(min(wait, 10*time.Millisecond))
		default:
			return total, fmt.Errorf("serialport: write %s: %w", p.cfg.Device, err)
		}
	}
	return total, nil
}

// Close restores the UART's previous settings and closes it.
func (p *Port) Close() error {
	if p.closed.Swap(true) {
		return nil
	}
	p.wmu.Lock()
	defer p.wmu.Unlock()
	if err := p.p.Close(); err != nil {
		return fmt.Errorf("serialport: close %s: %w", p.cfg.Device, err)
	}
	return nil
}

var _ io.ReadWriteCloser = &Port{}
