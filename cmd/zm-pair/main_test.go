package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zmonitor/firmware/internal/central/job"
	"github.com/zmonitor/firmware/internal/fw/screen"
	"github.com/zmonitor/firmware/internal/proto/failure"
	"github.com/zmonitor/firmware/internal/proto/pairing"
	"github.com/zmonitor/firmware/internal/proto/state"
	"github.com/zmonitor/firmware/internal/tablet/tablettest"
)

// fixture is a Central Station, its CA and a token on disk, and a tablet.
type fixture struct {
	t       *testing.T
	c       *tablettest.Central
	dir     string
	caFile  string
	tokFile string
}

func newFixture(t *testing.T, prov *tablettest.Script) *fixture {
	t.Helper()
	c, err := tablettest.NewCentral(t.TempDir(), prov)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Close()
		if err := c.Err(); err != nil {
			t.Error(err)
		}
	})
	dir := t.TempDir()
	f := &fixture{t: t, c: c, dir: dir, caFile: filepath.Join(dir, "central-ca.pem"), tokFile: filepath.Join(dir, "tech.token")}
	if err := os.WriteFile(f.caFile, c.CAPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.tokFile, []byte(c.Token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// run runs zm-pair with the fixture's clock, environment and stdin.
func (f *fixture) run(vars map[string]string, stdin string, args ...string) (int, string, string) {
	f.t.Helper()
	var out, errb bytes.Buffer
	e := env{getenv: func(k string) string { return vars[k] }, stdin: strings.NewReader(stdin), stdout: &out, stderr: &errb}
	if f.c != nil {
		e.clock = f.c.Clock
	}
	code := e.run(context.Background(), args)
	return code, out.String(), errb.String()
}

func (f *fixture) flags() []string {
	return []string{"--central", f.c.URL(), "--ca", f.caFile, "--token-file", f.tokFile}
}

// qrPNG writes the READY_TO_PAIR screen of a session as the device would
// show it, and returns its path.
func (f *fixture) qrPNG(s *pairing.Session) string {
	f.t.Helper()
	v := screen.SampleView(state.ReadyToPair)
	q := s.QR()
	v.DeviceID, v.DeviceSerial, v.IPAddress = q.DeviceID, q.DeviceSerial, q.IPAddress
	v.QRText, v.PairingCode = q.Marshal(), q.PairingCode
	var buf bytes.Buffer
	if err := screen.RenderPNG(v, 320, 240, &buf); err != nil {
		f.t.Fatal(err)
	}
	p := filepath.Join(f.dir, "screen.png")
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		f.t.Fatal(err)
	}
	return p
}

func (f *fixture) session(id string) *pairing.Session {
	f.t.Helper()
	d, err := f.c.Enroll(id)
	if err != nil {
		f.t.Fatal(err)
	}
	s, err := d.Session()
	if err != nil {
		f.t.Fatal(err)
	}
	return s
}

func TestScanProvisioned(t *testing.T) {
	f := newFixture(t, tablettest.NewScript(job.Outcome{State: "PROVISIONED"}, nil,
		job.Progress{Step: "hello"}, job.Progress{State: "PAIRING_RECEIVED"}, job.Progress{State: "APPLYING_CONFIG"}, job.Progress{State: "TESTING_CONNECTION"}))
	s := f.session("ZM-001")
	img := f.qrPNG(s)
	code, out, errs := f.run(nil, "", append(append([]string{"scan"}, f.flags()...), "--label", "ICU-MON-04", img)...)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	want := `Scanned device ZM-001 (serial SN-ZM-001, firmware 1.2.3) at 192.0.2.10, QR valid until `
	if !strings.HasPrefix(out, want) {
		t.Errorf("output starts %q", out)
	}
	for _, line := range []string{
		"   0.00s  queued\n",
		"   0.25s  hello\n",
		"   0.50s  PAIRING_RECEIVED\n",
		"   0.75s  APPLYING_CONFIG\n",
		"   1.00s  TESTING_CONNECTION\n",
		"   1.25s  PROVISIONED\n",
		"PROVISIONED: ZM-001 is ready (label ICU-MON-04) after 1.2s\n",
	} {
		if !strings.Contains(out, line) {
			t.Errorf("output lacks %q:\n%s", line, out)
		}
	}
	q := s.QR()
	for _, secret := range []string{q.PairingCode, q.PairingToken, f.c.Token} {
		if strings.Contains(out+errs, secret) {
			t.Errorf("output shows a secret %q", secret)
		}
	}
}

func TestScanDeviceFailed(t *testing.T) {
	f := newFixture(t, tablettest.NewScript(job.Outcome{State: "PROVISIONING_FAILED", Code: failure.PairingCodeMismatch, Message: "pairing code does not match"}, nil,
		job.Progress{Step: "push"}, job.Progress{State: "PAIRING_RECEIVED"}, job.Progress{State: "PROVISIONING_FAILED"}))
	img := f.qrPNG(f.session("ZM-001"))
	code, out, errs := f.run(nil, "", append(append([]string{"scan"}, f.flags()...), img)...)
	if code != 1 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	if !strings.Contains(out, "   0.75s  PROVISIONING_FAILED\n") ||
		!strings.Contains(out, "PROVISIONING FAILED: Pairing code mismatch. What to do: Re-scan QR code.\n  Details (PAIRING_CODE_MISMATCH): pairing code does not match\n") {
		t.Errorf("output:\n%s", out)
	}
}

func TestScanRefused(t *testing.T) {
	f := newFixture(t, nil)
	s := f.session("ZM-001")
	img := f.qrPNG(s)
	if code, out, errs := f.run(nil, "", append(append([]string{"scan"}, f.flags()...), img)...); code != 0 {
		t.Fatalf("first scan: exit %d\n%s%s", code, out, errs)
	}
	code, out, errs := f.run(nil, "", append(append([]string{"scan"}, f.flags()...), img)...)
	if code != 1 || !strings.Contains(out, "REFUSED BY THE CENTRAL STATION: QR code already used. What to do: Re-scan QR code.\n") {
		t.Errorf("replay: exit %d\n%s%s", code, out, errs)
	}
	// Token from the environment, wrong.
	flags := []string{"scan", "--central", f.c.URL(), "--ca", f.caFile, img}
	code, out, errs = f.run(map[string]string{tokenEnv: "t-00000000.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}, "", flags...)
	if code != 1 || !strings.Contains(out, "Tablet not authorized. What to do: Ask IT for a technician token.") {
		t.Errorf("bad token: exit %d\n%s%s", code, out, errs)
	}
}

func TestCode(t *testing.T) {
	f := newFixture(t, nil)
	s := f.session("ZM-001")
	good := s.Code().Display()
	base := append([]string{"code"}, f.flags()...)
	base = append(base, "--device", "ZM-001", "--address", "127.0.0.1:18444")

	// A typo: explained, exit 2, nothing sent.
	code, out, errs := f.run(nil, "", append(base, "--code", good[:10]+otherLetter(good[10]))...)
	if code != 2 || !strings.Contains(errs, "NOT SENT: Pairing code mistyped. What to do: Check the code on the monitor and type it again.") ||
		!strings.Contains(errs, "last letter does not match") {
		t.Errorf("typo: exit %d\n%s%s", code, out, errs)
	}
	if n := f.c.Requests(); n != 0 {
		t.Errorf("a typo sent %d requests", n)
	}
	// The code on standard input, lower case with spaces. No --label: the
	// inventory's label, which the Central Station reports it pushed, is
	// shown.
	if err := f.c.Store.SetDeviceLabel(context.Background(), "ZM-001", "ICU-MON-04"); err != nil {
		t.Fatal(err)
	}
	code, out, errs = f.run(nil, strings.ToLower(strings.ReplaceAll(good, "-", " "))+"\n", base...)
	if code != 0 || !strings.Contains(out, "PROVISIONED: ZM-001 is ready (label ICU-MON-04) after") {
		t.Errorf("stdin code: exit %d\n%s%s", code, out, errs)
	}
	if jobs := f.c.Prov.Jobs(); len(jobs) != 1 || jobs[0].PairingCode != good {
		t.Errorf("jobs %+v", jobs)
	}
	if strings.Contains(out+errs, good) {
		t.Error("output shows the pairing code")
	}
}

func otherLetter(b byte) string {
	if b == 'A' {
		return "B"
	}
	return "A"
}

func TestUsage(t *testing.T) {
	f := &fixture{t: t}
	img := filepath.Join(t.TempDir(), "x.png")
	os.WriteFile(img, []byte("not a picture"), 0o644)
	for name, args := range map[string][]string{
		"none":          nil,
		"unknown":       {"frobnicate"},
		"scan no image": {"scan", "--central", "https://h", "--ca", "x"},
		"scan no ca":    {"scan", "--central", "https://h", "i.png"},
		"code no dev":   {"code", "--central", "https://h", "--ca", "x", "--address", "1.2.3.4", "--code", "ABC-123-ABC"},
		"bad flag":      {"scan", "--nope"},
		"not a picture": {"decode", img},
		"missing file":  {"decode", "/nonexistent.png"},
	} {
		if code, out, errs := f.run(nil, "", args...); code != 2 {
			t.Errorf("%s: exit %d\n%s%s", name, code, out, errs)
		}
	}
	// No token anywhere.
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	fx := newFixture(t, nil)
	os.WriteFile(caFile, fx.c.CAPEM(), 0o644)
	code, _, errs := f.run(nil, "", "scan", "--central", "https://h", "--ca", caFile, img)
	if code != 2 || !strings.Contains(errs, tokenEnv) {
		t.Errorf("no token: exit %d %s", code, errs)
	}
	if code, out, _ := f.run(nil, "", "help"); code != 0 || !strings.Contains(out, "usage:") {
		t.Errorf("help: %d", code)
	}
}

func TestDecode(t *testing.T) {
	f := newFixture(t, nil)
	s := f.session("ZM-001")
	code, out, errs := f.run(nil, "", "decode", f.qrPNG(s))
	if code != 0 || !strings.HasPrefix(out, "Z Monitor pairing QR: device ZM-001 ") {
		t.Errorf("decode: exit %d\n%s%s", code, out, errs)
	}
	if strings.Contains(out, s.Code().Display()) {
		t.Error("decode shows the pairing code")
	}
	// A screen without a QR.
	var buf bytes.Buffer
	screen.RenderPNG(screen.SampleView(state.Unprovisioned), 240, 240, &buf)
	p := filepath.Join(t.TempDir(), "u.png")
	os.WriteFile(p, buf.Bytes(), 0o644)
	code, _, errs = f.run(nil, "", "decode", p)
	if code != 2 || !strings.Contains(errs, "no QR code found") || !strings.Contains(errs, "Re-scan QR code") {
		t.Errorf("no QR: exit %d %s", code, errs)
	}
}

func TestServerDown(t *testing.T) {
	f := newFixture(t, nil)
	img := f.qrPNG(f.session("ZM-001"))
	f.c.HTTP.Close()
	code, out, errs := f.run(nil, "", append(append([]string{"scan"}, f.flags()...), img)...)
	if code != 1 || !strings.Contains(errs, "cannot talk to the Central Station") {
		t.Errorf("exit %d\n%s%s", code, out, errs)
	}
}

func TestTokenFileReadableByOthersWarns(t *testing.T) {
	f := newFixture(t, nil)
	if err := os.Chmod(f.tokFile, 0o644); err != nil {
		t.Fatal(err)
	}
	img := f.qrPNG(f.session("ZM-001"))
	code, _, errs := f.run(nil, "", append(append([]string{"scan"}, f.flags()...), img)...)
	if code != 0 || !strings.Contains(errs, "readable by others") || strings.Contains(errs, f.c.Token) {
		t.Errorf("exit %d %s", code, errs)
	}
}
