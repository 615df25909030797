package webapp

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/zmonitor/firmware/internal/central/store"
	"github.com/zmonitor/firmware/internal/proto/state"
	"github.com/zmonitor/firmware/internal/testkit/browser"
)

// recordShown installs, in the pairing page, a record of when each
// device state is shown: the epoch time (ms, sub-ms precision) at which
// progress.js set the page's data-device-state.
const recordShown = `(() => {
	window.__shown = [];
	const root = document.getElementById('pairing');
	new MutationObserver(() => window.__shown.push([root.dataset.deviceState, performance.timeOrigin + performance.now()]))
		.observe(root, {attributes: true, attributeFilter: ['data-device-state']});
	return true;
})()`

// BenchmarkProgressLatency measures how long a device's progress takes to
// show in the technician's page: from the moment the device reports a
// state (the job's progress callback: the store written, the hub, the
// server-sent event, EventSource, progress.js) to the page's DOM showing
// it. b.N state changes on one pairing; reports the median and p95 in ms.
// The two clocks are the same machine's wall clock (Go's time.Now, the
// page's performance.timeOrigin + now). Drives Chromium: make bench-web.
func BenchmarkProgressLatency(b *testing.B) {
	if testing.Short() {
		b.Skip("drives Chromium: make bench-web")
	}
	s := newSite(b, siteOpts{})
	tech, link := s.addPerson("Grace", store.RoleTechnician)
	d := s.enroll("ZM-001", "")
	tb := s.tablet(s.browser(browser.Options{Camera: browser.CameraAbsent()}))
	tb.enrollWith(link)
	steps := s.devs.stepped("ZM-001")
	acc, err := s.api.Pair(context.Background(), tech, tabletwireQR(d.session(b)))
	if err != nil {
		b.Fatal(err)
	}
	steps <- state.PairingReceived.String()
	tb.open("/pairings/" + acc.PairingID)
	tb.waitText("#status", "received")
	if _, err := chromedp.Run(tb.ctx, chromedp.Evaluate[bool](recordShown)); err != nil {
		b.Fatal(err)
	}
	alternate := []string{state.ApplyingConfig.String(), state.TestingConnection.String()}
	var lat []float64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		st := alternate[i%2]
		sent := float64(time.Now().UnixNano()) / 1e6
		steps <- st
		if err := tb.poll(fmt.Sprintf(`window.__shown.length > %d`, i)); err != nil {
			b.Fatalf("state %d (%s) never shown: %v", i, st, err)
		}
		shown, err := chromedp.Run(tb.ctx, chromedp.Evaluate[[]any](fmt.Sprintf(`window.__shown[%d]`, i)))
		if err != nil {
			b.Fatal(err)
		}
		if shown[0] != st {
			b.Fatalf("state %d: the page shows %v, want %s", i, shown[0], st)
		}
		lat = append(lat, shown[1].(float64)-sent)
	}
	b.StopTimer()
	close(steps)
	sort.Float64s(lat)
	b.ReportMetric(lat[len(lat)/2], "ms-median")
	b.ReportMetric(lat[(len(lat)*95)/100], "ms-p95")
	b.ReportMetric(lat[len(lat)-1], "ms-max")
}
