package st7789

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"slices"
	"strings"
	"testing"
	"time"

	"periph.io/x/conn/v3/conntest"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"
	"periph.io/x/conn/v3/physic"
	"periph.io/x/conn/v3/spi"
	"periph.io/x/conn/v3/spi/spitest"
)

// rig wraps a port so that every transfer also records the DC level at
// that moment, and so the connection reports maxTx through conn.Limits.
type rig struct {
	spi.Port
	dc     *gpiotest.Pin
	maxTx  int // 0: no conn.Limits
	levels []gpio.Level
	sleeps []time.Duration
}

func (r *rig) Connect(f physic.Frequency, m spi.Mode, bits int) (spi.Conn, error) {
	c, err := r.Port.Connect(f, m, bits)
	if err != nil {
		return nil, err
	}
	if r.maxTx == 0 {
		return &dcConn{Conn: c, r: r}, nil
	}
	return &limitConn{dcConn{Conn: c, r: r}}, nil
}

type dcConn struct {
	spi.Conn
	r *rig
}

func (c *dcConn) Tx(w, rd []byte) error {
	c.r.levels = append(c.r.levels, c.r.dc.Read())
	return c.Conn.Tx(w, rd)
}

type limitConn struct{ dcConn }

func (c *limitConn) MaxTxSize() int { return c.r.maxTx }

func newRig(p spi.Port, maxTx int) *rig {
	return &rig{Port: p, dc: &gpiotest.Pin{N: "LCD_DC"}, maxTx: maxTx}
}

func (r *rig) opts(o Opts) *Opts {
	o.Sleep = func(d time.Duration) { r.sleeps = append(r.sleeps, d) }
	return &o
}

func cmds(ops ...[]byte) []conntest.IO {
	var io []conntest.IO
	for _, w := range ops {
		io = append(io, conntest.IO{W: w})
	}
	return io
}

// st7789Init is the ST7789 power-up for DefaultOpts, byte for byte, as in the
// datasheet's flow: software reset, sleep out, 16-bit colour, MADCTL,
// inversion on, normal mode, display on.
var st7789Init = [][]byte{
	{0x01}, {0x11}, {0x3A}, {0x55}, {0x36}, {0x00}, {0x21}, {0x13}, {0x29},
}

// st7789InitDC is the DC level of each transfer of st7789Init.
var st7789InitDC = []gpio.Level{false, false, false, true, false, true, false, false, false}

func TestNewInitSequenceByteForByte(t *testing.T) {
	pb := &spitest.Playback{Playback: conntest.Playback{Ops: cmds(st7789Init...), DontPanic: true}}
	r := newRig(pb, 0)
	rst := &gpiotest.Pin{N: "LCD_RST"}
	d, err := New(r, r.dc, rst, r.opts(DefaultOpts))
	if err != nil {
		t.Fatal(err)
	}
	if err := pb.Close(); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r.levels, st7789InitDC) {
		t.Errorf("DC levels = %v; want %v", r.levels, st7789InitDC)
	}
	if rst.Read() != gpio.High {
		t.Error("RST left low")
	}
	wantSleeps := []time.Duration{time.Millisecond, 20 * time.Microsecond, 120 * time.Millisecond, 150 * time.Millisecond, 120 * time.Millisecond, 10 * time.Millisecond, 10 * time.Millisecond, 20 * time.Millisecond}
	if !slices.Equal(r.sleeps, wantSleeps) {
		t.Errorf("sleeps = %v; want %v", r.sleeps, wantSleeps)
	}
	if d.maxTx != defaultMaxTx {
		t.Errorf("maxTx without conn.Limits = %d; want %d", d.maxTx, defaultMaxTx)
	}
	if s := d.String(); !strings.Contains(s, "ST7789") || !strings.Contains(s, "240×240") {
		t.Errorf("String() = %q", s)
	}
}

