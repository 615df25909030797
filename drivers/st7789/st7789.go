package st7789

import (
	"errors"
	"fmt"
	"image"
	"image/color"
	"sync"
	"time"

	"github.com/zmonitor/firmware/drivers/rgb565"
	"periph.io/x/conn/v3"
	"periph.io/x/conn/v3/display"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/physic"
	"periph.io/x/conn/v3/spi"
)

// Controller is the panel's driver chip.
type Controller int

const (
	// ST7789 (Sitronix), 240×320 RAM; IPS modules need colour inversion.
	ST7789 Controller = iota
	// ILI9341 (Ilitek), 240×320 RAM.
	ILI9341
)

// String implements fmt.Stringer.
func (c Controller) String() string {
	switch c {
	case ST7789:
		return "ST7789"
	case ILI9341:
		return "ILI9341"
	}
	return fmt.Sprintf("Controller(%d)", int(c))
}

// Rotation is the panel's orientation, clockwise.
type Rotation int

const (
	Rotate0 Rotation = iota
	Rotate90
	Rotate180
	Rotate270
)

// String implements fmt.Stringer.
func (r Rotation) String() string {
	switch r {
	case Rotate0, Rotate90, Rotate180, Rotate270:
		return fmt.Sprintf("%d°", 90*int(r))
	}
	return fmt.Sprintf("Rotation(%d)", int(r))
}

// Commands used by the driver (same codes on both controllers).
const (
	cmdSWRESET = 0x01
	cmdSLPIN   = 0x10
	cmdSLPOUT  = 0x11
	cmdNORON   = 0x13
	cmdINVOFF  = 0x20
	cmdINVON   = 0x21
	cmdDISPOFF = 0x28
	cmdDISPON  = 0x29
	cmdCASET   = 0x2A
	cmdRASET   = 0x2B
	cmdRAMWR   = 0x2C
	cmdMADCTL  = 0x36
	cmdCOLMOD  = 0x3A
)

// MADCTL bits.
const (
	madMY  = 0x80
	madMX  = 0x40
	madMV  = 0x20
	madBGR = 0x08
)

// ramW and ramH are the controllers' memory size in the unrotated
// orientation.
const (
	ramW = 240
	ramH = 320
)

// Opts configures the panel. Every field is validated by New before the bus
// is touched.
type Opts struct {
	// Controller selects the init sequence. ST7789 is the zero value.
	Controller Controller
	// W and H are the visible pixels in the rotated orientation.
	W, H int
	// Rotation of the picture, clockwise.
	Rotation Rotation
	// XOffset and YOffset place the visible area in controller memory, in
	// the rotated orientation. 240×240 ST7789 modules have 320 rows of
	// memory: rotated 180° they need YOffset 80, rotated 270° XOffset 80.
	XOffset, YOffset int
	// BGR is true for panels wired blue-first.
	BGR bool
	// Invert turns colour inversion on; most ST7789 IPS panels need it.
	Invert bool
	// Freq is the SPI clock. The ST7789 accepts up to 62.5 MHz for writes.
	Freq physic.Frequency
	// Mode is the SPI mode. Most modules use Mode0; modules without a CS
	// line often need Mode3.
	Mode spi.Mode
	// Sleep waits between init steps; nil means time.Sleep. Tests inject a
	// recorder so they never sleep.
	Sleep func(time.Duration)
}

// DefaultOpts is a 240×240 ST7789 IPS module at 40 MHz, SPI mode 0.
var DefaultOpts = Opts{
	Controller: ST7789,
	W:          240,
	H:          240,
	Invert:     true,
	Freq:       40 * physic.MegaHertz,
	Mode:       spi.Mode0,
}

// maxFreq is the fastest clock accepted: beyond the datasheets, a typo.
const maxFreq = 100 * physic.MegaHertz

// defaultMaxTx is the transfer size used when the connection does not
// implement conn.Limits: spidev's default buffer.
const defaultMaxTx = 4096

// Validate reports the first invalid option.
func (o *Opts) Validate() error {
	switch o.Controller {
	case ST7789, ILI9341:
	default:
		return fmt.Errorf("st7789: unknown controller %s", o.Controller)
	}
	switch o.Rotation {
	case Rotate0, Rotate90, Rotate180, Rotate270:
	default:
		return fmt.Errorf("st7789: invalid rotation %s", o.Rotation)
	}
	mw, mh := ramW, ramH
	if o.Rotation == Rotate90 || o.Rotation == Rotate270 {
		mw, mh = ramH, ramW
	}
	if o.W <= 0 || o.H <= 0 {
		return fmt.Errorf("st7789: invalid size %d×%d", o.W, o.H)
	}
	if o.XOffset < 0 || o.YOffset < 0 || o.W+o.XOffset > mw || o.H+o.YOffset > mh {
		return fmt.Errorf("st7789: %d×%d at offset (%d,%d) does not fit the %d×%d memory rotated %s", o.W, o.H, o.XOffset, o.YOffset, mw, mh, o.Rotation)
	}
	if o.Freq <= 0 || o.Freq > maxFreq {
		return fmt.Errorf("st7789: SPI clock %s out of range (0, %s]", o.Freq, maxFreq)
	}
	if o.Mode&^spi.Mode3 != 0 {
		return fmt.Errorf("st7789: unsupported SPI mode %s", o.Mode)
	}
	return nil
}

