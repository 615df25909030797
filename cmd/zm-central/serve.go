package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/zmonitor/firmware/internal/central/estserver"
	"github.com/zmonitor/firmware/internal/central/job"
	"github.com/zmonitor/firmware/internal/central/pusher"
	"github.com/zmonitor/firmware/internal/central/server"
	"github.com/zmonitor/firmware/internal/central/server/monitor"
	"github.com/zmonitor/firmware/internal/central/store"
	"github.com/zmonitor/firmware/internal/central/webapp"
	"github.com/zmonitor/firmware/internal/proto/devicewire"
	"github.com/zmonitor/firmware/internal/proto/est"
	"github.com/zmonitor/firmware/internal/proto/payload"
)

// addrOverrides is a repeatable --device-addr ID=host:port flag.
type addrOverrides map[string]string

func (a addrOverrides) String() string { return fmt.Sprint(map[string]string(a)) }

func (a addrOverrides) Set(s string) error {
	id, addr, ok := strings.Cut(s, "=")
	if !ok || id == "" {
		return errors.New("want DEVICE-ID=host:port")
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return fmt.Errorf("%s: %w", addr, err)
	}
	a[id] = addr
	return nil
}

// serveOpts are serve's settings.
type serveOpts struct {
	db               dbFlags
	listen           string
	monitorListen    string
	serverURL        string
	estListen        string
	estURL           string
	crlURL           string
	estPerHour       int
	devicePort       int
	trustDeviceClock bool
	// allowUnmeasured is --allow-unmeasured-dev-firmware.
	allowUnmeasured  bool
	batchConcurrency int
	maxInFlight      int
	deviceAddr       addrOverrides
	drain            time.Duration
	clockOffset      time.Duration
	opsListen        string
	logFormat        string
	logLevel         string
	origin           string
	rpID             string
	sessionIdle      time.Duration
	sessionMax       time.Duration
}

// listening are the addresses serve listens on (monitor and ops empty when
// not run).
type listening struct{ tablet, monitor, est, ops string }

// readyFunc is told the addresses once every server listens (tests).
type readyFunc func(listening)

