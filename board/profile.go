package board

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// DisplayKind is the kind of display a board has.
type DisplayKind int

const (
	// Framebuffer is a Linux framebuffer device (/dev/fb0).
	Framebuffer DisplayKind = iota + 1
	// ST7789 is an SPI panel with a Sitronix ST7789 controller.
	ST7789
	// ILI9341 is an SPI panel with an Ilitek ILI9341 controller.
	ILI9341
)

var displayKindNames = map[DisplayKind]string{
	Framebuffer: "framebuffer",
	ST7789:      "st7789",
	ILI9341:     "ili9341",
}

// String implements fmt.Stringer; it is also the JSON spelling.
func (k DisplayKind) String() string {
	if s, ok := displayKindNames[k]; ok {
		return s
	}
	return fmt.Sprintf("DisplayKind(%d)", int(k))
}

// IsSPI reports whether the display is an SPI panel.
func (k DisplayKind) IsSPI() bool { return k == ST7789 || k == ILI9341 }

// MarshalText implements encoding.TextMarshaler.
func (k DisplayKind) MarshalText() ([]byte, error) {
	s, ok := displayKindNames[k]
	if !ok {
		return nil, fmt.Errorf("board: unknown display kind %d", int(k))
	}
	return []byte(s), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (k *DisplayKind) UnmarshalText(b []byte) error {
	for v, s := range displayKindNames {
		if string(b) == s {
			*k = v
			return nil
		}
	}
	return fmt.Errorf("board: unknown display kind %q (want framebuffer, st7789 or ili9341)", b)
}

// Duration is a time.Duration written in JSON as a Go duration string
// ("30ms", "10m0s").
type Duration time.Duration

// D returns the time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String implements fmt.Stringer.
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("board: duration: %w", err)
	}
	*d = Duration(v)
	return nil
}

// Line names a GPIO line of the Linux GPIO character device: by Name (the
// device tree's gpio-line-names), or by Chip (path such as /dev/gpiochip0,
// kernel name gpiochip0 or label such as 9030000.pl061) and Offset.
type Line struct {
	Chip   string `json:"chip,omitempty"`
	Offset int    `json:"offset"`
	Name   string `json:"name,omitempty"`
}

// IsZero reports whether the line is unset.
func (l Line) IsZero() bool { return l == Line{} }

// String describes the line.
func (l Line) String() string {
	switch {
	case l.Name != "" && l.Chip != "":
		return fmt.Sprintf("%q on %s", l.Name, l.Chip)
	case l.Name != "":
		return fmt.Sprintf("%q", l.Name)
	}
	return fmt.Sprintf("%s line %d", l.Chip, l.Offset)
}

// Button is the "Enable Provisioning" push button.
type Button struct {
	Line Line `json:"line"`
	// ActiveLow is true when pressing pulls the line low.
	ActiveLow bool `json:"activeLow"`
	// Debounce is the interval edges are ignored after an accepted change.
	Debounce Duration `json:"debounce"`
	// LongPress is how long a hold must last to be a long press.
	LongPress Duration `json:"longPress"`
}

// Display is the screen.
type Display struct {
	Kind DisplayKind `json:"kind"`
	// Width and Height are the visible pixels as the screens are drawn.
	Width  int `json:"width"`
	Height int `json:"height"`

	// Framebuffer is the fbdev device (Kind framebuffer).
	Framebuffer string `json:"framebuffer,omitempty"`
	// TTY is the console put in graphics mode while the framebuffer is in
	// use; empty leaves it alone (Kind framebuffer).
	TTY string `json:"tty,omitempty"`

	// SPI is the spidev device (SPI kinds).
	SPI string `json:"spi,omitempty"`
	// SPIHz is the SPI clock in hertz.
	SPIHz int64 `json:"spiHz,omitempty"`
	// SPIMode is the SPI mode, 0 to 3.
	SPIMode int `json:"spiMode,omitempty"`
	// DC is the data/command line; RST the reset line (optional).
	DC  Line `json:"dc,omitzero"`
	RST Line `json:"rst,omitzero"`
	// Rotation is 0, 90, 180 or 270 degrees clockwise.
	Rotation int `json:"rotation,omitempty"`
	// XOffset and YOffset place the visible area in the controller's
	// memory (240×240 ST7789 modules rotated 180° need YOffset 80).
	XOffset int `json:"xOffset,omitempty"`
	YOffset int `json:"yOffset,omitempty"`
	// BGR is true for panels wired blue-first; Invert turns colour
	// inversion on (most ST7789 IPS panels).
	BGR    bool `json:"bgr,omitempty"`
	Invert bool `json:"invert,omitempty"`
}

// TPM is the TPM 2.0 device.
type TPM struct {
	// Path is the kernel's resource-managed TPM device.
	Path string `json:"path"`
}

