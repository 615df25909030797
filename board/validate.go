package board

import (
	"errors"
	"fmt"
	"path"
	"strings"
	"time"
)

// ErrInvalid is wrapped by every validation error.
var ErrInvalid = errors.New("invalid board profile")

// FieldError says which field of a profile is wrong and why.
type FieldError struct {
	// Field is the JSON path of the field, such as "button.debounce".
	Field   string
	Problem string
}

func (e *FieldError) Error() string {
	return "board: " + e.Field + ": " + e.Problem
}

// Unwrap makes errors.Is(err, ErrInvalid) true.
func (e *FieldError) Unwrap() error { return ErrInvalid }

func bad(field, format string, a ...any) error {
	return &FieldError{Field: field, Problem: fmt.Sprintf(format, a...)}
}

// baudRates are the speeds the serial package supports.
var baudRates = map[int]bool{
	9600: true, 19200: true, 38400: true, 57600: true, 115200: true, 230400: true,
	460800: true, 500000: true, 576000: true, 921600: true, 1000000: true,
	1152000: true, 1500000: true, 2000000: true, 3000000: true, 4000000: true,
}

// maxSPIHz is the fastest SPI clock accepted.
const maxSPIHz = 100_000_000

// Validate checks every field and returns the first problem as a
// *FieldError.
func (p *Profile) Validate() error {
	if !validName(p.Name) {
		return bad("name", "%q must be 1 to 64 characters of a-z, 0-9 and '-'", p.Name)
	}
	if err := p.Button.validate(); err != nil {
		return err
	}
	if err := p.Display.validate(); err != nil {
		return err
	}
	if err := devPath("tpm.path", p.TPM.Path); err != nil {
		return err
	}
	if err := devPath("console.device", p.Console.Device); err != nil {
		return err
	}
	if !baudRates[p.Console.Baud] {
		return bad("console.baud", "%d is not a supported speed", p.Console.Baud)
	}
	if err := devPath("data.device", p.Data.Device); err != nil {
		return err
	}
	if p.Data.Filesystem != "ext4" {
		return bad("data.filesystem", "%q is not supported (want ext4)", p.Data.Filesystem)
	}
	if !absClean(p.Data.Mount) || p.Data.Mount == "/" {
		return bad("data.mount", "%q must be an absolute, clean path other than /", p.Data.Mount)
	}
	if n := p.Network.Interface; n == "" || len(n) > 15 || strings.ContainsAny(n, "/ \t\n:") || n == "." || n == ".." {
		return bad("network.interface", "%q is not a valid interface name", n)
	}
	if p.ProvisioningPort < 1 || p.ProvisioningPort > 65535 {
		return bad("provisioningPort", "%d is not a TCP port", p.ProvisioningPort)
	}
	s, r := p.Pairing.SessionLifetime.D(), p.Pairing.TokenRotation.D()
	if s < time.Second || s > time.Hour {
		return bad("pairing.sessionLifetime", "%s must be between 1s and 1h", s)
	}
	if r < 100*time.Millisecond || r > s {
		return bad("pairing.tokenRotation", "%s must be between 100ms and the session lifetime %s", r, s)
	}
	return nil
}

func (b *Button) validate() error {
	if err := b.Line.validate("button.line"); err != nil {
		return err
	}
	d, l := b.Debounce.D(), b.LongPress.D()
	if d < time.Millisecond || d > time.Second {
		return bad("button.debounce", "%s must be between 1ms and 1s", d)
	}
	if l <= d || l > 30*time.Second {
		return bad("button.longPress", "%s must be longer than the debounce %s and at most 30s", l, d)
	}
	return nil
}

func (l *Line) validate(field string) error {
	if l.Name == "" && l.Chip == "" {
		return bad(field, "needs a line name, or a chip and an offset")
	}
	if l.Name != "" && l.Offset != 0 {
		return bad(field, "name %q and offset %d are exclusive", l.Name, l.Offset)
	}
	if l.Offset < 0 || l.Offset > 1023 {
		return bad(field+".offset", "%d out of range", l.Offset)
	}
	if len(l.Name) > 31 || len(l.Chip) > 255 || strings.ContainsRune(l.Name+l.Chip, 0) {
		return bad(field, "name or chip too long or not text")
	}
	if strings.HasPrefix(l.Chip, "/") && !strings.HasPrefix(l.Chip, "/dev/") {
		return bad(field+".chip", "%q: a chip path must be under /dev", l.Chip)
	}
	return nil
}

func (d *Display) validate() error {
	switch d.Kind {
	case Framebuffer:
		if d.Width < 1 || d.Height < 1 || d.Width > 4096 || d.Height > 4096 {
			return bad("display", "size %d×%d out of range", d.Width, d.Height)
		}
		if err := devPath("display.framebuffer", d.Framebuffer); err != nil {
			return err
		}
		if d.TTY != "" {
			if err := devPath("display.tty", d.TTY); err != nil {
				return err
			}
		}
		if d.SPI != "" || d.SPIHz != 0 || !d.DC.IsZero() || !d.RST.IsZero() {
			return bad("display", "SPI settings on a framebuffer display")
		}
	case ST7789, ILI9341:
		if d.Width < 1 || d.Height < 1 || d.Width > 320 || d.Height > 320 {
			return bad("display", "size %d×%d out of range for an SPI panel", d.Width, d.Height)
		}
		if err := devPath("display.spi", d.SPI); err != nil {
			return err
		}
		if d.SPIHz <= 0 || d.SPIHz > maxSPIHz {
			return bad("display.spiHz", "%d out of range (0, %d]", d.SPIHz, maxSPIHz)
		}
		if d.SPIMode < 0 || d.SPIMode > 3 {
			return bad("display.spiMode", "%d is not 0 to 3", d.SPIMode)
		}
		if err := d.DC.validate("display.dc"); err != nil {
			return err
		}
		if !d.RST.IsZero() {
			if err := d.RST.validate("display.rst"); err != nil {
				return err
			}
		}
		if d.Rotation%90 != 0 || d.Rotation < 0 || d.Rotation > 270 {
			return bad("display.rotation", "%d is not 0, 90, 180 or 270", d.Rotation)
		}
		if d.XOffset < 0 || d.YOffset < 0 || d.XOffset > 320 || d.YOffset > 320 {
			return bad("display", "offset (%d,%d) out of range", d.XOffset, d.YOffset)
		}
		if d.Framebuffer != "" || d.TTY != "" {
			return bad("display", "framebuffer settings on an SPI panel")
		}
	default:
		return bad("display.kind", "missing or unknown (%s)", d.Kind)
	}
	return nil
}

func validName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

func absClean(p string) bool {
	return strings.HasPrefix(p, "/") && path.Clean(p) == p && len(p) < 256 && !strings.ContainsRune(p, 0)
}

func devPath(field, p string) error {
	if !absClean(p) || !strings.HasPrefix(p, "/dev/") {
		return bad(field, "%q must be a clean path under /dev", p)
	}
	return nil
}
