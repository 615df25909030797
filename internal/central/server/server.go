package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/zmonitor/firmware/internal/base/clock"
	"github.com/zmonitor/firmware/internal/central/job"
	"github.com/zmonitor/firmware/internal/central/store"
	"github.com/zmonitor/firmware/internal/proto/tabletwire"
)

// Defaults.
const (
	DefaultDevicePort       = 8444
	DefaultBatchConcurrency = 4
	DefaultMaxInFlight      = 256
	DefaultMaxBatch         = 1000
	DefaultJobTimeout       = 10 * time.Minute
)

// Config configures a Server. Store and Provisioner are required.
type Config struct {
	Store       store.Store
	Provisioner job.Provisioner
	// Clock is the Central Station's wall clock (default clock.System).
	Clock clock.Clock
	// TrustDeviceClock makes the QR's expiresAt binding. Off by default:
	// the device's clock may be unknown (DESIGN.md section 4).
	TrustDeviceClock bool
	// DevicePort is the devices' provisioning port (default 8444).
	DevicePort int
	// DeviceAddr maps a scanned QR to the device's endpoint "host:port";
	// nil means the QR's ipAddress and DevicePort. Tests and QEMU's hostfwd
	// use it to redirect.
	DeviceAddr func(deviceID, qrIP string) string
	// BatchConcurrency bounds the pairings of one batch in flight (default
	// 4).
	BatchConcurrency int
	// MaxInFlight bounds all provisionings in flight (default 256); a
	// request beyond it is refused with Busy.
	MaxInFlight int
	// MaxBatch bounds the items of one batch (default 1000).
	MaxBatch int
	// JobTimeout bounds one provisioning (default 10 min).
	JobTimeout time.Duration
	// Logger receives operational logs (default: discarded).
	Logger *slog.Logger
	// Rand draws pairing and batch IDs (default crypto/rand).
	Rand io.Reader
	// Registry receives the server's Prometheus metrics (OpsHandler
	// serves it); nil: a registry of the server's own.
	Registry *prometheus.Registry
	// KeepAlive is the longest silence on a progress stream (default 15
	// s), EventsResync how often a stream reads the store for a pairing
	// that another replica runs (default 1 s), MaxStream how long one
	// stream lasts at most (default 15 min). See events.go.
	KeepAlive, EventsResync, MaxStream time.Duration
}

// Server is the tablet API.
type Server struct {
	cfg    Config
	st     store.Store
	prov   job.Provisioner
	log    *slog.Logger
	ctx    context.Context // cancelled by Close: stops running jobs
	cancel context.CancelFunc
	wg     sync.WaitGroup
	slots  *slots // the MaxInFlight provisionings in flight
	hub    *hub   // progress of the pairings this replica runs, to their streams
	mux    *http.ServeMux
	// metrics are served by OpsHandler.
	metrics *metrics
	// stopping is set by Shutdown and Close: /readyz then fails.
	stopping atomic.Bool
}

// New returns a Server.
func New(cfg Config) (*Server, error) {
	if cfg.Store == nil || cfg.Provisioner == nil {
		return nil, errors.New("server: Store and Provisioner are required")
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.System{}
	}
	if cfg.DevicePort == 0 {
		cfg.DevicePort = DefaultDevicePort
	}
	if cfg.DevicePort < 1 || cfg.DevicePort > 65535 {
		return nil, fmt.Errorf("server: device port %d out of range", cfg.DevicePort)
	}
	if cfg.BatchConcurrency <= 0 {
		cfg.BatchConcurrency = DefaultBatchConcurrency
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = DefaultMaxInFlight
	}
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = DefaultMaxBatch
	}
	if cfg.JobTimeout <= 0 {
		cfg.JobTimeout = DefaultJobTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	if cfg.KeepAlive <= 0 {
		cfg.KeepAlive = DefaultKeepAlive
	}
	if cfg.EventsResync <= 0 {
		cfg.EventsResync = DefaultEventsResync
	}
	if cfg.MaxStream <= 0 {
		cfg.MaxStream = DefaultMaxStream
	}
	if cfg.DeviceAddr == nil {
		port := strconv.Itoa(cfg.DevicePort)
		cfg.DeviceAddr = func(_, ip string) string { return net.JoinHostPort(ip, port) }
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		cfg: cfg, st: cfg.Store, prov: cfg.Provisioner, log: cfg.Logger,
		ctx: ctx, cancel: cancel,
		slots: newSlots(cfg.MaxInFlight),
		hub:   newHub(),
		mux:   http.NewServeMux(),
	}
	s.metrics = newMetrics(cfg.Registry, s.slots.inUse, cfg.MaxInFlight)
	s.mux.HandleFunc("POST "+tabletwire.PairingsPath, s.authed(s.postPairing))
	s.mux.HandleFunc("GET "+tabletwire.PairingsPath+"/{id}", s.authed(s.getPairing))
	s.mux.HandleFunc("GET "+tabletwire.PairingsPath+"/{id}/events", s.authed(s.getEvents))
	s.mux.HandleFunc("POST "+tabletwire.BatchesPath, s.authed(s.postBatch))
	s.mux.HandleFunc("GET "+tabletwire.BatchesPath+"/{id}", s.authed(s.getBatch))
	return s, nil
}

// Handler is the API's HTTP handler. It takes no form-encoded body and
// no cookie: the API is for bearer tokens (zm-pair, automation); browsers
// use the web app (internal/central/webapp), which calls the methods
// below.
func (s *Server) Handler() http.Handler { return s.mux }

// Authenticate returns the technician a request's bearer token names
// (refusals: Unauthorized).
func (s *Server) Authenticate(r *http.Request) (store.Technician, error) { return s.authenticate(r) }

// Wait blocks until every provisioning started so far has ended and its
// outcome is recorded.
func (s *Server) Wait() { s.wg.Wait() }

// Close cancels running provisionings and waits for them to record their
// outcome.
func (s *Server) Close() {
	s.stopping.Store(true)
	s.cancel()
	s.wg.Wait()
}

// Shutdown lets the provisionings in flight (and queued batch items) finish
// until ctx is done, then cancels the rest as Close does. Stop accepting
// requests first (http.Server.Shutdown).
func (s *Server) Shutdown(ctx context.Context) error {
	s.stopping.Store(true)
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.Close()
		<-done
		return fmt.Errorf("server shutdown: %w", ctx.Err())
	}
}

// Prefixes of the identifiers the server draws (newID): the prefix and
// idHexLen lower-case hexadecimal digits.
const (
	pairingIDPrefix = "p-"
	batchIDPrefix   = "b-"
	idHexLen        = 32
)

// validID reports whether s is an identifier newID could have drawn with
// prefix. Anything else (a NUL, invalid UTF-8, a path) is never looked up.
func validID(prefix, s string) bool {
	if len(s) != len(prefix)+idHexLen || s[:len(prefix)] != prefix {
		return false
	}
	for i := len(prefix); i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// newID draws a random identifier with prefix.
func (s *Server) newID(prefix string) (string, error) {
	var b [16]byte
	if _, err := io.ReadFull(s.cfg.Rand, b[:]); err != nil {
		return "", fmt.Errorf("draw ID: %w", err)
	}
	return prefix + hex.EncodeToString(b[:]), nil
}

// audit appends an audit record; a failure is logged, never returned (the
// operation it describes has happened).
func (s *Server) audit(ctx context.Context, actor, event, deviceID, detail string) {
	if err := s.st.Audit(ctx, store.AuditRecord{Actor: actor, Event: event, DeviceID: deviceID, Detail: detail}); err != nil {
		s.storeError("audit", err, "event", event)
	}
}
