package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestServeOpsAndJSONLogs: --ops-listen serves /healthz, /readyz and
// /metrics without a token; with --log-format json every line on standard
// error is a JSON object, net/http's own complaints (a TLS handshake that
// is not one) included; the DSN comes from ZM_CENTRAL_DB.
func TestServeOpsAndJSONLogs(t *testing.T) {
	dir, _ := initCentral(t)
	t.Setenv(envDB, "sqlite:"+dir+"/"+dbFile)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan listening, 1)
	done := make(chan error, 1)
	var out, errb syncBuffer
	go func() {
		done <- cmdServe(ctx, []string{"--dir", dir, "--listen", "127.0.0.1:0", "--monitor-listen", "127.0.0.1:0",
			"--ops-listen", "127.0.0.1:0", "--log-format", "json"}, &out, &errb, func(l listening) { ready <- l })
	}()
	var l listening
	select {
	case l = <-ready:
	case err := <-done:
		t.Fatalf("serve ended: %v %s", err, errb.String())
	}
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get("http://" + l.ops + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("/healthz: %d %q", code, body)
	}
	if code, body := get("/readyz"); code != 200 || body != "ready\n" {
		t.Errorf("/readyz: %d %q", code, body)
	}
	code, metrics := get("/metrics")
	for _, want := range []string{"zm_central_pairings_in_flight 0", "zm_central_pairings_in_flight_limit 256", "go_goroutines", "process_open_fds"} {
		if code != 200 || !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q (%d)", want, code)
		}
	}
	// Not TLS at all: net/http logs a handshake error.
	c, err := net.Dial("tcp", l.tablet)
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("\x16\x03\x01\x00\x04junk"))
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	io.Copy(io.Discard, c) // the server hangs up after logging
	c.Close()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(errb.String()), "\n")
	handshake := false
	for _, line := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Errorf("stderr line is not JSON: %q", line)
			continue
		}
		handshake = handshake || strings.Contains(line, "TLS handshake error")
	}
	if !handshake {
		t.Errorf("the TLS handshake error was not logged as JSON: %s", errb.String())
	}
}

// TestPasswordNotOnTheCommandLine: a DSN with a password is refused as a
// flag (ps shows it), accepted from ZM_CENTRAL_DB.
func TestPasswordNotOnTheCommandLine(t *testing.T) {
	for _, dsn := range []string{"postgres://zm:secret@db.hospital.example/central", "postgres:host=db user=zm password=secret dbname=central", "postgres://zm@db/central?password=secret"} {
		code, _, errOut := runCLI(t, "devices", "list", "--db", dsn)
		if code != 2 || !strings.Contains(errOut, "--db carries a password") || strings.Contains(errOut, "secret") {
			t.Errorf("--db %q: exit %d %q", dsn, code, errOut)
		}
	}
	t.Setenv(envDB, "postgres://zm:secret@127.0.0.1:1/central?connect_timeout=1")
	code, _, errOut := runCLI(t, "devices", "list")
	if code != 1 || strings.Contains(errOut, "carries a password") {
		t.Errorf("from %s: exit %d %q (want a connection failure, not a usage refusal)", envDB, code, errOut)
	}
}