func cmdServe(ctx context.Context, args []string, stdout, stderr io.Writer, ready readyFunc) error {
	o := serveOpts{deviceAddr: addrOverrides{}}
	fs := newCommand("serve", &o.db)
	fs.StringVar(&o.listen, "listen", "127.0.0.1:8443", "tablet API address (HTTPS, TLS 1.3)")
	fs.StringVar(&o.monitorListen, "monitor-listen", "", "also run the stand-in monitoring server here (mTLS, GET /health)")
	fs.StringVar(&o.serverURL, "server-url", "", "monitoring server URL pushed to devices (default https://MONITOR-LISTEN)")
	fs.StringVar(&o.estListen, "est-listen", "", "also run the EST server here (RFC 7030 simple re-enrollment: devices renew their certificates; TLS 1.3, device certificates)")
	fs.StringVar(&o.estURL, "est-url", "", "EST server URL pushed to devices, so that they renew (default https://EST-LISTEN/.well-known/est; none without --est-listen)")
	fs.StringVar(&o.crlURL, "crl-url", "", "CRL distribution point written into the certificates issued from now on (e.g. http://central.hospital:9464/crl: the ops listener serves the CRL at /crl); none when empty")
	fs.IntVar(&o.estPerHour, "est-renewals-per-hour", estserver.DefaultRenewalsPerHour, "simple re-enrollment requests one device may make in any hour; beyond: 429 with Retry-After, audited est.rate_limited once an hour")
	fs.IntVar(&o.devicePort, "device-port", server.DefaultDevicePort, "devices' provisioning port")
	fs.BoolVar(&o.trustDeviceClock, "trust-device-clock", false, "refuse QR codes whose expiresAt has passed")
	fs.BoolVar(&o.allowUnmeasured, unmeasuredFlag, false, "DEVELOPMENT ONLY: pair devices that cannot attest their firmware (the direct-kernel qemu-virt board, records without an attestation key); logged at start and at each such pairing")
	fs.IntVar(&o.batchConcurrency, "batch-concurrency", server.DefaultBatchConcurrency, "devices of one batch provisioned at once")
	fs.IntVar(&o.maxInFlight, "max-in-flight", server.DefaultMaxInFlight, "provisionings in flight at most")
	fs.DurationVar(&o.drain, "drain", 30*time.Second, "on SIGTERM, how long pushes in flight may take to finish before they are cancelled")
	fs.DurationVar(&o.clockOffset, "clock-offset", 0, "drills only: shift the Central Station's clock: payload timestamp, certificate times, the monitoring and EST servers' time (e.g. -2h: the device refuses the payload as expired; 6570h: devices find their certificates due and renew)")
	fs.Var(o.deviceAddr, "device-addr", "DEVICE-ID=host:port: reach this device there instead of the QR's address (repeatable)")
	fs.StringVar(&o.opsListen, "ops-listen", os.Getenv("ZM_CENTRAL_OPS_LISTEN"), "serve /healthz, /readyz and /metrics (plain HTTP, no token) here, e.g. 127.0.0.1:9464; off when empty; $ZM_CENTRAL_OPS_LISTEN")
	fs.StringVar(&o.logFormat, "log-format", "text", "log lines as text (key=value) or json, on standard error")
	fs.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&o.origin, "origin", "", "the web app's `origin` as tablets open it, https://NAME[:PORT] (default https://localhost:LISTEN-PORT); NAME must be a DNS name the tablet certificate holds (init --hosts)")
	fs.StringVar(&o.rpID, "rp-id", "", "WebAuthn relying party ID passkeys are bound to (default: the origin's host name)")
	fs.DurationVar(&o.sessionIdle, "session-idle", webapp.DefaultIdleTimeout, "a browser session ends after this long without a request")
	fs.DurationVar(&o.sessionMax, "session-max", webapp.DefaultAbsoluteTimeout, "a browser session ends this long after sign-in")
	if err := parse(fs, args, 0, 0); err != nil {
		return err
	}
	if err := o.check(); err != nil {
		return fmt.Errorf("%w: serve: %v", errUsage, err)
	}
	if o.serverURL == "" {
		if o.monitorListen == "" {
			return fmt.Errorf("%w: serve: give --server-url, or --monitor-listen to run the stand-in", errUsage)
		}
		o.serverURL = "https://" + o.monitorListen
	}
	if o.estURL == "" && o.estListen != "" {
		o.estURL = "https://" + o.estListen + est.WellKnown
	}
	return serve(ctx, o, stdout, stderr, ready)
}

// check refuses settings that would silently mean something else: a
// negative or zero bound falls back to a default inside the server, which
// is not what the operator asked.
func (o serveOpts) check() error {
	switch {
	case o.maxInFlight < 1:
		return fmt.Errorf("--max-in-flight %d: at least 1 provisioning must be allowed in flight", o.maxInFlight)
	case o.batchConcurrency < 1:
		return fmt.Errorf("--batch-concurrency %d: a batch provisions at least 1 device at a time", o.batchConcurrency)
	case o.batchConcurrency > o.maxInFlight:
		return fmt.Errorf("--batch-concurrency %d is more than --max-in-flight %d", o.batchConcurrency, o.maxInFlight)
	case o.drain < 0:
		return fmt.Errorf("--drain %v: a duration of 0 (cancel at once) or more", o.drain)
	case o.estPerHour < 1:
		return fmt.Errorf("--est-renewals-per-hour %d: at least 1", o.estPerHour)
	case o.devicePort < 1 || o.devicePort > 65535:
		return fmt.Errorf("--device-port %d: a TCP port is 1-65535", o.devicePort)
	case o.logFormat != "text" && o.logFormat != "json":
		return fmt.Errorf("--log-format %q: text or json", o.logFormat)
	}
	if o.estURL != "" {
		if _, err := payload.ParseESTURL(o.estURL); err != nil {
			return fmt.Errorf("--est-url %q: %v", o.estURL, err)
		}
	}
	var l slog.Level
	if err := l.UnmarshalText([]byte(o.logLevel)); err != nil {
		return fmt.Errorf("--log-level %q: debug, info, warn or error", o.logLevel)
	}
	return nil
}

// logger is serve's structured logger on w.
func (o serveOpts) logger(w io.Writer) *slog.Logger {
	var level slog.Level
	level.UnmarshalText([]byte(o.logLevel)) //nolint:errcheck // checked by check
	ho := &slog.HandlerOptions{Level: level}
	if o.logFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, ho))
	}
	return slog.New(slog.NewTextHandler(w, ho))
}

