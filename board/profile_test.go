package board

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zmonitor/firmware/drivers/st7789"
	"periph.io/x/conn/v3/physic"
	"periph.io/x/conn/v3/spi"
)

func TestBuiltinProfilesAreValid(t *testing.T) {
	if got := Names(); !slices.Equal(got, []string{"qemu-virt", "zm-monitor-rev-b"}) {
		t.Fatalf("Names() = %v", got)
	}
	for _, n := range Names() {
		p, err := Lookup(n)
		if err != nil {
			t.Fatal(err)
		}
		if p.Name != n {
			t.Errorf("Lookup(%q).Name = %q", n, p.Name)
		}
		if err := p.Validate(); err != nil {
			t.Errorf("%s: %v", n, err)
		}
		if p.ConsoleMayProvision {
			t.Errorf("%s: console may provision by default", n)
		}
		if p.ProvisioningPort != 8444 || p.Pairing.SessionLifetime.D() != 10*time.Minute || p.Pairing.TokenRotation.D() != 30*time.Second {
			t.Errorf("%s: defaults %d %s %s", n, p.ProvisioningPort, p.Pairing.SessionLifetime, p.Pairing.TokenRotation)
		}
	}
	if _, err := Lookup("nope"); err == nil || !strings.Contains(err.Error(), "qemu-virt") {
		t.Errorf("Lookup(nope) = %v", err)
	}
}

func TestQEMUVirtWiring(t *testing.T) {
	p := QEMUVirt()
	if p.Button.Line != (Line{Chip: "9030000.pl061", Offset: 3}) || p.Button.ActiveLow {
		t.Errorf("button %+v: want PL061 line 3 active high", p.Button)
	}
	if p.Display.Kind != Framebuffer || p.Display.Framebuffer != "/dev/fb0" || p.Display.Width != 240 || p.Display.Height != 240 || p.Display.TTY != "" {
		t.Errorf("display %+v", p.Display)
	}
	if p.Console != (Console{"/dev/ttyAMA0", 115200}) || p.TPM.Path != "/dev/tpmrm0" || p.Data != (Data{"/dev/vda", "ext4", "/data"}) || p.Network != (Network{"eth0", true}) {
		t.Errorf("profile %+v", p)
	}
}

func TestLookupReturnsCopies(t *testing.T) {
	a, _ := Lookup("qemu-virt")
	a.Console.Device = "/dev/hacked"
	b, _ := Lookup("qemu-virt")
	if b.Console.Device != "/dev/ttyAMA0" {
		t.Error("Lookup shares state between calls")
	}
}

func TestJSONRoundTrip(t *testing.T) {
	for _, n := range Names() {
		p, _ := Lookup(n)
		b, err := p.JSON()
		if err != nil {
			t.Fatal(err)
		}
		q, err := Parse(b)
		if err != nil {
			t.Fatalf("%s: Parse(JSON()) = %v\n%s", n, err, b)
		}
		if q != p {
			t.Errorf("%s: round trip changed the profile:\n%+v\n%+v", n, p, q)
		}
	}
	b, _ := QEMUVirt().JSON()
	for _, want := range []string{`"kind": "framebuffer"`, `"debounce": "30ms"`, `"sessionLifetime": "10m0s"`} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("JSON lacks %s:\n%s", want, b)
		}
	}
}

func TestParseOverridesBase(t *testing.T) {
	p, err := Parse([]byte(`{"base": "qemu-virt", "name": "qemu-virt-test",
		"pairing": {"sessionLifetime": "20s", "tokenRotation": "5s"},
		"consoleMayProvision": true, "display": {"width": 320}}`))
	if err != nil {
		t.Fatal(err)
	}
	if p.Name != "qemu-virt-test" || !p.ConsoleMayProvision || p.Pairing.SessionLifetime.D() != 20*time.Second || p.Pairing.TokenRotation.D() != 5*time.Second {
		t.Errorf("overrides not applied: %+v", p)
	}
	if p.Display.Width != 320 || p.Display.Height != 240 || p.Display.Framebuffer != "/dev/fb0" {
		t.Errorf("nested override replaced the object: %+v", p.Display)
	}
}

func TestParseErrors(t *testing.T) {
	cases := map[string]string{
		"not json":      `{`,
		"unknown field": `{"base": "qemu-virt", "buton": {}}`,
		"unknown base":  `{"base": "pi"}`,
		"trailing":      `{"base": "qemu-virt"} {}`,
		"bad duration":  `{"base": "qemu-virt", "button": {"debounce": "fast"}}`,
		"bad kind":      `{"base": "qemu-virt", "display": {"kind": "lcd"}}`,
		"number kind":   `{"base": "qemu-virt", "display": {"kind": 2}}`,
		"empty":         `{}`,
		"null":          `null`,
		"array":         `[]`,
		"too big":       `{"base": "qemu-virt", "name": "` + strings.Repeat("a", MaxFileSize) + `"}`,
	}
	for name, in := range cases {
		if _, err := Parse([]byte(in)); err == nil {
			t.Errorf("%s: Parse succeeded", name)
		} else if !strings.HasPrefix(err.Error(), "board: ") {
			t.Errorf("%s: error %q lacks the prefix", name, err)
		}
	}
}

