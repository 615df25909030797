package console

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"image"
	"image/color"
	"io"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/makiuchi-d/gozxing"
	gzqr "github.com/makiuchi-d/gozxing/qrcode"

	"github.com/zmonitor/firmware/internal/base/clock"
	"github.com/zmonitor/firmware/internal/base/clock/clocktest"
	"github.com/zmonitor/firmware/internal/fw/conncheck"
	"github.com/zmonitor/firmware/internal/fw/screen"
	"github.com/zmonitor/firmware/internal/proto/failure"
	"github.com/zmonitor/firmware/internal/proto/state"
)

// fakeDevice is a hand-written Device.
type fakeDevice struct {
	status     Status
	qr         []byte
	audit      []string
	settings   []Setting
	keys       []PublicKey
	enrollment []byte
	provisions int
	reboots    int
	// press, when not nil, is the button: FactoryReset waits for it.
	press  chan struct{}
	resets int
	wiped  bool
}

func (d *fakeDevice) Status() Status { return d.status }
func (d *fakeDevice) QRText() []byte { return d.qr }
func (d *fakeDevice) AuditTail(n int) ([]string, error) {
	if n > len(d.audit) {
		n = len(d.audit)
	}
	return d.audit[len(d.audit)-n:], nil
}
func (d *fakeDevice) Config() ([]Setting, error)       { return d.settings, nil }
func (d *fakeDevice) PublicKeys() ([]PublicKey, error) { return d.keys, nil }
func (d *fakeDevice) Enrollment() ([]byte, error)      { return d.enrollment, nil }
func (d *fakeDevice) Net() ([]string, error)           { return []string{"eth0 up 10.0.2.15/24"}, nil }
func (d *fakeDevice) Version() string                  { return "zmonitor 1.2.3 (built 2026-11-01T00:00:00Z)" }
func (d *fakeDevice) Provision() error                 { d.provisions++; return nil }
func (d *fakeDevice) Reboot() error                    { d.reboots++; return nil }
func (d *fakeDevice) FactoryReset(ctx context.Context) error {
	d.resets++
	select {
	case <-d.press:
		d.wiped = true
		return nil
	case <-ctx.Done():
		return fmt.Errorf("wait for button: %w", ctx.Err())
	}
}

// Reprovision implements Reprovisioner like FactoryReset: it counts as a
// reset and "wipes" only after the press.
func (d *fakeDevice) Reprovision(ctx context.Context) error { return d.FactoryReset(ctx) }

// script is an io.ReadWriter whose reads return the chunks in turn (a nil
// chunk is a read of 0 bytes and no error, as a serial timeout may give),
// then io.EOF; writes are collected, at most maxWrite bytes at a time.
type script struct {
	chunks   [][]byte
	out      bytes.Buffer
	maxWrite int
}

func (s *script) Read(p []byte) (int, error) {
	if len(s.chunks) == 0 {
		return 0, io.EOF
	}
	c := s.chunks[0]
	n := copy(p, c)
	if n < len(c) {
		s.chunks[0] = c[n:]
	} else {
		s.chunks = s.chunks[1:]
	}
	return n, nil
}

func (s *script) Write(p []byte) (int, error) {
	if s.maxWrite > 0 && len(p) > s.maxWrite {
		p = p[:s.maxWrite]
	}
	return s.out.Write(p)
}

func newFake(t *testing.T) *fakeDevice {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), bytes.NewReader(bytes.Repeat([]byte{7}, 256)))
	if err != nil {
		t.Fatal(err)
	}
	spki, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return &fakeDevice{
		status:     Status{State: state.ReadyToPair, SessionLeft: 9*time.Minute + 30*time.Second, LastError: failure.ConnectionFailed},
		qr:         screen.SampleView(state.ReadyToPair).QRText,
		audit:      []string{`{"seq":1,"event":"BOOT"}`, `{"seq":2,"event":"BUTTON"}`, `{"seq":3,"event":"READY_TO_PAIR"}`},
		keys:       []PublicKey{{Name: "devid", SPKI: spki}},
		enrollment: []byte(`{"deviceId":"ZM-001","deviceSerial":"SN-2024-001234","devidSpki":"MFkw"}`),
		press:      make(chan struct{}),
	}
}

