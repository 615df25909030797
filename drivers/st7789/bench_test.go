package st7789

import (
	"image"
	"image/color"
	"testing"
	"time"

	"periph.io/x/conn/v3"
	"periph.io/x/conn/v3/physic"
	"periph.io/x/conn/v3/spi"
)

// countPort is a port whose connection discards writes and counts them, with
// spidev's default 4096-byte limit.
type countPort struct{ tx, bytes int }

func (p *countPort) String() string { return "count" }
func (p *countPort) Connect(physic.Frequency, spi.Mode, int) (spi.Conn, error) {
	return &countConn{p}, nil
}

type countConn struct{ p *countPort }

func (c *countConn) String() string                 { return "count" }
func (c *countConn) Duplex() conn.Duplex            { return conn.Half }
func (c *countConn) MaxTxSize() int                 { return 4096 }
func (c *countConn) TxPackets(p []spi.Packet) error { return nil }
func (c *countConn) Tx(w, r []byte) error {
	c.p.tx++
	c.p.bytes += len(w)
	return nil
}

func benchDraw(b *testing.B, r image.Rectangle) {
	p := &countPort{}
	o := DefaultOpts
	o.Sleep = func(time.Duration) {}
	d, err := New(p, &nopPin{}, nil, &o)
	if err != nil {
		b.Fatal(err)
	}
	img := image.NewRGBA(image.Rect(0, 0, 240, 240))
	for i := range img.Pix {
		img.Pix[i] = byte(i)
	}
	img.Set(0, 0, color.White)
	p.tx, p.bytes = 0, 0
	b.ReportAllocs()
	for b.Loop() {
		if err := d.Draw(r, img, r.Min); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(p.tx)/float64(b.N), "tx/op")
	b.ReportMetric(float64(p.bytes)/float64(b.N), "SPIbytes/op")
}

// BenchmarkFullFrame: RGBA 240×240 → RGB565 → a port that discards.
func BenchmarkFullFrame(b *testing.B) { benchDraw(b, image.Rect(0, 0, 240, 240)) }

// BenchmarkCountdownTick: the 120×30 region of a mm:ss countdown.
func BenchmarkCountdownTick(b *testing.B) { benchDraw(b, image.Rect(60, 200, 180, 230)) }
