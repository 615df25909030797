package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zmonitor/firmware/internal/central/store"
	"github.com/zmonitor/firmware/internal/central/web"
)

// TestInitMakesAnOperatorWithAnEnrollmentLink: the bootstrap person is an
// operator, with a one-time enrollment link for the default origin
// (https://localhost:8443) and its QR code as a PNG only the owner reads.
func TestInitMakesAnOperatorWithAnEnrollmentLink(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "central")
	code, out, errOut := runCLI(t, "init", "--dir", dir, "--technician", "Olga")
	if code != 0 {
		t.Fatalf("init: %d %s", code, errOut)
	}
	if !strings.Contains(out, "\nhttps://localhost:8443/enroll#e-") {
		t.Errorf("init printed no enrollment link:\n%s", out)
	}
	st, err := store.Open(context.Background(), "sqlite:"+filepath.Join(dir, dbFile), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ts, _ := st.Technicians(context.Background())
	if len(ts) != 1 || ts[0].Role != store.RoleOperator || ts[0].Name != "Olga" {
		t.Fatalf("technicians %+v, want the operator Olga", ts)
	}
	fi, err := os.Stat(filepath.Join(dir, "enroll-"+ts[0].ID+".png"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("enrollment QR PNG: %v %v", fi, err)
	}
	// IP addresses only: no link (passkeys need a DNS name), said so.
	dir2 := filepath.Join(t.TempDir(), "central2")
	if code, out, _ := runCLI(t, "init", "--dir", dir2, "--hosts", "10.1.2.3"); code != 0 || !strings.Contains(out, "no enrollment link") {
		t.Errorf("init with an IP only: %d\n%s", code, out)
	}
	if code, _, errOut := runCLI(t, "init", "--dir", filepath.Join(t.TempDir(), "c3"), "--origin", "https://10.1.2.3:8443"); code != 2 || !strings.Contains(errOut, "not an IP address") {
		t.Errorf("init --origin with an IP: %d %s", code, errOut)
	}
}

// TestTechniciansAndPasskeysCommands: add with --enroll and a role, a
// second link, list, passkeys list and revoke (the tablet's session ends),
// revoking a technician revokes their passkeys.
func TestTechniciansAndPasskeysCommands(t *testing.T) {
	dir, _ := initCentral(t)
	code, out, errOut := runCLI(t, "technicians", "add", "--dir", dir, "--enroll", "--origin", "https://central.icu.example:8443", "Grace")
	if code != 0 {
		t.Fatalf("add --enroll: %d %s", code, errOut)
	}
	if !strings.Contains(out, "https://central.icu.example:8443/enroll#e-") || strings.Contains(out, "token, shown once") || !strings.Contains(out, "█") {
		t.Errorf("add --enroll printed:\n%s\nwant the link and its QR code, no token", out)
	}
	ctx := context.Background()
	st, err := store.Open(ctx, "sqlite:"+filepath.Join(dir, dbFile), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var grace store.Technician
	ts, _ := st.Technicians(ctx)
	for _, x := range ts {
		if x.Name == "Grace" {
			grace = x
		}
	}
	if grace.Role != store.RoleTechnician {
		t.Fatalf("Grace: %+v", grace)
	}
	if code, out, _ := runCLI(t, "technicians", "add", "--dir", dir, "--role", "operator", "Olga"); code != 0 || !strings.Contains(out, "operator") || !strings.Contains(out, "token, shown once") {
		t.Errorf("add --role operator: %d\n%s", code, out)
	}
	if code, _, errOut := runCLI(t, "technicians", "add", "--dir", dir, "--role", "admin", "X"); code != 2 || !strings.Contains(errOut, "unknown role") {
		t.Errorf("add --role admin: %d %s", code, errOut)
	}
	if code, _, errOut := runCLI(t, "technicians", "enroll", "--dir", dir, "--origin", "https://192.0.2.1", grace.ID); code != 2 || !strings.Contains(errOut, "DNS name") {
		t.Errorf("enroll with an IP origin: %d %s", code, errOut)
	}
	// Two tablets: two links, two passkeys (registered as the web app does).
	for i, kid := range []string{"k-00000000000000a1", "k-00000000000000a2"} {
		code, out, _ := runCLI(t, "technicians", "enroll", "--dir", dir, "--no-qr", grace.ID)
		if code != 0 || strings.Contains(out, "█") {
			t.Fatalf("enroll: %d\n%s", code, out)
		}
		tok := out[strings.Index(out, "#")+1:]
		tok = tok[:strings.IndexByte(tok, '\n')]
		id, err := store.EnrollmentSecret.IDOf(tok)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.RedeemEnrollmentLink(ctx, id, store.Passkey{ID: kid, TechnicianID: grace.ID, CredentialID: []byte{byte(i)}, Credential: []byte("{}"), Name: "tablet"}); err != nil {
			t.Fatal(err)
		}
	}
	sec, _ := store.SessionSecret.New(nil)
	if err := st.CreateWebSession(ctx, store.WebSession{ID: sec.ID, Hash: sec.Hash, TechnicianID: grace.ID, PasskeyID: "k-00000000000000a1"}); err != nil {
		t.Fatal(err)
	}
	if code, out, _ := runCLI(t, "technicians", "list", "--dir", dir); code != 0 || !strings.Contains(out, "ROLE") || !regexpLine(out, grace.ID, "Grace", "technician", "2") {
		t.Errorf("technicians list:\n%s", out)
	}
	if code, out, _ := runCLI(t, "passkeys", "list", "--dir", dir, "--technician", grace.ID); code != 0 || strings.Count(out, "k-00000000000000a") != 2 {
		t.Errorf("passkeys list:\n%s", out)
	}
	if code, out, errOut := runCLI(t, "passkeys", "revoke", "--dir", dir, "k-00000000000000a1"); code != 0 || !strings.Contains(out, "revoked") {
		t.Fatalf("passkeys revoke: %d %s %s", code, out, errOut)
	}
	if ws, _ := st.WebSession(ctx, sec.ID); !ws.Ended() {
		t.Error("revoking the passkey left its tablet's session")
	}
	if k, _ := st.Passkey(ctx, "k-00000000000000a2"); k.Revoked() {
		t.Error("revoking one passkey revoked the other")
	}
	if code, _, _ := runCLI(t, "technicians", "revoke", "--dir", dir, grace.ID); code != 0 {
		t.Fatal("technicians revoke failed")
	}
	if k, _ := st.Passkey(ctx, "k-00000000000000a2"); !k.Revoked() {
		t.Error("revoking the technician left a passkey")
	}
	var events []string
	st.ExportAudit(ctx, func(r store.AuditRecord) error { events = append(events, r.Event); return nil })
	for _, want := range []string{"enrollment.link_created", "technician.role", "passkey.revoked", "technician.revoke"} {
		if !strings.Contains(strings.Join(events, ","), want) {
			t.Errorf("audit has no %s: %v", want, events)
		}
	}
}

func regexpLine(out string, words ...string) bool {
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		ok := len(f) >= len(words)
		for i, w := range words {
			ok = ok && f[i] == w
		}
		if ok {
			return true
		}
	}
	return false
}

// TestServeServesTheWebApp: serve answers the web app's pages (TLS 1.3,
// the CSP) next to the API, on the default origin https://localhost:PORT;
// an --origin with an IP address or a --rp-id that is not the origin's is
// refused.
func TestServeServesTheWebApp(t *testing.T) {
	dir, _ := initCentral(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addrs := make(chan string, 1)
	done := make(chan error, 1)
	var out, errb bytes.Buffer
	go func() {
		done <- cmdServe(ctx, []string{"--dir", dir, "--listen", "127.0.0.1:0", "--server-url", "https://monitor.example:9443"}, &out, &errb, func(l listening) { addrs <- l.tablet })
	}()
	var addr string
	select {
	case addr = <-addrs:
	case err := <-done:
		t.Fatalf("serve: %v %s", err, errb.String())
	}
	devCA, _ := loadCert(dir, deviceCACert)
	pool := x509.NewCertPool()
	pool.AddCert(devCA)
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "localhost"}}, Timeout: time.Minute}
	port := addr[strings.LastIndexByte(addr, ':')+1:]
	req, _ := http.NewRequest(http.MethodGet, "https://"+addr+"/sign-in", nil)
	req.Host = "localhost:" + port
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Security-Policy") != web.ContentSecurityPolicy || resp.TLS.Version != tls.VersionTLS13 {
		t.Errorf("GET /sign-in: %d, CSP %q, TLS %x", resp.StatusCode, resp.Header.Get("Content-Security-Policy"), resp.TLS.Version)
	}
	if !strings.Contains(out.String(), "web app on https://localhost:"+port) {
		t.Errorf("serve said:\n%s", out.String())
	}
	// TLS 1.2 is refused.
	old := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "localhost", MaxVersion: tls.VersionTLS12}}}
	if _, err := old.Get("https://" + addr + "/sign-in"); err == nil {
		t.Error("a TLS 1.2 client was served")
	}
	cancel()
	<-done
	for _, bad := range [][]string{{"--origin", "https://127.0.0.1:8443"}, {"--origin", "https://localhost", "--rp-id", "example.org"}} {
		args := append([]string{"--dir", dir, "--listen", "127.0.0.1:0", "--server-url", "https://m.example"}, bad...)
		if err := cmdServe(context.Background(), args, &out, &errb, nil); err == nil {
			t.Errorf("serve %v started", bad)
		}
	}
}