// Console is the serial diagnostics console.
type Console struct {
	Device string `json:"device"`
	Baud   int    `json:"baud"`
}

// Data is the persistent data partition (settings, audit log).
type Data struct {
	Device     string `json:"device"`
	Filesystem string `json:"filesystem"`
	Mount      string `json:"mount"`
}

// Network is the interface the device provisions and talks on.
type Network struct {
	Interface string `json:"interface"`
	DHCP      bool   `json:"dhcp"`
}

// Pairing holds the pairing timings (DESIGN.md section 4).
type Pairing struct {
	// SessionLifetime is how long READY_TO_PAIR lasts (10 min).
	SessionLifetime Duration `json:"sessionLifetime"`
	// TokenRotation is how often the pairing token and QR change (30 s).
	TokenRotation Duration `json:"tokenRotation"`
}

// Profile is everything the firmware needs to know about a board.
type Profile struct {
	Name    string  `json:"name"`
	Button  Button  `json:"button"`
	Display Display `json:"display"`
	TPM     TPM     `json:"tpm"`
	Console Console `json:"console"`
	Data    Data    `json:"data"`
	Network Network `json:"network"`
	// ProvisioningPort is the TLS port opened while READY_TO_PAIR.
	ProvisioningPort int `json:"provisioningPort"`
	// ConsoleMayProvision lets the console's `provision` command start
	// provisioning without the button. Off on production boards.
	ConsoleMayProvision bool    `json:"consoleMayProvision"`
	Pairing             Pairing `json:"pairing"`
}

// Defaults shared by the built-in profiles.
const (
	DefaultProvisioningPort = 8444
	DefaultSessionLifetime  = 10 * time.Minute
	DefaultTokenRotation    = 30 * time.Second
	DefaultDebounce         = 30 * time.Millisecond
	DefaultLongPress        = 3 * time.Second
	// DefaultPath is where the image puts the board's profile.
	DefaultPath = "/etc/zmonitor/board.json"
)

func common(name string) Profile {
	return Profile{
		Name:             name,
		Button:           Button{Debounce: Duration(DefaultDebounce), LongPress: Duration(DefaultLongPress)},
		TPM:              TPM{Path: "/dev/tpmrm0"},
		Console:          Console{Baud: 115200},
		Data:             Data{Filesystem: "ext4", Mount: "/data"},
		Network:          Network{Interface: "eth0", DHCP: true},
		ProvisioningPort: DefaultProvisioningPort,
		Pairing:          Pairing{SessionLifetime: Duration(DefaultSessionLifetime), TokenRotation: Duration(DefaultTokenRotation)},
	}
}

// QEMUVirt is the qemu-virt board: QEMU's -M virt with virtio-gpu at
// 240×240, PL061 line 3 as the button (QMP system_powerdown pulses it),
// PL011 console, swtpm as tpm-tis-device, virtio-blk data disk and
// virtio-net.
func QEMUVirt() Profile {
	p := common("qemu-virt")
	p.Button.Line = Line{Chip: "9030000.pl061", Offset: 3}
	p.Button.ActiveLow = false
	p.Display = Display{Kind: Framebuffer, Width: 240, Height: 240, Framebuffer: "/dev/fb0"}
	p.Console.Device = "/dev/ttyAMA0"
	p.Data.Device = "/dev/vda"
	return p
}

// ZMMonitorRevB is the Z Monitor main board, revision B: a 240×240 ST7789
// IPS panel on SPI0, named GPIO lines, a discrete TPM, UART2 for service and
// the eMMC's third partition for data.
func ZMMonitorRevB() Profile {
	p := common("zm-monitor-rev-b")
	p.Button.Line = Line{Name: "PROV_BUTTON"}
	p.Button.ActiveLow = true
	p.Display = Display{
		Kind:    ST7789,
		Width:   240,
		Height:  240,
		SPI:     "/dev/spidev0.0",
		SPIHz:   40_000_000,
		SPIMode: 0,
		DC:      Line{Name: "LCD_DC"},
		RST:     Line{Name: "LCD_RST"},
		Invert:  true,
	}
	p.Console.Device = "/dev/ttyS2"
	p.Data.Device = "/dev/mmcblk0p3"
	return p
}

var builtin = map[string]func() Profile{
	"qemu-virt":        QEMUVirt,
	"zm-monitor-rev-b": ZMMonitorRevB,
}

// Names returns the built-in profiles' names, sorted.
func Names() []string {
	n := make([]string, 0, len(builtin))
	for k := range builtin {
		n = append(n, k)
	}
	sort.Strings(n)
	return n
}

// Lookup returns a fresh copy of the built-in profile called name.
func Lookup(name string) (Profile, error) {
	f, ok := builtin[name]
	if !ok {
		return Profile{}, fmt.Errorf("board: unknown profile %q (known: %s)", name, strings.Join(Names(), ", "))
	}
	return f(), nil
}