// run feeds input to a console on dev and returns what it printed.
func run(t *testing.T, dev Device, o *Options, chunks ...string) string {
	t.Helper()
	s := &script{}
	for _, c := range chunks {
		if c == "" {
			s.chunks = append(s.chunks, nil)
			continue
		}
		s.chunks = append(s.chunks, []byte(c))
	}
	c, err := New(s, dev, o)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Run(context.Background()); err != nil {
		t.Fatalf("Run: %v", err)
	}
	return s.out.String()
}

func TestCommands(t *testing.T) {
	dev := newFake(t)
	sum := sha256.Sum256(dev.keys[0].SPKI)
	for _, tc := range []struct {
		in   string
		want []string
		not  []string
	}{
		{"help\r", []string{"status", "factory-reset", "audit [n|export]", "qr [plain]"}, nil},
		{"status\r", []string{"state: READY_TO_PAIR", "pairing session: 9:30 left", "last error: CONNECTION_FAILED (Connection failed; Check network, retry)"}, nil},
		{"audit\r", []string{`"seq":1`, `"seq":3`}, nil},
		{"audit 1\r", []string{`"seq":3`}, []string{`"seq":2`}},
		{"audit 0\r", []string{"error: audit: n must be a number from 1 to 200"}, nil},
		{"audit 201\r", []string{"error: audit: n must be a number from 1 to 200"}, nil},
		{"audit x\r", []string{"error: audit: n must be"}, nil},
		{"keys\r", []string{"devid", "SHA256:" + hex.EncodeToString(sum[:])}, nil},
		{"enroll\r", []string{`"deviceId": "ZM-001"`}, nil},
		{"net\r", []string{"eth0 up 10.0.2.15/24"}, nil},
		{"version\r", []string{"zmonitor 1.2.3"}, nil},
		{"version extra\r", []string{"error: version takes no arguments"}, nil},
		{"xyz\r", []string{`error: unknown command "xyz"; type help`}, nil},
		{strings.Repeat("z", 100) + "\r", []string{`error: unknown command "` + strings.Repeat("z", 32) + `..."; type help`}, nil},
		{strings.Repeat("a", 300) + "\r", []string{"error: line too long (max 256)"}, nil},
		{"elp\x01h\r", []string{"list the commands"}, nil},                                        // Ctrl-A: to the start
		{"hlp\x1b[D\x1b[De\x05s\r", []string{"error: unknown command \"helps\"; type help"}, nil}, // Left, Ctrl-E
		{"\xde\xad\xbe\xef\r", []string{"error: unprintable input"}, nil},
		{"provision\r", []string{"provisioning from the console is disabled on this board; press the Enable Provisioning button"}, nil},
		{"config\r", []string{"no settings"}, nil},
		{"   \r", nil, []string{"error"}},
	} {
		out := run(t, dev, nil, tc.in)
		if !strings.HasPrefix(out, "Z Monitor diagnostics console. Type help.\r\nzm> ") || !strings.HasSuffix(out, "zm> ") {
			t.Errorf("%q: no banner or final prompt: %q", tc.in, out)
		}
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("%q: output lacks %q:\n%s", tc.in, w, out)
			}
		}
		for _, w := range tc.not {
			if strings.Contains(out, w) {
				t.Errorf("%q: output has %q:\n%s", tc.in, w, out)
			}
		}
		if strings.Contains(strings.ReplaceAll(out, "\r\n", ""), "\n") {
			t.Errorf("%q: bare LF in output", tc.in)
		}
		for _, l := range strings.Split(out, "\r\n") {
			if len(l) > 300 {
				t.Errorf("%q: output line of %d bytes", tc.in, len(l))
			}
		}
	}
	if dev.provisions != 0 {
		t.Error("provision ran although the board does not allow it")
	}
}

func TestProvisionAllowed(t *testing.T) {
	dev := newFake(t)
	out := run(t, dev, &Options{AllowProvision: true}, "provision\r")
	if dev.provisions != 1 || !strings.Contains(out, "pairing mode on") {
		t.Errorf("provisions %d, output %q", dev.provisions, out)
	}
}

func TestRebootAndEcho(t *testing.T) {
	dev := newFake(t)
	out := run(t, dev, nil, "reboot\r")
	if dev.reboots != 1 || !strings.Contains(out, "rebooting") {
		t.Errorf("reboots %d, output %q", dev.reboots, out)
	}
	// With echo on the typed characters come back; after "echo off" not.
	out = run(t, dev, nil, "version\r", "echo off\r", "secretword\r")
	if !strings.Contains(out, "zm> version\r\n") {
		t.Errorf("typed command not echoed: %q", out)
	}
	if strings.Contains(out, "secretword") && !strings.Contains(out, `unknown command "secretword"`) {
		t.Errorf("echo off still echoes: %q", out)
	}
	if strings.Contains(out, "zm> secretword") {
		t.Errorf("echo off still echoes: %q", out)
	}
	out = run(t, dev, &Options{NoEcho: true}, "version\r")
	if strings.Contains(out, "zm> version") || !strings.Contains(out, "zmonitor 1.2.3") {
		t.Errorf("NoEcho: %q", out)
	}
}