// newProvisioner builds the pusher from the Central Station's device CA and
// provisioning signer in dir.
func newProvisioner(dir, serverURL, estURL, crlURL string, clockOffset time.Duration, attest func(context.Context, job.Job, []byte, *devicewire.VerifiedHello) error) (job.Provisioner, error) {
	c, err := deviceCA(dir, crlURL)
	if err != nil {
		return nil, err
	}
	signer, err := loadPair(dir, provSignerCert, provSignerKey)
	if err != nil {
		return nil, fmt.Errorf("provisioning signer: %w", err)
	}
	p, err := pusher.New(pusher.Config{
		CA:        c,
		Signer:    pusher.Signer{Key: signer.key, Chain: []*x509.Certificate{signer.cert}},
		ServerURL: serverURL,
		ESTURL:    estURL,
		Now:       func() time.Time { return time.Now().Add(clockOffset) },
		Attest:    attest,
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

func serve(ctx context.Context, o serveOpts, stdout, stderr io.Writer, ready readyFunc) error {
	log := o.logger(stderr)
	// net/http's own complaints (TLS handshake errors from scanners, ...)
	// go to the same structured log, never as bare log lines.
	errorLog := slog.NewLogLogger(log.Handler(), slog.LevelWarn)
	u, err := url.Parse(o.serverURL)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf("serve: --server-url must be an https URL")
	}
	st, err := o.db.open(ctx)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	defer st.Close()
	if err := completeRenewals(o.db.dir); err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	if o.allowUnmeasured {
		log.Warn("DEVELOPMENT FLAG --" + unmeasuredFlag + ": devices that cannot attest their firmware WILL BE PAIRED; never use this in a hospital")
		fmt.Fprintln(stderr, "zm-central: WARNING: --"+unmeasuredFlag+" is set: unattested (development) firmware will receive the hospital's credentials")
	}
	prov, err := newProvisioner(o.db.dir, o.serverURL, o.estURL, o.crlURL, o.clockOffset, attestHook(st, o.allowUnmeasured, log))
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	tabletPair, err := loadPair(o.db.dir, tabletCert, tabletKey)
	if err != nil {
		return fmt.Errorf("serve: tablet certificate: %w", err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	cfg := server.Config{
		Store: st, Provisioner: prov, TrustDeviceClock: o.trustDeviceClock, DevicePort: o.devicePort,
		BatchConcurrency: o.batchConcurrency, MaxInFlight: o.maxInFlight, Logger: log, Registry: reg,
	}
	if len(o.deviceAddr) > 0 {
		overrides, port := o.deviceAddr, o.devicePort
		cfg.DeviceAddr = func(id, ip string) string {
			if a, ok := overrides[id]; ok {
				return a
			}
			return net.JoinHostPort(ip, fmt.Sprint(port))
		}
	}
	api, err := server.New(cfg)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	defer api.Close()

	var servers []*http.Server
	errc := make(chan error, 4)
	serveOn := func(hs *http.Server, l net.Listener) {
		hs.ErrorLog = errorLog
		servers = append(servers, hs)
		go func() {
			var err error
			if hs.TLSConfig != nil {
				err = hs.ServeTLS(l, "", "")
			} else {
				err = hs.Serve(l)
			}
			if !errors.Is(err, http.ErrServerClosed) {
				errc <- err
			}
		}()
	}
	start := func(hs *http.Server, addr string) (string, error) {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return "", err
		}
		serveOn(hs, l)
		return l.Addr().String(), nil
	}
	// The web app and the tablet API share the tablet listener; the web
	// app's default origin needs its port.
	tabletListener, err := net.Listen("tcp", o.listen)
	if err != nil {
		return fmt.Errorf("serve: tablet API: %w", err)
	}
	tabletAddr := tabletListener.Addr().String()
	origin := o.origin
	if origin == "" {
		_, port, _ := net.SplitHostPort(tabletAddr)
		origin = "https://localhost:" + port
	}
	app, err := webapp.New(webapp.Config{
		Store: st, API: api, Origin: origin, RPID: o.rpID,
		IdleTimeout: o.sessionIdle, AbsoluteTimeout: o.sessionMax, Logger: log,
	})
	if err != nil {
		tabletListener.Close()
		return fmt.Errorf("serve: web app: %w", err)
	}
	serveOn(server.HTTPServer(o.listen, app.Handler(), tabletPair.tls()), tabletListener)
	now := func() time.Time { return time.Now().Add(o.clockOffset) }
	crlCA, err := deviceCA(o.db.dir, "")
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	crl := func(ctx context.Context) ([]byte, error) { return buildCRL(ctx, st, crlCA, now()) }
	var inMemory []webapp.NamedCertificate
	monitorAddr := ""
	if o.monitorListen != "" {
		m, mc, err := newMonitor(o.db.dir, u.Hostname(), now, crl, log)
		if err != nil {
			return fmt.Errorf("serve: monitoring server: %w", err)
		}
		inMemory = append(inMemory, webapp.NamedCertificate{Name: "stand-in monitoring server", Cert: mc, Renew: restartRenews})
		if monitorAddr, err = start(m.HTTPServer(o.monitorListen), o.monitorListen); err != nil {
			return fmt.Errorf("serve: monitoring server: %w", err)
		}
		fmt.Fprintf(stdout, "stand-in monitoring server on https://%s%s\n", monitorAddr, monitor.DefaultHealthPath)
	}
	estAddr := ""
	if o.estListen != "" {
		hs, ec, err := newEST(o.db.dir, o.estURL, o.crlURL, st, now, estserver.RateLimit{Requests: o.estPerHour, Interval: time.Hour}, log)
		if err != nil {
			return fmt.Errorf("serve: EST server: %w", err)
		}
		inMemory = append(inMemory, webapp.NamedCertificate{Name: "EST server", Cert: ec, Renew: restartRenews})
		if estAddr, err = start(hs, o.estListen); err != nil {
			return fmt.Errorf("serve: EST server: %w", err)
		}
		fmt.Fprintf(stdout, "EST server on https://%s%s (devices are sent EST URL %s)\n", estAddr, est.WellKnown, o.estURL)
	}
	opsAddr := ""
	if o.opsListen != "" {
		mux := http.NewServeMux()
		mux.Handle("/", api.OpsHandler())
		mux.HandleFunc("GET "+crlPath, func(w http.ResponseWriter, r *http.Request) {
			der, err := crl(r.Context())
			if err != nil {
				log.Error("CRL", "err", err)
				http.Error(w, "CRL unavailable", http.StatusServiceUnavailable)
				return
			}
			w.Header().Set("Content-Type", "application/pkix-crl")
			_, _ = w.Write(der)
		})
		hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
			WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 16 << 10}
		if opsAddr, err = start(hs, o.opsListen); err != nil {
			return fmt.Errorf("serve: ops listener: %w", err)
		}
		fmt.Fprintf(stdout, "health, readiness and metrics on http://%s (%s %s %s)\n", opsAddr, server.HealthPath, server.ReadyPath, server.MetricsPath)
	}
	own := append(stationCertificates(o.db.dir, log), inMemory...)
	app.SetStatus(statusListeners(tabletAddr, monitorAddr, opsAddr, app.Origin()), own)
	hkCtx, hkStop := context.WithCancel(ctx)
	hkDone := make(chan struct{})
	go func() { defer close(hkDone); housekeeping(hkCtx, st, own, log) }()
	defer func() { hkStop(); <-hkDone }()
	fmt.Fprintf(stdout, "tablet API on https://%s (devices are sent server URL %s)\n", tabletAddr, o.serverURL)
	fmt.Fprintf(stdout, "web app on %s (passkeys for %s)\n", app.Origin(), app.RPID())
	log.Info("serving", "tablet", tabletAddr, "monitor", monitorAddr, "est", estAddr, "ops", opsAddr, "serverURL", o.serverURL, "estURL", o.estURL, "clockOffset", o.clockOffset)
	if ready != nil {
		ready(listening{tablet: tabletAddr, monitor: monitorAddr, est: estAddr, ops: opsAddr})
	}
	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
	}
	shut, cancel := context.WithTimeout(context.Background(), o.drain)
	defer cancel()
	for _, hs := range servers {
		hs.Shutdown(shut) //nolint:errcheck // best effort on the way out
	}
	if err := api.Shutdown(shut); err != nil {
		log.Warn("pushes cancelled at shutdown", "err", err)
	}
	if runErr != nil {
		return fmt.Errorf("serve: %w", runErr)
	}
	return nil
}

// crlPath is where the ops listener serves the device CA's CRL (DER).
const crlPath = "/crl"

// newMonitor makes the stand-in monitoring server with a fresh server
// certificate from the device CA, for host (the server URL's host),
// localhost and 127.0.0.1; now is its clock (with the drill offset): it
// verifies client certificates at it and dates its answers by it.
func newMonitor(dir, host string, now func() time.Time, crl func(context.Context) ([]byte, error), log *slog.Logger) (*monitor.Server, *x509.Certificate, error) {
	devCA, cert, err := newServerCert(dir, "Z Monitor stand-in monitoring server", host)
	if err != nil {
		return nil, nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(devCA)
	m, err := monitor.New(monitor.Config{ClientCAs: pool, Certificate: cert, Logger: log, Now: now,
		CRL: func(ctx context.Context) (*x509.RevocationList, error) {
			der, err := crl(ctx)
			if err != nil {
				return nil, err
			}
			return x509.ParseRevocationList(der)
		}})
	return m, cert.Leaf, err
}

// newEST makes the EST server: certificates issued from the device CA in
// dir, recorded in st; its server certificate, fresh from the device CA,
// names estURL's host, localhost and 127.0.0.1.
func newEST(dir, estURL, crlURL string, st store.Store, now func() time.Time, limit estserver.RateLimit, log *slog.Logger) (*http.Server, *x509.Certificate, error) {
	u, err := payload.ParseESTURL(estURL)
	if err != nil {
		return nil, nil, fmt.Errorf("--est-url: %w", err)
	}
	c, err := deviceCA(dir, crlURL)
	if err != nil {
		return nil, nil, err
	}
	_, cert, err := newServerCert(dir, "Z Monitor EST server", u.Hostname())
	if err != nil {
		return nil, nil, err
	}
	s, err := estserver.New(estserver.Config{CA: c, Store: st, Now: now, Log: log, RateLimit: limit})
	if err != nil {
		return nil, nil, err
	}
	return s.HTTPServer("", cert), cert.Leaf, nil
}

// newServerCert issues a fresh server certificate from the device CA in
// dir for host, localhost and 127.0.0.1 (its key only in memory).
func newServerCert(dir, cn, host string) (*x509.Certificate, tls.Certificate, error) {
	devCA, err := loadPair(dir, deviceCACert, deviceCAKey)
	if err != nil {
		return nil, tls.Certificate{}, err
	}
	k, err := newKey()
	if err != nil {
		return nil, tls.Certificate{}, err
	}
	c, err := issue(serverTemplate(cn, []string{host, "localhost", "127.0.0.1"}, time.Now()), &k.PublicKey, devCA.cert, devCA.key)
	if err != nil {
		return nil, tls.Certificate{}, err
	}
	return devCA.cert, pair{c, k}.tls(), nil
}

// restartRenews is how the certificates serve makes at start are
// renewed.
const restartRenews = "made at each start of serve: restart it"

// statusListeners are the sockets serve listens on, for the web app's
// status panel.
func statusListeners(tablet, monitorAddr, ops, origin string) []webapp.Listener {
	ls := []webapp.Listener{{Name: "web app and tablet API (" + origin + ")", Address: tablet}}
	if monitorAddr != "" {
		ls = append(ls, webapp.Listener{Name: "stand-in monitoring server", Address: monitorAddr})
	}
	if ops != "" {
		ls = append(ls, webapp.Listener{Name: "health, readiness and metrics", Address: ops})
	}
	return ls
}

// stationCertificates are the Central Station's own certificates, for
// the status panel's expiry dates (one that cannot be read is logged and
// left out: serve has already loaded those it needs).
func stationCertificates(dir string, log *slog.Logger) []webapp.NamedCertificate {
	var out []webapp.NamedCertificate
	for _, c := range ownCerts {
		cert, err := loadCert(dir, c.certFile)
		if err != nil {
			log.Warn("status panel: certificate", "name", c.title, "err", err)
			continue
		}
		out = append(out, webapp.NamedCertificate{Name: c.title, Cert: cert, Renew: statusOf(c, cert, time.Now()).Renew})
	}
	return out
}
