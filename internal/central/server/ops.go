package server

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// The operator's endpoints (OpsHandler), served on their own listener
// (zm-central serve --ops-listen), never on the tablet API's: they need no
// technician token, and a scraper or a probe should not hold one.
const (
	HealthPath  = "/healthz" // the process answers
	ReadyPath   = "/readyz"  // it takes pairings: not stopping, the database answers
	MetricsPath = "/metrics" // Prometheus text format
	// readyTimeout bounds the database check of /readyz.
	readyTimeout = 2 * time.Second
)

// metrics are the tablet API's Prometheus series. Labels never carry a
// device ID, a technician or anything from a request: only states and
// codes, from fixed sets.
type metrics struct {
	reg      *prometheus.Registry
	pairings *prometheus.CounterVec
	push     *prometheus.HistogramVec
	dbErrors *prometheus.CounterVec
}

func newMetrics(reg *prometheus.Registry, inFlight func() int, limit int) *metrics {
	m := &metrics{
		reg: reg,
		pairings: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "zm_central_pairings_total",
			Help: "Pairings ended, by final state (succeeded, failed, refused) and result code (OK on success).",
		}, []string{"state", "code"}),
		push: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "zm_central_push_duration_seconds",
			Help:    "Time from the start of a push (hello) to the device's final answer or the failure, by final state.",
			Buckets: []float64{0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300},
		}, []string{"state"}),
		dbErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "zm_central_database_errors_total",
			Help: "Database operations of the tablet API that failed (not refusals: the database did not answer as it should), by operation.",
		}, []string{"op"}),
	}
	limitGauge := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "zm_central_pairings_in_flight_limit",
		Help: "The --max-in-flight slots.",
	})
	limitGauge.Set(float64(limit))
	reg.MustRegister(m.pairings, m.push, m.dbErrors, limitGauge,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "zm_central_pairings_in_flight",
			Help: "Provisionings running now (each holds one of the --max-in-flight slots).",
		}, func() float64 { return float64(inFlight()) }))
	return m
}

// storeError logs a failed database operation and counts it.
func (s *Server) storeError(op string, err error, attrs ...any) {
	s.metrics.dbErrors.WithLabelValues(op).Inc()
	s.log.Error(op, append(attrs, "err", err)...)
}

// OpsHandler serves HealthPath, ReadyPath and MetricsPath.
func (s *Server) OpsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+HealthPath, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n")) //nolint:errcheck // the prober went away
	})
	mux.HandleFunc("GET "+ReadyPath, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if err := s.ready(r.Context()); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte("not ready: " + err.Error() + "\n")) //nolint:errcheck // the prober went away
			return
		}
		w.Write([]byte("ready\n")) //nolint:errcheck // the prober went away
	})
	mux.Handle("GET "+MetricsPath, promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{ErrorLog: slogPrinter{s}}))
	return mux
}

// ready says why the server does not take pairings now, if it does not.
func (s *Server) ready(ctx context.Context) error {
	if s.stopping.Load() {
		return errStopping
	}
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	if err := s.st.Ping(ctx); err != nil {
		s.storeError("readiness ping", err)
		return errDatabase
	}
	return nil
}

type readyError string

func (e readyError) Error() string { return string(e) }

const (
	errStopping = readyError("stopping: pairings in flight are draining")
	errDatabase = readyError("the database does not answer")
)

// slogPrinter gives promhttp's errors to the server's logger.
type slogPrinter struct{ s *Server }

func (p slogPrinter) Println(v ...any) { p.s.log.Error("metrics", "err", v) }
