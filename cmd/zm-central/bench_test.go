package main

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/zmonitor/firmware/internal/central/server"
	"github.com/zmonitor/firmware/internal/central/store"
	"github.com/zmonitor/firmware/internal/central/store/pgtest"
	"github.com/zmonitor/firmware/internal/fw/endpoint"
	"github.com/zmonitor/firmware/internal/proto/pairing"
	"github.com/zmonitor/firmware/internal/proto/tabletwire"
)

// BenchmarkThroughput provisions 200 software devices (real endpoint, real
// pusher, payload verified on the device side) in one batch with all 200 in
// flight, and reports provisionings per second, on SQLite and PostgreSQL.
//
//	go test -run '^$' -bench Throughput -benchtime 3x ./cmd/zm-central/
func BenchmarkThroughput(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) { benchThroughput(b, "") })
	b.Run("postgres", func(b *testing.B) {
		srv, err := pgtest.Start(context.Background())
		if err != nil {
			b.Skipf("skipping PostgreSQL: %v", err)
		}
		defer srv.Stop()
		dsn, err := srv.NewDatabase(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		benchThroughput(b, dsn)
	})
}

func benchThroughput(b *testing.B, dsn string) {
	const n = 200
	ctx := context.Background()
	dir := filepath.Join(b.TempDir(), "central")
	var out bytes.Buffer
	if err := initDir(ctx, dir, []string{"localhost"}, "bench", "", time.Now(), &out); err != nil {
		b.Fatal(err)
	}
	if dsn == "" {
		dsn = "sqlite:" + filepath.Join(dir, dbFile)
	}
	st, err := store.Open(ctx, dsn, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	tok, err := addTechnician(ctx, st, "bench")
	if err != nil {
		b.Fatal(err)
	}
	root, _ := loadCert(dir, provRootCert)
	anchors := x509.NewCertPool()
	anchors.AddCert(root)
	devs := make([]*softDevice, n)
	addrs := map[string]string{}
	for i := range devs {
		e := newEnrolled(b, fmt.Sprintf("ZM-%03d", i))
		pk, _ := ecdh.P256().GenerateKey(rand.Reader)
		pub, _ := x509.MarshalPKIXPublicKey(mustECDSAPub(b, pk))
		e.rec["payloadPublicKey"] = base64.StdEncoding.EncodeToString(pub)
		js, _ := json.Marshal(e.rec)
		items, err := store.ParseEnrollments(js)
		if err != nil || items[0].Err != nil {
			b.Fatal(err, items)
		}
		if _, err := st.ImportDevice(ctx, items[0].Enrollment); err != nil {
			b.Fatal(err)
		}
		d := &softDevice{id: e.id, identity: e.key, payload: pk, anchors: anchors}
		ep, err := endpoint.NewServer(d, endpoint.Opts{Identity: e.key, DeviceID: e.id, Anchors: anchors})
		if err != nil {
			b.Fatal(err)
		}
		a, err := ep.Start("127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		defer ep.Close()
		devs[i], addrs[e.id] = d, a.String()
	}
	prov, err := newProvisioner(dir, "https://monitor.example:9443", "", "", 0, nil)
	if err != nil {
		b.Fatal(err)
	}
	api, err := server.New(server.Config{Store: st, Provisioner: prov, BatchConcurrency: n, MaxInFlight: n,
		DeviceAddr: func(id, _ string) string { return addrs[id] }})
	if err != nil {
		b.Fatal(err)
	}
	defer api.Close()
	b.ResetTimer()
	var total time.Duration
	for b.Loop() {
		b.StopTimer()
		var req tabletwire.BatchRequest
		for _, d := range devs {
			s, err := pairing.NewSession(time.Now(), time.Now(), pairing.SessionOpts{DeviceID: d.id, DeviceSerial: "SN-" + d.id, IPAddress: "192.0.2.10", FirmwareVersion: "1.2.3", Signer: d.identity})
			if err != nil {
				b.Fatal(err)
			}
			d.sess, d.verified, d.finalSent = s, nil, make(chan struct{})
			req.Items = append(req.Items, tabletwire.PairingRequest{QR: string(s.QR().Marshal())})
		}
		body, _ := json.Marshal(req)
		b.StartTimer()
		start := time.Now()
		hr := httptest.NewRequest(http.MethodPost, "/v1/batches", bytes.NewReader(body))
		hr.Header.Set("Authorization", "Bearer "+tok.Token)
		w := httptest.NewRecorder()
		api.Handler().ServeHTTP(w, hr)
		if w.Code != http.StatusAccepted {
			b.Fatalf("batch: %d %s", w.Code, w.Body)
		}
		api.Wait()
		total += time.Since(start)
		b.StopTimer()
		var acc tabletwire.BatchAccepted
		json.Unmarshal(w.Body.Bytes(), &acc)
		_, ps, err := st.Batch(ctx, acc.BatchID)
		if err != nil {
			b.Fatal(err)
		}
		for _, p := range ps {
			if p.State != store.PairingSucceeded {
				b.Fatalf("pairing %s: %s %s %s", p.DeviceID, p.State, p.ResultCode, p.Detail)
			}
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(n*b.N)/total.Seconds(), "provisionings/s")
}
