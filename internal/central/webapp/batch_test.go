package webapp

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/zmonitor/firmware/internal/central/store"
	"github.com/zmonitor/firmware/internal/testkit/browser"
)

// TestBatchOfThree: batch mode in the browser. The fake camera moves
// from monitor to monitor (three screens in turn); the page starts each
// device once, adds its row, and each row follows its own pairing live:
// with the second device held after PAIRING_RECEIVED, the first and
// third rows say PROVISIONED while the second still shows its device's
// step; released, it ends PROVISIONED too. Each device got exactly one
// job, with its own screen's token.
func TestBatchOfThree(t *testing.T) {
	s := newSite(t, siteOpts{})
	_, link := s.addPerson("Grace", store.RoleTechnician)
	var screens []shown
	for i, label := range []string{"ICU-1", "ICU-2", "ICU-3"} {
		d := s.enroll(fmt.Sprintf("ZM-00%d", i+1), label)
		screens = append(screens, shown{d, d.session(t)})
	}
	release := s.devs.hold("ZM-002")
	defer release()
	b := s.browser(browser.Options{Camera: cameraOnEach(t, 6, screens...)})
	tb := s.tablet(b)
	tb.enrollWith(link)
	tb.open("/batch")

	rowJS := func(id, expr string) string {
		return fmt.Sprintf(`(() => { const r = [...document.querySelectorAll('#batch li')].find(li => li.querySelector('h3').textContent === %q); return !!r && (%s); })()`, id, expr)
	}
	for _, id := range []string{"ZM-001", "ZM-003"} {
		if err := tb.poll(rowJS(id, `r.dataset.state === 'succeeded' && r.querySelector('.row-status').textContent === 'PROVISIONED'`)); err != nil {
			t.Fatalf("row %s never PROVISIONED (rows: %q): %v", id, tb.text("#batch"), err)
		}
	}
	// ZM-002 is held after PAIRING_RECEIVED: its row says so, live.
	if err := tb.poll(rowJS("ZM-002", `r.dataset.deviceState === 'PAIRING_RECEIVED' && r.dataset.state === 'running'`)); err != nil {
		t.Fatalf("row ZM-002 does not show PAIRING_RECEIVED while held (rows: %q): %v", tb.text("#batch"), err)
	}
	if got := tb.text("#batch"); !strings.Contains(got, "The monitor received the configuration…") || !strings.Contains(got, "Label ICU-2") {
		t.Errorf("rows while ZM-002 is held: %q", got)
	}
	release()
	if err := tb.poll(rowJS("ZM-002", `r.dataset.state === 'succeeded'`)); err != nil {
		t.Fatalf("row ZM-002 never PROVISIONED after release (rows: %q): %v", tb.text("#batch"), err)
	}
	if n := tb.text("#batch-count"); n != "3" {
		t.Errorf("devices scanned: %s, want 3 (each screen once, though the camera shows each again and again)", n)
	}
	// The page with its three rows: axe-core, touch targets, screenshots.
	checkPage(tb, "batch", os.Getenv(EnvScreenshots))
	s.api.Wait()
	jobs := s.devs.Jobs()
	got := map[string]string{}
	for _, j := range jobs {
		got[j.DeviceID] = j.Token
	}
	if len(jobs) != 3 {
		t.Errorf("%d jobs, want 3", len(jobs))
	}
	for _, sc := range screens {
		if got[sc.d.id] != sc.sess.QR().PairingToken {
			t.Errorf("%s: job token %q, want its screen's", sc.d.id, got[sc.d.id])
		}
	}
}