// Step is one entry of an init sequence: a command, its parameters, and a
// delay to wait afterwards.
type Step struct {
	Cmd   byte
	Data  []byte
	Delay time.Duration
}

// madctl returns the memory access control byte for the options.
func (o *Opts) madctl() byte {
	var m byte
	switch o.Rotation {
	case Rotate90:
		m = madMX | madMV
	case Rotate180:
		m = madMX | madMY
	case Rotate270:
		m = madMY | madMV
	}
	if o.BGR {
		m |= madBGR
	}
	return m
}

// InitSequence returns the power-up commands New sends for the options.
func InitSequence(o *Opts) []Step {
	inv := byte(cmdINVOFF)
	if o.Invert {
		inv = cmdINVON
	}
	if o.Controller == ILI9341 {
		// After the ILI9341 datasheet's power-on flow and common module
		// vendors' settings (power, VCOM, frame rate, gamma).
		return []Step{
			{Cmd: cmdSWRESET, Delay: 150 * time.Millisecond},
			{Cmd: 0xCF, Data: []byte{0x00, 0xC1, 0x30}},             // power control B
			{Cmd: 0xED, Data: []byte{0x64, 0x03, 0x12, 0x81}},       // power on sequence
			{Cmd: 0xE8, Data: []byte{0x85, 0x00, 0x78}},             // driver timing A
			{Cmd: 0xCB, Data: []byte{0x39, 0x2C, 0x00, 0x34, 0x02}}, // power control A
			{Cmd: 0xF7, Data: []byte{0x20}},                         // pump ratio
			{Cmd: 0xEA, Data: []byte{0x00, 0x00}},                   // driver timing B
			{Cmd: 0xC0, Data: []byte{0x23}},                         // power control 1
			{Cmd: 0xC1, Data: []byte{0x10}},                         // power control 2
			{Cmd: 0xC5, Data: []byte{0x3E, 0x28}},                   // VCOM 1
			{Cmd: 0xC7, Data: []byte{0x86}},                         // VCOM 2
			{Cmd: cmdMADCTL, Data: []byte{o.madctl()}},
			{Cmd: cmdCOLMOD, Data: []byte{0x55}},        // 16 bits per pixel
			{Cmd: 0xB1, Data: []byte{0x00, 0x18}},       // frame rate 79 Hz
			{Cmd: 0xB6, Data: []byte{0x08, 0x82, 0x27}}, // display function
			{Cmd: 0x26, Data: []byte{0x01}},             // gamma curve 1
			{Cmd: inv},
			{Cmd: cmdSLPOUT, Delay: 120 * time.Millisecond},
			{Cmd: cmdDISPON, Delay: 20 * time.Millisecond},
		}
	}
	return []Step{
		{Cmd: cmdSWRESET, Delay: 150 * time.Millisecond},
		{Cmd: cmdSLPOUT, Delay: 120 * time.Millisecond},
		{Cmd: cmdCOLMOD, Data: []byte{0x55}, Delay: 10 * time.Millisecond}, // 16 bits per pixel
		{Cmd: cmdMADCTL, Data: []byte{o.madctl()}},
		{Cmd: inv},
		{Cmd: cmdNORON, Delay: 10 * time.Millisecond},
		{Cmd: cmdDISPON, Delay: 20 * time.Millisecond},
	}
}

// Dev is an open panel. Its methods may be called from several goroutines.
type Dev struct {
	mu    sync.Mutex
	c     spi.Conn
	dc    gpio.PinOut
	rst   gpio.PinOut
	opts  Opts
	rect  image.Rectangle
	maxTx int
	buf   []byte
	cmd   [5]byte
}

// New connects to the panel on p, resets it (through rst when it is not nil
// or gpio.INVALID, else by software) and runs the init sequence. opts may be
// nil for DefaultOpts; it is copied.
func New(p spi.Port, dc gpio.PinOut, rst gpio.PinOut, opts *Opts) (*Dev, error) {
	o := DefaultOpts
	if opts != nil {
		o = *opts
	}
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if p == nil {
		return nil, errors.New("st7789: nil SPI port")
	}
	if dc == nil || dc == gpio.INVALID {
		return nil, errors.New("st7789: a DC pin is required")
	}
	if rst == gpio.INVALID {
		rst = nil
	}
	if o.Sleep == nil {
		o.Sleep = time.Sleep
	}
	c, err := p.Connect(o.Freq, o.Mode, 8)
	if err != nil {
		return nil, fmt.Errorf("st7789: connect SPI at %s %s: %w", o.Freq, o.Mode, err)
	}
	d := &Dev{
		c:     c,
		dc:    dc,
		rst:   rst,
		opts:  o,
		rect:  image.Rect(0, 0, o.W, o.H),
		maxTx: defaultMaxTx,
	}
	if l, ok := c.(conn.Limits); ok {
		if n := l.MaxTxSize(); n > 0 {
			d.maxTx = n
		}
	}
	if err := d.reset(); err != nil {
		return nil, err
	}
	for _, s := range InitSequence(&o) {
		if err := d.command(s.Cmd, s.Data); err != nil {
			return nil, fmt.Errorf("st7789: init: %w", err)
		}
		if s.Delay > 0 {
			o.Sleep(s.Delay)
		}
	}
	return d, nil
}

