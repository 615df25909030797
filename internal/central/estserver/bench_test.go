package estserver

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/zmonitor/firmware/internal/central/ca"
	"github.com/zmonitor/firmware/internal/central/store"
	"github.com/zmonitor/firmware/internal/central/store/pgtest"
	"github.com/zmonitor/firmware/internal/proto/est"
	"github.com/zmonitor/firmware/internal/testkit/testpki"
)

// BenchmarkRenewal: 1,000 software devices (100 with -short) (software P-256 keys, not
// TPMs: the load generator's keys cost what a TPM's would not, on the same
// 2 cores) renew against one EST server, `renewalConcurrency` at a time;
// each renewal is what the Central Station serves per device: a simple
// re-enrollment over a new mutual-TLS connection with the current
// certificate (authenticated, signed, recorded, audited), then the
// confirmation, a cacerts request over a new connection with the new
// certificate (in use, predecessor superseded, audited). Reports
// renewals per second, on SQLite and PostgreSQL.
//
//	make bench-renewal
//	go test -run '^$' -bench Renewal -benchtime 1x ./internal/central/estserver/
func BenchmarkRenewal(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) { benchRenewal(b, pgtest.SQLiteDSN(b)) })
	b.Run("postgres", func(b *testing.B) {
		srv, err := pgtest.Start(context.Background())
		if err != nil {
			if os.Getenv(pgtest.EnvRequired) == "1" {
				b.Fatalf("PostgreSQL required (%s=1): %v", pgtest.EnvRequired, err)
			}
			b.Skipf("skipping PostgreSQL: %v", err)
		}
		defer srv.Stop()
		dsn, err := srv.NewDatabase(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		benchRenewal(b, dsn)
	})
}

const renewalConcurrency = 32

// renewalDevices is 1,000, or 100 with -short (make bench).
func renewalDevices() int {
	if testing.Short() {
		return 100
	}
	return 1000
}

// benchDevice is one software device: its current certificate and key,
// and the next key with its CSR (made before the clock starts).
type benchDevice struct {
	id      string
	cert    *x509.Certificate
	key     *ecdsa.PrivateKey
	nextKey *ecdsa.PrivateKey
	csr     []byte // EST body
}

func (d *benchDevice) prepare(b *testing.B) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: d.cert.Subject, DNSNames: d.cert.DNSNames}, k)
	if err != nil {
		b.Fatal(err)
	}
	d.nextKey, d.csr = k, est.EncodeCSR(der)
}

func benchRenewal(b *testing.B, dsn string) {
	ctx := context.Background()
	root, err := testpki.NewCA("bench device CA", time.Now())
	if err != nil {
		b.Fatal(err)
	}
	st, err := store.Open(ctx, dsn, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	issuer, err := ca.New(root.Cert, root.Key, nil)
	if err != nil {
		b.Fatal(err)
	}
	// The per-device limit is not what is measured: each device renews
	// once per iteration.
	srv, err := New(Config{CA: issuer, Store: st, RateLimit: RateLimit{Requests: 1 << 30, Interval: time.Hour}})
	if err != nil {
		b.Fatal(err)
	}
	leaf, err := root.NewLeaf(testpki.ServerTemplate("bench EST"), time.Now())
	if err != nil {
		b.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	hs := srv.HTTPServer("", leaf.TLS())
	hs.ErrorLog = nil
	go hs.ServeTLS(l, "", "") //nolint:errcheck // ends with Close
	defer hs.Close()
	base := "https://" + l.Addr().String() + est.WellKnown

	n := renewalDevices()
	devices := make([]*benchDevice, n)
	for i := range devices {
		id := fmt.Sprintf("ZM-%05d", i)
		if _, err := st.ImportDevice(ctx, store.Enrollment{DeviceID: id, DeviceSerial: "SN-" + id, IdentitySPKI: benchSPKI(b), PayloadSPKI: benchSPKI(b), FirmwareVersion: "1.0.0"}); err != nil {
			b.Fatal(err)
		}
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			b.Fatal(err)
		}
		csrDER, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: leaf.Cert.Subject}, k)
		csr, _ := x509.ParseCertificateRequest(csrDER)
		csr.Subject.CommonName = id
		csrDER, _ = x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: csr.Subject}, k)
		csr, _ = x509.ParseCertificateRequest(csrDER)
		c, err := issuer.IssueClient(csr, id, time.Now())
		if err != nil {
			b.Fatal(err)
		}
		if err := st.RecordCertificate(ctx, id, "p-"+id, c.Raw); err != nil {
			b.Fatal(err)
		}
		if err := st.MarkCertificateInUse(ctx, store.CertificateSerial(c)); err != nil {
			b.Fatal(err)
		}
		devices[i] = &benchDevice{id: id, cert: c, key: k}
	}
	roots := root.Pool()
	var total, cpu time.Duration
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		for _, d := range devices {
			d.prepare(b)
		}
		b.StartTimer()
		start, cpu0 := time.Now(), processCPU(b)
		work := make(chan *benchDevice)
		errc := make(chan error, renewalConcurrency)
		var wg sync.WaitGroup
		for range renewalConcurrency {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for d := range work {
					if err := renewOnce(base, roots, d); err != nil {
						errc <- err
						return
					}
				}
			}()
		}
	feed:
		for _, d := range devices {
			select {
			case work <- d:
			case err := <-errc:
				b.Error(err)
				break feed
			}
		}
		close(work)
		wg.Wait()
		close(errc)
		for err := range errc {
			b.Fatal(err)
		}
		total += time.Since(start)
		cpu += processCPU(b) - cpu0
	}
	b.ReportMetric(float64(n*b.N)/total.Seconds(), "renewals/s")
	// CPU time of this process (the Central Station's EST server and the
	// load generator's TLS and HTTP; not PostgreSQL's) per renewal: less
	// at the mercy of other work on a shared machine than the rate.
	b.ReportMetric(float64(cpu.Microseconds())/1000/float64(n*b.N), "cpu-ms/renewal")
}

// renewOnce is one device's renewal as the Central Station sees it.
func renewOnce(base string, roots *x509.CertPool, d *benchDevice) error {
	client := func(cert *x509.Certificate, key *ecdsa.PrivateKey) *http.Client {
		return &http.Client{Timeout: time.Minute, Transport: &http.Transport{DisableKeepAlives: true, TLSClientConfig: &tls.Config{
			MinVersion: tls.VersionTLS13, RootCAs: roots, ServerName: "localhost",
			Certificates: []tls.Certificate{{Certificate: [][]byte{cert.Raw}, PrivateKey: key, Leaf: cert}},
		}}}
	}
	resp, err := client(d.cert, d.key).Post(base+est.PathSimpleReenroll, est.TypeCSR, strings.NewReader(string(d.csr)))
	if err != nil {
		return fmt.Errorf("%s: simplereenroll: %w", d.id, err)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, est.MaxCertsBody))
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: simplereenroll: %d %s %v", d.id, resp.StatusCode, body, err)
	}
	certs, err := est.DecodeCerts(body)
	if err != nil {
		return fmt.Errorf("%s: %w", d.id, err)
	}
	d.cert, d.key = certs[0], d.nextKey
	resp, err = client(d.cert, d.key).Get(base + est.PathCACerts)
	if err != nil {
		return fmt.Errorf("%s: confirm: %w", d.id, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: confirm: %d", d.id, resp.StatusCode)
	}
	return nil
}

// processCPU is the user and system CPU time this process used so far.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func benchSPKI(b *testing.B) []byte {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	return der
}