func TestNewILI9341Rotated(t *testing.T) {
	want := [][]byte{
		{0x01},
		{0xCF}, {0x00, 0xC1, 0x30},
		{0xED}, {0x64, 0x03, 0x12, 0x81},
		{0xE8}, {0x85, 0x00, 0x78},
		{0xCB}, {0x39, 0x2C, 0x00, 0x34, 0x02},
		{0xF7}, {0x20},
		{0xEA}, {0x00, 0x00},
		{0xC0}, {0x23},
		{0xC1}, {0x10},
		{0xC5}, {0x3E, 0x28},
		{0xC7}, {0x86},
		{0x36}, {0x40 | 0x20 | 0x08}, // rotated 90°: MX|MV, BGR
		{0x3A}, {0x55},
		{0xB1}, {0x00, 0x18},
		{0xB6}, {0x08, 0x82, 0x27},
		{0x26}, {0x01},
		{0x20}, // no inversion
		{0x11},
		{0x29},
	}
	pb := &spitest.Playback{Playback: conntest.Playback{Ops: cmds(want...), DontPanic: true}}
	r := newRig(pb, 0)
	o := Opts{Controller: ILI9341, W: 320, H: 240, Rotation: Rotate90, BGR: true, Freq: 20 * physic.MegaHertz}
	if _, err := New(r, r.dc, gpio.INVALID, r.opts(o)); err != nil {
		t.Fatal(err)
	}
	if err := pb.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestMADCTL(t *testing.T) {
	for rot, want := range map[Rotation]byte{Rotate0: 0x00, Rotate90: 0x60, Rotate180: 0xC0, Rotate270: 0xA0} {
		o := Opts{Rotation: rot}
		if got := o.madctl(); got != want {
			t.Errorf("%s: MADCTL = %#02x; want %#02x", rot, got, want)
		}
	}
}

func TestBadOptionsTouchNothing(t *testing.T) {
	bad := map[string]func(o *Opts){
		"zero width":      func(o *Opts) { o.W = 0 },
		"too tall":        func(o *Opts) { o.H = 321 },
		"offset overflow": func(o *Opts) { o.Rotation, o.XOffset = Rotate90, 81 },
		"negative offset": func(o *Opts) { o.YOffset = -1 },
		"rotation":        func(o *Opts) { o.Rotation = 4 },
		"controller":      func(o *Opts) { o.Controller = 9 },
		"no clock":        func(o *Opts) { o.Freq = 0 },
		"clock typo":      func(o *Opts) { o.Freq = 400 * physic.MegaHertz },
		"mode":            func(o *Opts) { o.Mode = spi.Mode0 | spi.HalfDuplex },
	}
	for name, mutate := range bad {
		rec := &spitest.Record{}
		dc := &gpiotest.Pin{N: "DC", L: gpio.High}
		rst := &gpiotest.Pin{N: "RST", L: gpio.High}
		o := DefaultOpts
		mutate(&o)
		if _, err := New(rec, dc, rst, &o); err == nil {
			t.Errorf("%s: New succeeded", name)
		}
		if rec.Initialized || len(rec.Ops) != 0 || dc.Read() != gpio.High || rst.Read() != gpio.High {
			t.Errorf("%s: bus or pins touched (connected %t, %d ops)", name, rec.Initialized, len(rec.Ops))
		}
	}
	// A rotated 240×240 module with its 80-row offset is valid.
	o := DefaultOpts
	o.Rotation, o.YOffset = Rotate180, 80
	if err := o.Validate(); err != nil {
		t.Error(err)
	}
	if _, err := New(&spitest.Record{}, gpio.INVALID, nil, nil); err == nil {
		t.Error("New without DC succeeded")
	}
}

func TestOptsCopied(t *testing.T) {
	o := DefaultOpts
	if _, err := New(&spitest.Record{}, &gpiotest.Pin{}, nil, &o); err != nil {
		t.Fatal(err)
	}
	if o.Sleep != nil {
		t.Error("caller's Opts written")
	}
}

// newRecorded returns a panel after init on a recording port, with the init
// operations and DC levels dropped.
func newRecorded(t *testing.T, maxTx int, o Opts) (*Dev, *spitest.Record, *rig) {
	t.Helper()
	rec := &spitest.Record{}
	r := newRig(rec, maxTx)
	d, err := New(r, r.dc, nil, r.opts(o))
	if err != nil {
		t.Fatal(err)
	}
	rec.Ops, r.levels = nil, nil
	return d, rec, r
}

func solid(w, h int, c color.Color) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.Set(x, y, c)
		}
	}
	return img
}