func TestValidateNamesTheField(t *testing.T) {
	cases := []struct {
		field  string
		mutate func(p *Profile)
	}{
		{"name", func(p *Profile) { p.Name = "Qemu Virt" }},
		{"button.line", func(p *Profile) { p.Button.Line = Line{} }},
		{"button.line", func(p *Profile) { p.Button.Line = Line{Name: "X", Offset: 2} }},
		{"button.line.offset", func(p *Profile) { p.Button.Line.Offset = -1 }},
		{"button.line.chip", func(p *Profile) { p.Button.Line.Chip = "/etc/passwd" }},
		{"button.debounce", func(p *Profile) { p.Button.Debounce = 0 }},
		{"button.longPress", func(p *Profile) { p.Button.LongPress = p.Button.Debounce }},
		{"display.kind", func(p *Profile) { p.Display.Kind = 0 }},
		{"display", func(p *Profile) { p.Display.Width = 0 }},
		{"display.framebuffer", func(p *Profile) { p.Display.Framebuffer = "fb0" }},
		{"display.tty", func(p *Profile) { p.Display.TTY = "/dev/../tty0" }},
		{"display", func(p *Profile) { p.Display.SPI = "/dev/spidev0.0" }},
		{"tpm.path", func(p *Profile) { p.TPM.Path = "" }},
		{"console.device", func(p *Profile) { p.Console.Device = "/tmp/tty" }},
		{"console.baud", func(p *Profile) { p.Console.Baud = 115201 }},
		{"data.device", func(p *Profile) { p.Data.Device = "vda" }},
		{"data.filesystem", func(p *Profile) { p.Data.Filesystem = "ntfs" }},
		{"data.mount", func(p *Profile) { p.Data.Mount = "/" }},
		{"network.interface", func(p *Profile) { p.Network.Interface = "a-very-long-interface-name" }},
		{"provisioningPort", func(p *Profile) { p.ProvisioningPort = 70000 }},
		{"pairing.sessionLifetime", func(p *Profile) { p.Pairing.SessionLifetime = Duration(2 * time.Hour) }},
		{"pairing.tokenRotation", func(p *Profile) { p.Pairing.TokenRotation = Duration(11 * time.Minute) }},
	}
	for _, c := range cases {
		p := QEMUVirt()
		c.mutate(&p)
		err := p.Validate()
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != c.field || !errors.Is(err, ErrInvalid) {
			t.Errorf("want a %s error, got %v", c.field, err)
		}
	}
	spiCases := []struct {
		field  string
		mutate func(p *Profile)
	}{
		{"display.spi", func(p *Profile) { p.Display.SPI = "" }},
		{"display.spiHz", func(p *Profile) { p.Display.SPIHz = 1_000_000_000 }},
		{"display.spiMode", func(p *Profile) { p.Display.SPIMode = 4 }},
		{"display.dc", func(p *Profile) { p.Display.DC = Line{} }},
		{"display.rotation", func(p *Profile) { p.Display.Rotation = 45 }},
		{"display", func(p *Profile) { p.Display.Width = 480 }},
		{"display", func(p *Profile) { p.Display.Framebuffer = "/dev/fb0" }},
	}
	for _, c := range spiCases {
		p := ZMMonitorRevB()
		c.mutate(&p)
		var fe *FieldError
		if err := p.Validate(); !errors.As(err, &fe) || fe.Field != c.field {
			t.Errorf("want a %s error, got %v", c.field, err)
		}
	}
}

func TestPanelOpts(t *testing.T) {
	d := ZMMonitorRevB().Display
	d.Rotation, d.YOffset, d.BGR = 180, 80, true
	o := panelOpts(d)
	if o.Controller != st7789.ST7789 || o.W != 240 || o.H != 240 || o.Rotation != st7789.Rotate180 || o.YOffset != 80 ||
		!o.BGR || !o.Invert || o.Freq != 40*physic.MegaHertz || o.Mode != spi.Mode0 {
		t.Errorf("panelOpts = %+v", o)
	}
	if err := o.Validate(); err != nil {
		t.Error(err)
	}
	d.Kind = ILI9341
	if panelOpts(d).Controller != st7789.ILI9341 {
		t.Error("ILI9341 not selected")
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "board.json")
	b, _ := ZMMonitorRevB().JSON()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := Load(path)
	if err != nil || p != ZMMonitorRevB() {
		t.Fatalf("Load = %+v, %v", p, err)
	}
	if _, err := Load(filepath.Join(dir, "missing.json")); err == nil {
		t.Error("Load of a missing file succeeded")
	}
}

func FuzzParse(f *testing.F) {
	for _, n := range Names() {
		p, _ := Lookup(n)
		b, _ := p.JSON()
		f.Add(b)
	}
	f.Add([]byte(`{"base": "qemu-virt", "pairing": {"sessionLifetime": "20s", "tokenRotation": "5s"}}`))
	f.Add([]byte(`{"base": "zm-monitor-rev-b", "display": {"kind": "ili9341", "rotation": 90, "width": 320}}`))
	f.Add([]byte(`{"base": "qemu-virt", "button": {"debounce": "-1s"}}`))
	f.Add([]byte(`{"base": null}`))
	f.Add([]byte(`{"base": "qemu-virt"}garbage`))
	f.Add([]byte("\xff\xfe"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := Parse(b)
		if err != nil {
			return
		}
		if err := p.Validate(); err != nil {
			t.Fatalf("Parse accepted an invalid profile: %v", err)
		}
		out, err := p.JSON()
		if err != nil {
			t.Fatal(err)
		}
		q, err := Parse(out)
		if err != nil || q != p {
			t.Fatalf("round trip: %v\n%+v\n%+v", err, p, q)
		}
	})
}
