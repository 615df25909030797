package board

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"periph.io/x/conn/v3/driver/driverreg"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/host/v3/gpioioctl"
)

// openLine finds l on the Linux GPIO character device. It is the only
// place where the firmware looks a GPIO line up: the button's line, and an
// SPI panel's DC and RST lines. The drivers receive the pin it found.
//
// l.Chip selects the GPIO chip by device path ("/dev/gpiochip0"), kernel
// name ("gpiochip0") or label ("9030000.pl061"); empty means any chip. When
// l.Name is not empty the line is found by its name (as in the device
// tree's gpio-line-names), otherwise by offset on the chip. The QEMU virt
// board's PL061 lines are unnamed, so its profile uses chip + offset.
//
// The first call initialises periph's gpioioctl driver (it reads every
// /dev/gpiochip*); only the drivers this board uses are linked (the GPIO
// character device, spidev), not periph's whole host package.
func openLine(l Line) (gpio.PinIn, error) {
	if _, err := driverreg.Init(); err != nil {
		return nil, fmt.Errorf("gpio: init periph drivers: %w", err)
	}
	return findLine(chips(), l.Chip, l.Offset, l.Name)
}

// lineChip is what findLine needs from a gpioioctl.GPIOChip.
type lineChip interface {
	Name() string
	Path() string
	Label() string
	LineCount() int
	line(offset int) gpio.PinIn
	named(name string) gpio.PinIn
}

func chips() []lineChip {
	out := make([]lineChip, 0, len(gpioioctl.Chips))
	for _, c := range gpioioctl.Chips {
		out = append(out, ioctlChip{c})
	}
	return out
}

type ioctlChip struct{ *gpioioctl.GPIOChip }

func (c ioctlChip) line(offset int) gpio.PinIn {
	if l := c.ByNumber(offset); l != nil {
		return l
	}
	return nil
}

func (c ioctlChip) named(name string) gpio.PinIn {
	if l := c.ByName(name); l != nil {
		return l
	}
	return nil
}

// ErrNoChip and ErrNoLine say which part of a line's address was not found.
var (
	ErrNoChip = errors.New("gpio: no such chip")
	ErrNoLine = errors.New("gpio: no such line")
)

// matchChip reports whether c is the chip the profile names.
func matchChip(c lineChip, want string) bool {
	if want == "" {
		return true
	}
	if strings.HasPrefix(want, "/") {
		if c.Path() == want {
			return true
		}
		// /dev/gpiochip0 may be reached through a symlink.
		a, errA := filepath.EvalSymlinks(c.Path())
		b, errB := filepath.EvalSymlinks(want)
		return errA == nil && errB == nil && a == b
	}
	return c.Name() == want || c.Label() == want
}

func findLine(cs []lineChip, chip string, offset int, name string) (gpio.PinIn, error) {
	if name == "" && chip == "" {
		return nil, fmt.Errorf("%w: offset %d needs a chip", ErrNoLine, offset)
	}
	var seen []string
	for _, c := range cs {
		if !matchChip(c, chip) {
			continue
		}
		seen = append(seen, c.Name())
		if name != "" {
			if l := c.named(name); l != nil {
				return l, nil
			}
			continue
		}
		if offset < 0 || offset >= c.LineCount() {
			return nil, fmt.Errorf("%w: offset %d on %s (%s) which has %d lines", ErrNoLine, offset, c.Name(), c.Label(), c.LineCount())
		}
		if l := c.line(offset); l != nil {
			return l, nil
		}
	}
	if len(seen) == 0 {
		return nil, fmt.Errorf("%w: %q (found %d chips)", ErrNoChip, chip, len(cs))
	}
	if name != "" {
		return nil, fmt.Errorf("%w: no line named %q on %s", ErrNoLine, name, strings.Join(seen, ", "))
	}
	return nil, fmt.Errorf("%w: offset %d on %q", ErrNoLine, offset, chip)
}