// TestEmptyReadsAndShortWrites: reads of nothing (serial timeouts) are
// ignored, a command split over reads works, short writes are completed.
func TestEmptyReadsAndShortWrites(t *testing.T) {
	dev := newFake(t)
	s := &script{chunks: [][]byte{nil, []byte("sta"), nil, []byte("tus\r"), []byte("\n")}, maxWrite: 3}
	c, err := New(s, dev, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	out := s.out.String()
	if strings.Count(out, "state: READY_TO_PAIR\r\n") != 1 || strings.Count(out, "zm> ") != 2 || !strings.Contains(out, "zm> status\r\n") {
		t.Errorf("output %q", out)
	}
}

// TestNeverPrintsSecrets: a device that (wrongly) hands the console key
// material gets it redacted everywhere.
func TestNeverPrintsSecrets(t *testing.T) {
	dev := newFake(t)
	k, _ := ecdsa.GenerateKey(elliptic.P256(), bytes.NewReader(bytes.Repeat([]byte{9}, 256)))
	der, _ := x509.MarshalECPrivateKey(k)
	pemKey := string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}))
	b64 := strings.Split(pemKey, "\n")[1]
	dev.settings = []Setting{
		{"serverUrl", "https://monitoring.hospital.com:8443"},
		{"deviceLabel", "ICU-MON-04"},
		{"clientKey", pemKey},
		{"note", "oops " + pemKey},
		{"clientPrivateKey", "c2VjcmV0"},
		{"hmacSecret", "hunter2"},
		{"blob", strings.Repeat("QUJD", 16)},
	}
	dev.audit = append(dev.audit, `{"seq":4,"reason":"`+strings.ReplaceAll(pemKey, "\n", `\n`)+`"}`, pemKey)
	dev.enrollment = []byte(`{"deviceId":"ZM-001","clientPrivateKey":"` + b64 + `"}`)
	out := run(t, dev, nil, "config\r", "audit\r", "enroll\r")
	for _, secret := range []string{"PRIVATE KEY", b64, b64[10:40], "c2VjcmV0", "hunter2", strings.Repeat("QUJD", 16)} {
		if strings.Contains(out, secret) {
			t.Errorf("output contains %q:\n%s", secret, out)
		}
	}
	for _, want := range []string{"serverUrl = https://monitoring.hospital.com:8443", "deviceLabel = ICU-MON-04", "clientKey = [redacted]", "hmacSecret = [redacted]"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// A private key handed over as a "public key" is refused, not printed.
	dev.keys = append(dev.keys, PublicKey{Name: "bogus", SPKI: der})
	if out := run(t, dev, nil, "keys\r"); !strings.Contains(out, "bogus        error: not a public key") {
		t.Errorf("keys: %q", out)
	}
}

// decodeHalfBlocks turns the qr command's text back into an image (4×8
// pixels per character cell) and decodes it.
func decodeHalfBlocks(t *testing.T, text string) string {
	t.Helper()
	text = strings.ReplaceAll(text, ansiOn, "")
	text = strings.ReplaceAll(text, ansiOff, "")
	var rows [][]rune
	for _, l := range strings.Split(text, "\r\n") {
		if strings.ContainsAny(l, "█▀▄") || (len(l) > 40 && strings.TrimSpace(l) == "") {
			rows = append(rows, []rune(l))
		}
	}
	if len(rows) == 0 {
		t.Fatal("no QR in the output")
	}
	const px = 4
	w := len(rows[0])
	img := image.NewGray(image.Rect(0, 0, w*px, len(rows)*2*px))
	for y, r := range rows {
		if len(r) != w {
			t.Fatalf("row %d is %d cells, want %d", y, len(r), w)
		}
		for x, c := range r {
			top, bottom := c == '█' || c == '▀', c == '█' || c == '▄'
			for dy := 0; dy < 2*px; dy++ {
				dark := top
				if dy >= px {
					dark = bottom
				}
				for dx := 0; dx < px; dx++ {
					g := color.Gray{Y: 0xff}
					if dark {
						g.Y = 0
					}
					img.SetGray(x*px+dx, y*2*px+dy, g)
				}
			}
		}
	}
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		t.Fatal(err)
	}
	res, err := gzqr.NewQRCodeReader().Decode(bmp, nil)
	if err != nil {
		t.Fatalf("decode the terminal QR: %v", err)
	}
	return res.GetText()
}

