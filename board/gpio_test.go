package board

import (
	"errors"
	"testing"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"
)

type fakeChip struct {
	name, path, label string
	lines             []*gpiotest.Pin
}

func (c *fakeChip) Name() string   { return c.name }
func (c *fakeChip) Path() string   { return c.path }
func (c *fakeChip) Label() string  { return c.label }
func (c *fakeChip) LineCount() int { return len(c.lines) }
func (c *fakeChip) line(o int) gpio.PinIn {
	return c.lines[o]
}
func (c *fakeChip) named(n string) gpio.PinIn {
	for _, l := range c.lines {
		if l.N == n && n != "" {
			return l
		}
	}
	return nil
}

func TestFindLine(t *testing.T) {
	pl061 := &fakeChip{name: "gpiochip0", path: "/dev/gpiochip0", label: "9030000.pl061"}
	for i := 0; i < 8; i++ {
		pl061.lines = append(pl061.lines, &gpiotest.Pin{Num: i})
	}
	soc := &fakeChip{name: "gpiochip1", path: "/dev/gpiochip1", label: "pinctrl-soc",
		lines: []*gpiotest.Pin{{N: "LCD_DC", Num: 0}, {N: "PROV_BUTTON", Num: 1}}}
	cs := []lineChip{pl061, soc}
	ok := []struct {
		chip   string
		offset int
		name   string
		want   *gpiotest.Pin
	}{
		{"9030000.pl061", 3, "", pl061.lines[3]},
		{"gpiochip0", 3, "", pl061.lines[3]},
		{"/dev/gpiochip0", 3, "", pl061.lines[3]},
		{"", 0, "PROV_BUTTON", soc.lines[1]},
		{"pinctrl-soc", 0, "PROV_BUTTON", soc.lines[1]},
	}
	for _, c := range ok {
		got, err := findLine(cs, c.chip, c.offset, c.name)
		if err != nil || got != gpio.PinIn(c.want) {
			t.Errorf("findLine(%q, %d, %q) = %v, %v; want %v", c.chip, c.offset, c.name, got, err, c.want)
		}
	}
	bad := []struct {
		chip   string
		offset int
		name   string
		want   error
	}{
		{"gpiochip9", 3, "", ErrNoChip},
		{"gpiochip0", 8, "", ErrNoLine},
		{"gpiochip0", -1, "", ErrNoLine},
		{"", 3, "", ErrNoLine},
		{"", 0, "NOPE", ErrNoLine},
		{"gpiochip0", 0, "PROV_BUTTON", ErrNoLine},
	}
	for _, c := range bad {
		if _, err := findLine(cs, c.chip, c.offset, c.name); !errors.Is(err, c.want) {
			t.Errorf("findLine(%q, %d, %q) = %v; want %v", c.chip, c.offset, c.name, err, c.want)
		}
	}
}