func TestFullFrameIsPanelBytesPlusCommands(t *testing.T) {
	for _, maxTx := range []int{4096, 64} {
		d, rec, r := newRecorded(t, maxTx, DefaultOpts)
		img := solid(240, 240, color.RGBA{0xff, 0x00, 0x00, 0xff})
		if err := d.Draw(d.Bounds(), img, image.Point{}); err != nil {
			t.Fatal(err)
		}
		const pixels = 240 * 240 * 2
		chunks := (pixels + maxTx - 1) / maxTx
		if got, want := len(rec.Ops), 5+chunks; got != want {
			t.Errorf("maxTx %d: %d transfers; want %d", maxTx, got, want)
		}
		total := 0
		for i, op := range rec.Ops {
			total += len(op.W)
			if len(op.W) > maxTx {
				t.Fatalf("maxTx %d: transfer %d is %d bytes", maxTx, i, len(op.W))
			}
		}
		if want := pixels + 11; total != want {
			t.Errorf("maxTx %d: %d bytes; want %d (pixels + 11 command bytes)", maxTx, total, want)
		}
		head := [][]byte{{0x2A}, {0, 0, 0, 239}, {0x2B}, {0, 0, 0, 239}, {0x2C}}
		for i, w := range head {
			if !bytes.Equal(rec.Ops[i].W, w) {
				t.Errorf("op %d = % x; want % x", i, rec.Ops[i].W, w)
			}
		}
		wantDC := []gpio.Level{false, true, false, true, false}
		if !slices.Equal(r.levels[:5], wantDC) {
			t.Errorf("command DC levels = %v; want %v", r.levels[:5], wantDC)
		}
		for i, l := range r.levels[5:] {
			if l != gpio.High {
				t.Fatalf("pixel transfer %d with DC low", i)
			}
		}
		var pix []byte
		for _, op := range rec.Ops[5:] {
			pix = append(pix, op.W...)
		}
		if !bytes.Equal(pix, bytes.Repeat([]byte{0xf8, 0x00}, 240*240)) {
			t.Errorf("maxTx %d: pixel bytes are not big-endian red", maxTx)
		}
	}
}

func TestPartialWindow(t *testing.T) {
	o := DefaultOpts
	o.Rotation, o.YOffset = Rotate180, 80
	d, rec, _ := newRecorded(t, 4096, o)
	src := solid(300, 300, color.Black)
	src.Set(50, 60, color.RGBA{0, 0, 0xff, 0xff}) // lands at (10,20)
	src.Set(52, 61, color.White)                  // lands at (12,21)
	r := image.Rect(10, 20, 130, 50)
	if err := d.Draw(r, src, image.Pt(50, 60)); err != nil {
		t.Fatal(err)
	}
	// Columns 10..129, rows 20+80..49+80.
	want := [][]byte{{0x2A}, {0, 10, 0, 129}, {0x2B}, {0, 100, 0, 129}, {0x2C}}
	for i, w := range want {
		if !bytes.Equal(rec.Ops[i].W, w) {
			t.Errorf("op %d = % x; want % x", i, rec.Ops[i].W, w)
		}
	}
	var pix []byte
	for _, op := range rec.Ops[5:] {
		pix = append(pix, op.W...)
	}
	if len(pix) != 120*30*2 {
		t.Fatalf("%d pixel bytes; want %d", len(pix), 120*30*2)
	}
	if pix[0] != 0x00 || pix[1] != 0x1f {
		t.Errorf("first pixel % x; want 00 1f", pix[:2])
	}
	if i := (1*120 + 2) * 2; pix[i] != 0xff || pix[i+1] != 0xff {
		t.Errorf("pixel (2,1) % x; want ff ff", pix[i:i+2])
	}
}

