package board

import (
	"errors"
	"fmt"
	"image"

	"github.com/zmonitor/firmware/drivers/button"
	"github.com/zmonitor/firmware/drivers/fbdev"
	"github.com/zmonitor/firmware/drivers/serialport"
	"github.com/zmonitor/firmware/drivers/st7789"
	"periph.io/x/conn/v3/display"
	"periph.io/x/conn/v3/driver/driverreg"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/physic"
	"periph.io/x/conn/v3/spi"
	"periph.io/x/conn/v3/spi/spireg"
	_ "periph.io/x/host/v3/sysfs" // registers spidev ports in spireg
)

// Screen is an opened display and how to let go of it.
type Screen struct {
	display.Drawer
	close func() error
}

// Close halts the display and releases its device files.
func (s *Screen) Close() error {
	if s.close == nil {
		return nil
	}
	return s.close()
}

// OpenButton opens the button's GPIO line and returns the debounced button.
func OpenButton(p Profile) (*button.Dev, error) {
	b := p.Button
	pin, err := openLine(b.Line)
	if err != nil {
		return nil, fmt.Errorf("board %s: button %s: %w", p.Name, b.Line, err)
	}
	d, err := button.New(pin, &button.Opts{ActiveLow: b.ActiveLow, Debounce: b.Debounce.D(), LongPress: b.LongPress.D()})
	if err != nil {
		return nil, fmt.Errorf("board %s: %w", p.Name, err)
	}
	return d, nil
}

// OpenDisplay opens the framebuffer or the SPI panel.
func OpenDisplay(p Profile) (*Screen, error) {
	d := p.Display
	switch d.Kind {
	case Framebuffer:
		fb, err := fbdev.Open(d.Framebuffer, &fbdev.Opts{TTY: d.TTY})
		if err != nil {
			return nil, fmt.Errorf("board %s: display: %w", p.Name, err)
		}
		if err := checkSize(fb.Bounds(), d.Width, d.Height); err != nil {
			_ = fb.Close()
			return nil, fmt.Errorf("board %s: display %s: %w", p.Name, d.Framebuffer, err)
		}
		return &Screen{Drawer: fb, close: fb.Close}, nil
	case ST7789, ILI9341:
		return openPanel(p)
	}
	return nil, fmt.Errorf("board %s: display: unknown kind %s", p.Name, d.Kind)
}

// checkSize accepts a framebuffer at least as large as the profile says:
// the screens draw in its top-left corner.
func checkSize(b image.Rectangle, w, h int) error {
	if b.Dx() < w || b.Dy() < h {
		return fmt.Errorf("is %d×%d, smaller than the profile's %d×%d", b.Dx(), b.Dy(), w, h)
	}
	return nil
}

// panelOpts translates the profile into the driver's options.
func panelOpts(d Display) st7789.Opts {
	o := st7789.DefaultOpts
	o.Controller = st7789.ST7789
	if d.Kind == ILI9341 {
		o.Controller = st7789.ILI9341
	}
	o.W, o.H = d.Width, d.Height
	o.Rotation = st7789.Rotation(d.Rotation / 90)
	o.XOffset, o.YOffset = d.XOffset, d.YOffset
	o.BGR, o.Invert = d.BGR, d.Invert
	o.Freq = physic.Frequency(d.SPIHz) * physic.Hertz
	o.Mode = spi.Mode(d.SPIMode)
	return o
}

func openPanel(p Profile) (*Screen, error) {
	d := p.Display
	o := panelOpts(d)
	if err := o.Validate(); err != nil {
		return nil, fmt.Errorf("board %s: display: %w", p.Name, err)
	}
	// Only the drivers this board uses are linked (sysfs: spidev; the GPIO
	// character device through gpioioctl, see openLine), not periph's
	// whole host package with every SoC it knows: the firmware stays
	// smaller.
	if _, err := driverreg.Init(); err != nil {
		return nil, fmt.Errorf("board %s: periph driver init: %w", p.Name, err)
	}
	dc, err := outLine(d.DC)
	if err != nil {
		return nil, fmt.Errorf("board %s: display DC %s: %w", p.Name, d.DC, err)
	}
	var rst gpio.PinOut
	if !d.RST.IsZero() {
		if rst, err = outLine(d.RST); err != nil {
			return nil, fmt.Errorf("board %s: display RST %s: %w", p.Name, d.RST, err)
		}
	}
	port, err := spireg.Open(d.SPI)
	if err != nil {
		return nil, fmt.Errorf("board %s: display: open %s: %w", p.Name, d.SPI, err)
	}
	dev, err := st7789.New(port, dc, rst, &o)
	if err != nil {
		_ = port.Close()
		return nil, fmt.Errorf("board %s: display on %s: %w", p.Name, d.SPI, err)
	}
	return &Screen{Drawer: dev, close: func() error {
		return errors.Join(dev.Halt(), port.Close())
	}}, nil
}

// outLine opens a GPIO line for output. The character device's lines are
// bidirectional (gpioioctl.GPIOLine implements gpio.PinIO).
func outLine(l Line) (gpio.PinOut, error) {
	pin, err := openLine(l)
	if err != nil {
		return nil, err
	}
	out, ok := pin.(gpio.PinOut)
	if !ok {
		return nil, fmt.Errorf("line %s cannot be an output", l)
	}
	return out, nil
}

// OpenConsole opens the console UART (8N1, raw).
func OpenConsole(p Profile) (*serialport.Port, error) {
	c, err := serialport.Open(serialport.Config{Device: p.Console.Device, Baud: p.Console.Baud})
	if err != nil {
		return nil, fmt.Errorf("board %s: console: %w", p.Name, err)
	}
	return c, nil
}
