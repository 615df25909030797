package webapp

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/zmonitor/firmware/internal/central/store"
	"github.com/zmonitor/firmware/internal/testkit/browser"
)

// front is a load balancer in front of web app replicas: one TLS origin,
// each request sent to the replica route names (default the first). The
// replicas share nothing but the database.
type front struct {
	srv      *browser.Server
	mu       sync.Mutex
	replicas []http.HandlerFunc
	route    func(r *http.Request) int
	served   map[string][]int // path prefix → replicas that served it (for the test's checks)
}

func newFront(t testing.TB) *front {
	f := &front{served: map[string][]int{}}
	f.srv = browser.NewServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		i := 0
		if f.route != nil {
			i = f.route(r)
		}
		h := f.replicas[i]
		f.served[r.URL.Path] = append(f.served[r.URL.Path], i)
		f.mu.Unlock()
		h(w, r)
	}))
	return f
}

func (f *front) add(h http.HandlerFunc) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.replicas = append(f.replicas, h)
}

// routeBy sends each request to the replica route chooses.
func (f *front) routeBy(route func(r *http.Request) int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.route = route
}

// servedBy returns the replicas that served path (in order).
func (f *front) servedBy(path string) []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]int(nil), f.served[path]...)
}

// TestTwoReplicasOnePostgreSQL: two Central Station replicas (each its own
// store connection, tablet API, job runner and event hub) on one
// PostgreSQL database behind one origin, as behind a load balancer. A
// tablet registers its passkey on replica 0; signs out and signs in with
// the ceremony begun on replica 0 and finished on replica 1; its session
// goes on on replica 1; it provisions through replica 1 (the job runs
// there) while the page's progress stream is served by replica 0, which
// has no job and learns each step from the database: the page shows the
// held device's PAIRING_RECEIVED live, then PROVISIONED.
// Needs PostgreSQL (skipped without it, failed with ZM_TEST_PG_REQUIRED=1).
func TestTwoReplicasOnePostgreSQL(t *testing.T) {
	dsn := pg.NewDatabase(t)
	f := newFront(t)
	r0 := newSite(t, siteOpts{dsn: dsn, front: f})
	r1 := newSite(t, siteOpts{dsn: dsn, front: f})
	if r0.origin != r1.origin {
		t.Fatalf("replicas at %s and %s: want one origin", r0.origin, r1.origin)
	}
	_, link := r0.addPerson("Grace", store.RoleTechnician)
	d := r0.enroll("ZM-001", "ICU-MON-04")
	sess := d.session(t)
	release := r1.devs.hold("ZM-001")
	defer release()

	tb := r0.tablet(r0.browser(browser.Options{Camera: cameraOn(t, d, sess)}))
	f.routeBy(func(r *http.Request) int { return 0 })
	tb.open(strings.TrimPrefix(link.URL, r0.origin))
	tb.click("#enroll")
	tb.waitPath("/scan")
	tb.open("/pairings")
	tb.click(".signout button")
	tb.waitPath("/sign-in")

	// The sign-in ceremony begins on replica 0 and finishes on replica 1;
	// from then on every page comes from replica 1 but the progress
	// stream, which replica 0 serves.
	f.routeBy(func(r *http.Request) int {
		switch {
		case r.URL.Path == "/webauthn/sign-in/begin", strings.HasSuffix(r.URL.Path, "/events"):
			return 0
		}
		return 1
	})
	tb.click("#sign-in")
	tb.waitPath("/scan") // signed in; the camera reads the QR code
	tb.waitPath("/preview")
	if got := tb.text("#device-label"); got != "ICU-MON-04" {
		t.Errorf("preview on replica 1: label %q", got)
	}
	tb.click("#provision")
	tb.waitPath("/pairings/")
	if err := tb.poll(`document.querySelector('[data-step="PAIRING_RECEIVED"]').className.includes('current')`); err != nil {
		t.Fatalf("the page never showed PAIRING_RECEIVED from replica 0's stream (status %q): %v", tb.text("#status"), err)
	}
	release()
	tb.waitText("#result-title", "PROVISIONED: ZM-001 is ready")

	id := strings.TrimPrefix(tb.path(), "/pairings/")
	for path, want := range map[string]int{
		"/webauthn/sign-in/begin":     0,
		"/webauthn/sign-in/finish":    1,
		"/preview":                    1,
		"/pairings":                   1,
		"/pairings/" + id + "/events": 0,
	} {
		got := f.servedBy(path)
		if len(got) == 0 || got[len(got)-1] != want {
			t.Errorf("%s served by replicas %v, want the last by %d", path, got, want)
		}
	}
	if n0, n1 := len(r0.devs.Jobs()), len(r1.devs.Jobs()); n0 != 0 || n1 != 1 {
		t.Errorf("jobs: replica 0 ran %d, replica 1 ran %d; want 0 and 1", n0, n1)
	}
	if got := fmt.Sprint(f.servedBy("/pairings/" + id + "/events")); strings.Contains(got, "1") {
		t.Errorf("a progress stream was served by replica 1 (%s): the test would not cross replicas", got)
	}
}