// reset pulses RST low when the board wires it.
func (d *Dev) reset() error {
	if d.rst == nil {
		return nil
	}
	for _, s := range []struct {
		l gpio.Level
		t time.Duration
	}{{gpio.High, time.Millisecond}, {gpio.Low, 20 * time.Microsecond}, {gpio.High, 120 * time.Millisecond}} {
		if err := d.rst.Out(s.l); err != nil {
			return fmt.Errorf("st7789: reset: set RST %s: %w", s.l, err)
		}
		d.opts.Sleep(s.t)
	}
	return nil
}

// String implements conn.Resource.
func (d *Dev) String() string {
	return fmt.Sprintf("%s{%s, %d×%d, %s}", d.opts.Controller, d.c, d.opts.W, d.opts.H, d.opts.Rotation)
}

// ColorModel implements display.Drawer: pixels are RGB565.
func (d *Dev) ColorModel() color.Model { return rgb565.Model }

// Bounds implements display.Drawer.
func (d *Dev) Bounds() image.Rectangle { return d.rect }

// Draw implements display.Drawer. It sends only the part of r inside the
// panel and covered by src (src's point sp maps to r.Min).
func (d *Dev) Draw(r image.Rectangle, src image.Image, sp image.Point) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	r = r.Intersect(d.rect)
	// Clip to the source: the source rectangle is r moved to sp.
	sr := r.Sub(r.Min).Add(sp).Intersect(src.Bounds())
	r = sr.Sub(sp).Add(r.Min)
	if r.Empty() {
		return nil
	}
	n := r.Dx() * r.Dy() * 2
	if cap(d.buf) < n {
		d.buf = make([]byte, n)
	}
	buf := d.buf[:n]
	rgb565.Encode(buf, r.Dx()*2, src, sr, rgb565.BigEndian)
	if err := d.window(r); err != nil {
		return fmt.Errorf("st7789: draw %v: %w", r, err)
	}
	if err := d.data(buf); err != nil {
		return fmt.Errorf("st7789: draw %v: %w", r, err)
	}
	return nil
}

// window sets the column and row address window to r and starts a memory
// write.
func (d *Dev) window(r image.Rectangle) error {
	x0, x1 := r.Min.X+d.opts.XOffset, r.Max.X-1+d.opts.XOffset
	y0, y1 := r.Min.Y+d.opts.YOffset, r.Max.Y-1+d.opts.YOffset
	if err := d.command(cmdCASET, []byte{byte(x0 >> 8), byte(x0), byte(x1 >> 8), byte(x1)}); err != nil {
		return err
	}
	if err := d.command(cmdRASET, []byte{byte(y0 >> 8), byte(y0), byte(y1 >> 8), byte(y1)}); err != nil {
		return err
	}
	return d.command(cmdRAMWR, nil)
}

// Halt implements conn.Resource: display off, then sleep in.
func (d *Dev) Halt() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.command(cmdDISPOFF, nil); err != nil {
		return fmt.Errorf("st7789: halt: %w", err)
	}
	if err := d.command(cmdSLPIN, nil); err != nil {
		return fmt.Errorf("st7789: halt: %w", err)
	}
	return nil
}

// command sends cmd with DC low, then its parameters with DC high.
func (d *Dev) command(cmd byte, data []byte) error {
	if err := d.dc.Out(gpio.Low); err != nil {
		return fmt.Errorf("command %#02x: set DC low: %w", cmd, err)
	}
	d.cmd[0] = cmd
	if err := d.c.Tx(d.cmd[:1], nil); err != nil {
		return fmt.Errorf("command %#02x: %w", cmd, err)
	}
	if len(data) == 0 {
		return nil
	}
	if err := d.data(data); err != nil {
		return fmt.Errorf("command %#02x: %w", cmd, err)
	}
	return nil
}

// data sends b with DC high, in transfers of at most maxTx bytes.
func (d *Dev) data(b []byte) error {
	if err := d.dc.Out(gpio.High); err != nil {
		return fmt.Errorf("set DC high: %w", err)
	}
	for len(b) > 0 {
		n := min(len(b), d.maxTx)
		if err := d.c.Tx(b[:n], nil); err != nil {
			return fmt.Errorf("write %d bytes: %w", n, err)
		}
		b = b[n:]
	}
	return nil
}

var _ display.Drawer = &Dev{}
var _ conn.Resource = &Dev{}