func TestQRCommand(t *testing.T) {
	dev := newFake(t)
	for _, in := range []string{"qr\r", "qr plain\r"} {
		out := run(t, dev, nil, in)
		if got := decodeHalfBlocks(t, out); got != string(dev.qr) {
			t.Errorf("%q decoded %q, want %q", in, got, dev.qr)
		}
		if (in == "qr\r") != strings.Contains(out, ansiOn) {
			t.Errorf("%q: ANSI colours wrong", in)
		}
	}
	dev.qr = nil
	dev.status.State = state.Unprovisioned
	if out := run(t, dev, nil, "qr\r"); !strings.Contains(out, "no pairing QR (state UNPROVISIONED)") {
		t.Errorf("qr without session: %q", out)
	}
}

// status shows the last connection test of a provisioned device: running,
// passed with its time, failed with why; nothing before there is one.
func TestStatusShowsTheLastConnectionCheck(t *testing.T) {
	dev := newFake(t)
	dev.status = Status{State: state.Provisioned}
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		check conncheck.Last
		want  string
	}{
		{conncheck.Last{}, ""},
		{conncheck.Last{Verdict: conncheck.Checking, Server: "monitor.test:443"}, "connection check: CHECKING monitor.test:443\r\n"},
		{conncheck.Last{Verdict: conncheck.Passed, Server: "monitor.test:443", At: at, ClockTrusted: true},
			"connection check: PASSED monitor.test:443 at 2026-12-01T10:00:00Z\r\n"},
		{conncheck.Last{Verdict: conncheck.Failed, Server: "monitor.test:443", At: at, Detail: "server refused the connection"},
			"connection check: FAILED monitor.test:443 at 2026-12-01T10:00:00Z (clock untrusted): server refused the connection\r\n"},
	} {
		dev.status.ConnCheck = tc.check
		out := run(t, dev, nil, "status\r")
		if tc.want == "" {
			if strings.Contains(out, "connection check") {
				t.Errorf("%s: %q", tc.check.Verdict, out)
			}
			continue
		}
		if !strings.Contains(out, tc.want) {
			t.Errorf("%s: status %q lacks %q", tc.check.Verdict, out, tc.want)
		}
	}
}

// pipeRW joins the reading end of one pipe and the writing end of another.
type pipeRW struct {
	io.Reader
	io.Writer
}

// factory-reset and reprovision wait for the button, each with its own
// words.
func TestFactoryReset(t *testing.T) {
	for _, cmd := range []struct{ line, done, cancelled string }{
		{"factory-reset", "factory reset done", "factory reset cancelled: no button press within 10 s"},
		{"reprovision", "pairing open; the current provisioning stays until the new one passes its connection test", "re-provisioning cancelled: no button press within 10 s"},
	} {
		for _, pressed := range []bool{true, false} {
			testConfirmed(t, cmd.line, cmd.done, cmd.cancelled, pressed)
		}
	}
}

func testConfirmed(t *testing.T, line, doneText, cancelled string, pressed bool) {
	{
		dev := newFake(t)
		clk := clocktest.New(time.Unix(0, 0))
		inR, inW := io.Pipe()
		outR, outW := io.Pipe()
		c, err := New(pipeRW{inR, outW}, dev, &Options{Clock: clk})
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- c.Run(context.Background()); outW.Close() }()
		lines := make(chan string, 100)
		go func() {
			buf := make([]byte, 4096)
			acc := ""
			for {
				n, err := outR.Read(buf)
				acc += string(buf[:n])
				for {
					i := strings.Index(acc, "\r\n")
					if i < 0 {
						break
					}
					lines <- acc[:i]
					acc = acc[i+2:]
				}
				if err != nil {
					close(lines)
					return
				}
			}
		}()
		expect := func(want string) {
			t.Helper()
			for l := range lines {
				if strings.Contains(l, want) {
					return
				}
			}
			t.Fatalf("output ended before %q", want)
		}
		if _, err := inW.Write([]byte(line + "\r")); err != nil {
			t.Fatal(err)
		}
		expect("press the Enable Provisioning button within 10 s to confirm")
		if pressed {
			dev.press <- struct{}{}
			expect(doneText)
		} else {
			if clk.Timers() != 1 { // armed before the prompt was written
				t.Fatalf("%d timers armed", clk.Timers())
			}
			clk.Advance(10 * time.Second)
			expect(cancelled)
		}
		inW.Close()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if dev.wiped != pressed || dev.resets != 1 {
			t.Errorf("pressed %v: wiped %v, resets %d", pressed, dev.wiped, dev.resets)
		}
	}
}

