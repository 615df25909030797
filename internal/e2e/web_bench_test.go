package e2e

import (
	"context"
	"crypto/x509"
	"fmt"
	"image"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/zmonitor/firmware/internal/central/store"
	"github.com/zmonitor/firmware/internal/central/webapp"
	"github.com/zmonitor/firmware/internal/tablet"
	"github.com/zmonitor/firmware/internal/testkit/browser"
	"github.com/zmonitor/firmware/internal/testkit/harness"
)

// BenchmarkQEMUWebPairing boots the image once and provisions it b.N
// times through the web app's batch page in headless Chromium, as a
// technician's tablet does: press → READY_TO_PAIR; the board's QMP
// screendump, as a hand-held camera sees it, written as the fake camera's
// Y4M; a new Chromium (its fake camera reads the file when it starts), a
// passkey registered from an enrollment link; then /batch, which reads the
// QR code in the page and provisions the device at once; PROVISIONED in
// the page; the device PROVISIONED; a console factory reset confirmed with
// the button brings it back. The time reported is measured in the page,
// by its own clock: from the frame that yielded the QR code (the decode's
// end) to the row showing PROVISIONED from the event stream. Everything
// before (screendump, Y4M, the browser, the passkey, the page and the
// decoder loading) and after is outside it, and outside the benchmark's
// timer.
func BenchmarkQEMUWebPairing(b *testing.B) {
	if _, err := browser.Chromium(); err != nil {
		b.Skip(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	k, initrd, c := benchImage(ctx, b)
	defer c.Close()
	d := benchBoard(ctx, b, k, initrd, c, "zmonitor.device_id=ZM-BENCH-03 zmonitor.serial=SN-BENCH-3")
	w := newWebStation(ctx, b, c, d)

	var runs, overheads []time.Duration
	last := ""
	b.StopTimer()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := d.PressFor(ctx, "READY_TO_PAIR"); err != nil {
			b.Fatalf("run %d: %v", i, err)
		}
		qr, shot, err := screenWithNewQR(ctx, d, last, time.Minute)
		if err != nil {
			b.Fatalf("run %d: %v", i, err)
		}
		last = string(qr)
		run, overhead, err := webPairingRun(ctx, b, w.st, w.techID, w.srv, shot)
		if err != nil {
			b.Fatalf("run %d: %v", i, d.Failure(err.Error()))
		}
		runs = append(runs, run)
		overheads = append(overheads, overhead)
		if err := d.WaitStateFor(ctx, "PROVISIONED", 30*time.Second); err != nil {
			b.Fatalf("run %d: %v", i, err)
		}
		if err := d.FactoryResetConfirmed(ctx); err != nil {
			b.Fatalf("run %d: %v", i, err)
		}
	}
	sorted := append([]time.Duration(nil), runs...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	b.ReportMetric(median(runs).Seconds(), "s/decode-to-provisioned")
	b.ReportMetric(sorted[0].Seconds(), "s/decode-to-provisioned-min")
	b.ReportMetric(sorted[len(sorted)-1].Seconds(), "s/decode-to-provisioned-max")
	b.ReportMetric(median(overheads).Seconds(), "s/page-overhead")
	b.Logf("decode→PROVISIONED in the page over %d runs: %v", len(runs), runs)
	b.Logf("of which the page and the web app (not the pairing's own created→succeeded): %v", overheads)
}

// screenWithNewQR takes screendumps until one holds a QR code other than
// not, and returns its text and the screendump.
func screenWithNewQR(ctx context.Context, d *harness.Device, not string, limit time.Duration) ([]byte, image.Image, error) {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	for {
		img, err := d.Screenshot(ctx)
		if err == nil {
			if text, err := tablet.ScanImage(img); err == nil && string(text) != not {
				return text, img, nil
			}
		}
		select {
		case <-ctx.Done():
			return nil, nil, fmt.Errorf("no new pairing QR on the screen: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// webPairingRun is one provisioning through the batch page with a new
// Chromium whose fake camera shows shot; it returns the page's own time
// from the decode to PROVISIONED shown, and the part of it that is not the
// pairing's own time (its record's created → succeeded): the decode's
// post, the event stream, the page. Only the page's part runs under the
// benchmark's timer.
func webPairingRun(ctx context.Context, b *testing.B, st store.Store, techID string, srv *browser.Server, shot image.Image) (total, overhead time.Duration, err error) {
	y4m := filepath.Join(b.TempDir(), "camera.y4m")
	if err := browser.WriteHandheldVideo(shot, y4m); err != nil {
		return 0, 0, err
	}
	br, err := browser.Start(ctx, browser.Options{Camera: browser.CameraFromFile(y4m), Trust: []*x509.Certificate{srv.Cert}})
	if err != nil {
		return 0, 0, err
	}
	defer br.Close()
	tctx, tcancel := br.NewTab()
	defer tcancel()
	tb := browser.NewTablet(tctx, srv.Origin)
	link, err := webapp.CreateEnrollmentLink(ctx, st, techID, "cli", srv.Origin, time.Now(), nil)
	if err != nil {
		return 0, 0, err
	}
	if err := tb.Enroll(link.URL); err != nil {
		return 0, 0, err
	}
	b.StartTimer()
	if err := tb.Open("/batch"); err != nil {
		b.StopTimer()
		return 0, 0, err
	}
	err = tb.Poll(`!!document.querySelector('#batch li[data-final-at]')`)
	b.StopTimer()
	if err != nil {
		return 0, 0, fmt.Errorf("the batch page never showed an outcome (rows %q): %w", tb.Text("#batch"), err)
	}
	type times struct {
		State              string
		DecodedAt, FinalAt float64
	}
	got, err := chromedp.Run(tctx, chromedp.Evaluate[times](`(() => { const r = document.querySelector('#batch li[data-final-at]'); return {State: r.dataset.state, DecodedAt: +r.dataset.decodedAt, FinalAt: +r.dataset.finalAt}; })()`))
	if err != nil {
		return 0, 0, err
	}
	if got.State != "succeeded" {
		return 0, 0, fmt.Errorf("the page's row ended %q: %q", got.State, tb.Text("#batch"))
	}
	total = time.Duration((got.FinalAt - got.DecodedAt) * float64(time.Millisecond))
	// Where the time went, by the Central Station's records.
	ps, err := st.TechnicianPairings(ctx, techID, time.Time{}, 1)
	if err != nil || len(ps) != 1 {
		return 0, 0, fmt.Errorf("the pairing's record: %v (%d)", err, len(ps))
	}
	steps, err := st.PairingSteps(ctx, ps[0].ID)
	if err != nil || len(steps) < 2 {
		return 0, 0, fmt.Errorf("the pairing's steps: %v (%d)", err, len(steps))
	}
	var line []string
	for _, s := range steps {
		line = append(line, fmt.Sprintf("%s %s%s +%.3fs", s.State, s.DeviceState, s.Step, s.At.Sub(steps[0].At).Seconds()))
	}
	b.Logf("steps: %s; decoded %.3fs before created", strings.Join(line, ", "), (float64(steps[0].At.UnixMicro())/1e3-got.DecodedAt)/1e3)
	return total, total - steps[len(steps)-1].At.Sub(steps[0].At), nil
}