func TestDrawClips(t *testing.T) {
	d, rec, _ := newRecorded(t, 4096, DefaultOpts)
	// Off the panel: nothing is sent.
	if err := d.Draw(image.Rect(240, 0, 300, 10), solid(10, 10, color.White), image.Point{}); err != nil || len(rec.Ops) != 0 {
		t.Fatalf("off-panel draw: %v, %d ops", err, len(rec.Ops))
	}
	// A source smaller than the rectangle limits the window.
	if err := d.Draw(image.Rect(230, 230, 260, 260), solid(4, 3, color.White), image.Point{}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(rec.Ops[1].W, []byte{0, 230, 0, 233}) || !bytes.Equal(rec.Ops[3].W, []byte{0, 230, 0, 232}) {
		t.Errorf("window = % x / % x", rec.Ops[1].W, rec.Ops[3].W)
	}
	if n := len(rec.Ops[5].W); n != 4*3*2 {
		t.Errorf("%d pixel bytes; want 24", n)
	}
}

type failPin struct{ gpiotest.Pin }

func (p *failPin) Out(gpio.Level) error { return errors.New("line busy") }

func TestFailingDCPin(t *testing.T) {
	_, err := New(&spitest.Record{}, &failPin{}, nil, &Opts{W: 240, H: 240, Freq: physic.MegaHertz, Sleep: func(time.Duration) {}})
	if err == nil || !strings.Contains(err.Error(), "DC") || !strings.Contains(err.Error(), "line busy") {
		t.Errorf("New with failing DC = %v", err)
	}
	_, err = New(&spitest.Record{}, &gpiotest.Pin{}, &failPin{}, &Opts{W: 240, H: 240, Freq: physic.MegaHertz, Sleep: func(time.Duration) {}})
	if err == nil || !strings.Contains(err.Error(), "RST") {
		t.Errorf("New with failing RST = %v", err)
	}
}

func TestFailingSPIWrite(t *testing.T) {
	// The playback expects only the init sequence: the first write of a
	// draw fails, and so does Halt.
	pb := &spitest.Playback{Playback: conntest.Playback{Ops: cmds(st7789Init...), DontPanic: true}}
	r := newRig(pb, 0)
	d, err := New(r, r.dc, nil, r.opts(DefaultOpts))
	if err != nil {
		t.Fatal(err)
	}
	err = d.Draw(d.Bounds(), solid(240, 240, color.White), image.Point{})
	if err == nil || !strings.HasPrefix(err.Error(), "st7789: draw") {
		t.Errorf("Draw on failing bus = %v", err)
	}
	if err := d.Halt(); err == nil {
		t.Error("Halt on failing bus succeeded")
	}
	// A failure during init is reported as such.
	pb = &spitest.Playback{Playback: conntest.Playback{Ops: cmds(st7789Init[:3]...), DontPanic: true}}
	r = newRig(pb, 0)
	if _, err := New(r, r.dc, nil, r.opts(DefaultOpts)); err == nil || !strings.HasPrefix(err.Error(), "st7789: init: command 0x3a: write 1 bytes") {
		t.Errorf("New on failing bus = %v", err)
	}
}

func TestHalt(t *testing.T) {
	d, rec, r := newRecorded(t, 4096, DefaultOpts)
	if err := d.Halt(); err != nil {
		t.Fatal(err)
	}
	if len(rec.Ops) != 2 || rec.Ops[0].W[0] != 0x28 || rec.Ops[1].W[0] != 0x10 || r.levels[0] || r.levels[1] {
		t.Errorf("Halt sent %v with DC %v; want DISPOFF, SLPIN as commands", rec.Ops, r.levels)
	}
}

// nopPin is a DC pin that accepts every level.
type nopPin struct{ gpiotest.Pin }

func (p *nopPin) Out(gpio.Level) error { return nil }