func TestOptionsAndErrors(t *testing.T) {
	dev := newFake(t)
	if _, err := New(&script{}, dev, &Options{MaxLine: 8}); err == nil {
		t.Error("MaxLine 8 accepted")
	}
	if _, err := New(nil, dev, nil); err == nil {
		t.Error("nil port accepted")
	}
	o := &Options{MaxLine: 20}
	if out := run(t, dev, o, strings.Repeat("a", 21)+"\r"); !strings.Contains(out, "error: line too long (max 20)") {
		t.Errorf("MaxLine 20: %q", out)
	}
	if o.Prompt != "" {
		t.Error("New wrote to the caller's Options")
	}
	// A read error other than a timeout ends Run with it.
	c, _ := New(errRW{}, dev, nil)
	if err := c.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "console: read: boom") {
		t.Errorf("read error: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	c, _ = New(&script{chunks: [][]byte{[]byte("help\r")}}, dev, nil)
	if err := c.Run(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}

type errRW struct{}

func (errRW) Read([]byte) (int, error)    { return 0, errors.New("boom") }
func (errRW) Write(p []byte) (int, error) { return len(p), nil }

// negRW behaves like goburrow/serial on a non-blocking fd: the first read
// and the first write fail with n = -1 and EAGAIN.
type negRW struct {
	script
	readFailed, writeFailed bool
}

func (r *negRW) Read(p []byte) (int, error) {
	if !r.readFailed {
		r.readFailed = true
		return -1, syscall.EAGAIN
	}
	return r.script.Read(p)
}

func (r *negRW) Write(p []byte) (int, error) {
	if !r.writeFailed {
		r.writeFailed = true
		return -1, syscall.EAGAIN
	}
	return r.script.Write(p)
}

func TestNegativeCounts(t *testing.T) {
	rw := &negRW{script: script{chunks: [][]byte{[]byte("version\r")}}}
	c, err := New(rw, newFake(t), &Options{Clock: instantClock{}})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if out := rw.out.String(); !strings.HasPrefix(out, "Z Monitor") || !strings.Contains(out, "zmonitor 1.2.3") {
		t.Errorf("output %q", out)
	}
}

// instantClock's timers fire at once.
type instantClock struct{}

func (instantClock) Now() time.Time { return time.Unix(0, 0) }
func (instantClock) NewTimer(time.Duration) clock.Timer {
	c := make(chan time.Time, 1)
	c <- time.Unix(0, 0)
	return instantTimer(c)
}

type instantTimer chan time.Time

func (t instantTimer) C() <-chan time.Time { return t }
func (instantTimer) Stop() bool            { return false }

// FuzzConsole types random bytes at a console: no panic, no error, no
// hang, and the output stays proportionate: each byte typed costs at most a
// redraw of the line (x/term rewrites the rest of the line after a
// character inserted in the middle) and each Enter one command's answer.
func FuzzConsole(f *testing.F) {
	for _, s := range []string{"help\r", "audit 5\r\n", "qr\r", "\xff\x00\x1b[A\r", "config\nkeys\renroll\r\n", strings.Repeat("x", 300) + "\r",
		"sta\t\r\x0c\x1b[A\x1b[A\r", "000000000000\x01000000000000000000000000000000000", "e\t\t\x15\x17\x03ver\x1b[200~sion\r"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		dev := newFake(t)
		s := &script{chunks: [][]byte{in}}
		// The factory reset's wait for the button ends at once.
		c, err := New(s, dev, &Options{Clock: instantClock{}})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		enters := bytes.Count(in, []byte("\r")) + bytes.Count(in, []byte("\n"))
		if limit := 100 + len(in)*(DefaultOpts.MaxLine+128) + enters*8192; s.out.Len() > limit {
			t.Fatalf("%d bytes of output for %d typed (limit %d)", s.out.Len(), len(in), limit)
		}
	})
}
