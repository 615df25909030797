package server

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/zmonitor/firmware/internal/central/job"
	"github.com/zmonitor/firmware/internal/central/store"
	"github.com/zmonitor/firmware/internal/proto/failure"
	"github.com/zmonitor/firmware/internal/proto/tabletwire"
)

// pingStore fails Ping when down is set.
type pingStore struct {
	store.Store
	down bool
}

func (p *pingStore) Ping(ctx context.Context) error {
	if p.down {
		return errors.New("connection refused")
	}
	return p.Store.Ping(ctx)
}

func opsGet(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
	b, _ := io.ReadAll(w.Body)
	return w.Code, string(b)
}

// TestOpsEndpoints: /healthz answers while the process runs; /readyz fails
// while the database does not answer and once the server stops; the
// metrics count pairings by state and code, push latency, slots in flight
// and database errors, and carry no device ID.
func TestOpsEndpoints(t *testing.T) {
	prov := &fakeProv{gate: make(chan struct{}), entered: make(chan string, 1)}
	var ps *pingStore
	e := newEnv(t, prov, func(c *Config) {
		ps = &pingStore{Store: c.Store}
		c.Store = ps
	})
	e.st = ps
	h := e.srv.OpsHandler()
	if code, body := opsGet(t, h, HealthPath); code != 200 || body != "ok\n" {
		t.Errorf("healthz %d %q", code, body)
	}
	if code, _ := opsGet(t, h, ReadyPath); code != 200 {
		t.Errorf("readyz %d", code)
	}
	ps.down = true
	if code, body := opsGet(t, h, ReadyPath); code != http.StatusServiceUnavailable || !strings.Contains(body, "database") {
		t.Errorf("readyz with the database down: %d %q", code, body)
	}
	ps.down = false

	d := e.enroll("ZM-001")
	qr := d.qr(t, t0)
	w := e.do(http.MethodPost, tabletwire.PairingsPath, e.token, tabletwire.PairingRequest{QR: qr})
	if w.Code != http.StatusAccepted {
		t.Fatal(w.Body)
	}
	<-prov.entered
	_, m := opsGet(t, h, MetricsPath)
	if !strings.Contains(m, "zm_central_pairings_in_flight 1") {
		t.Errorf("in flight during a push:\n%s", grepMetrics(m, "in_flight"))
	}
	close(prov.gate)
	e.srv.Wait()
	// A refusal, and a database error.
	e.do(http.MethodPost, tabletwire.PairingsPath, e.token, tabletwire.PairingRequest{QR: qr}) // the same QR again
	_, m = opsGet(t, h, MetricsPath)
	for _, want := range []string{
		`zm_central_pairings_total{code="OK",state="succeeded"} 1`,
		`zm_central_pairings_total{code="TOKEN_ALREADY_USED",state="refused"} 1`,
		`zm_central_push_duration_seconds_count{state="succeeded"} 1`,
		`zm_central_pairings_in_flight 0`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s:\n%s", want, grepMetrics(m, "zm_central"))
		}
	}
	if strings.Contains(m, "ZM-001") {
		t.Error("a device ID in the metrics")
	}
	ps.down = true
	opsGet(t, h, ReadyPath) // the second readiness ping that fails
	_, m = opsGet(t, h, MetricsPath)
	if !strings.Contains(m, `zm_central_database_errors_total{op="readiness ping"} 2`) {
		t.Errorf("database error not counted:\n%s", grepMetrics(m, "database"))
	}
	ps.down = false
	e.srv.Close()
	if code, body := opsGet(t, h, ReadyPath); code != http.StatusServiceUnavailable || !strings.Contains(body, "stopping") {
		t.Errorf("readyz after Close: %d %q", code, body)
	}
	if code, _ := opsGet(t, h, HealthPath); code != 200 {
		t.Errorf("healthz after Close: %d", code)
	}
}

// TestFailedPushCounted: a device failure is counted with its code.
func TestFailedPushCounted(t *testing.T) {
	prov := &fakeProv{result: func(job.Job) (job.Outcome, error) {
		return job.Outcome{}, failure.New(failure.SignerUntrusted, "hello", errors.New("bad certificate"))
	}}
	e := newEnv(t, prov, nil)
	d := e.enroll("ZM-001")
	e.do(http.MethodPost, tabletwire.PairingsPath, e.token, tabletwire.PairingRequest{QR: d.qr(t, t0)})
	e.srv.Wait()
	_, m := opsGet(t, e.srv.OpsHandler(), MetricsPath)
	for _, want := range []string{`zm_central_pairings_total{code="SIGNER_UNTRUSTED",state="failed"} 1`, `zm_central_push_duration_seconds_count{state="failed"} 1`} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s:\n%s", want, grepMetrics(m, "zm_central"))
		}
	}
}

func grepMetrics(m, s string) string {
	var out []string
	for _, l := range strings.Split(m, "\n") {
		if strings.Contains(l, s) && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
