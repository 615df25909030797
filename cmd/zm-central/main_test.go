package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zmonitor/firmware/internal/central/store"
	"github.com/zmonitor/firmware/internal/proto/pairing"
	"github.com/zmonitor/firmware/internal/proto/payload"
	"github.com/zmonitor/firmware/internal/proto/tabletwire"
)

func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

// initCentral creates a Central Station in a temp dir and returns it and
// the first technician's token.
func initCentral(t *testing.T) (string, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "central")
	code, out, errOut := runCLI(t, "init", "--dir", dir)
	if code != 0 {
		t.Fatalf("init: %d %s %s", code, out, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	tok := lines[len(lines)-1]
	if _, err := store.TechnicianIDOfToken(tok); err != nil {
		t.Fatalf("init did not print a token last: %q", out)
	}
	return dir, tok
}

func TestInit(t *testing.T) {
	dir, tok := initCentral(t)
	for _, k := range []string{deviceCAKey, provRootKey, provSignerKey, tabletKey} {
		fi, err := os.Stat(filepath.Join(dir, k))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v", k, fi.Mode(), err)
		}
	}
	if fi, _ := os.Stat(dir); fi.Mode().Perm() != 0o700 {
		t.Errorf("dir mode %v", fi.Mode())
	}
	// The database (inventory, token hashes) is its owner's only, as the
	// keys are; the certificates are public.
	for _, f := range []string{dbFile, dbFile + "-wal", dbFile + "-shm"} {
		if fi, err := os.Stat(filepath.Join(dir, f)); err == nil && fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", f, fi.Mode().Perm())
		} else if err != nil && f == dbFile {
			t.Error(err)
		}
	}
	root, err := loadPair(dir, provRootCert, provRootKey)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := loadPair(dir, provSignerCert, provSignerKey)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(root.cert)
	if _, err := signer.cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("signer is not a client certificate under the root: %v", err)
	}
	hasEKU := false
	for _, o := range signer.cert.UnknownExtKeyUsage {
		hasEKU = hasEKU || o.Equal(payload.SignerEKU)
	}
	if !hasEKU || signer.cert.IsCA {
		t.Errorf("signer lacks the provisioning-signer usage: %v", signer.cert.UnknownExtKeyUsage)
	}
	devCA, _ := loadCert(dir, deviceCACert)
	if !devCA.IsCA || devCA.NotAfter.Sub(devCA.NotBefore) < 9*365*24*time.Hour {
		t.Errorf("device CA: CA=%v validity %v", devCA.IsCA, devCA.NotAfter.Sub(devCA.NotBefore))
	}
	tablet, _ := loadCert(dir, tabletCert)
	pool := x509.NewCertPool()
	pool.AddCert(devCA)
	if _, err := tablet.Verify(x509.VerifyOptions{Roots: pool, DNSName: "localhost"}); err != nil {
		t.Errorf("tablet certificate: %v", err)
	}
	if code, _, errOut := runCLI(t, "init", "--dir", dir); code == 0 || !strings.Contains(errOut, "refusing to overwrite") {
		t.Errorf("second init: %d %s", code, errOut)
	}
	// An empty directory made beforehand, open to others, is closed.
	pre := filepath.Join(t.TempDir(), "pre")
	if err := os.Mkdir(pre, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(pre, 0o755)
	if code, _, errOut := runCLI(t, "init", "--dir", pre); code != 0 {
		t.Fatal(errOut)
	}
	if fi, _ := os.Stat(pre); fi.Mode().Perm() != 0o700 {
		t.Errorf("init in an existing empty directory left it %v", fi.Mode().Perm())
	}
	// The token works and only its hash is stored.
	st, err := store.Open(context.Background(), "sqlite:"+filepath.Join(dir, dbFile), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	id, _ := store.TechnicianIDOfToken(tok)
	tech, err := st.Technician(context.Background(), id)
	if err != nil || !store.TokenMatches(tech.TokenHash, tok) || tech.Name != "admin" {
		t.Errorf("technician %+v %v", tech, err)
	}
	db, _ := os.ReadFile(filepath.Join(dir, dbFile))
	if bytes.Contains(db, []byte(tok)) {
		t.Error("token stored in clear")
	}
	// A key readable by others is refused.
	os.Chmod(filepath.Join(dir, deviceCAKey), 0o644)
	if _, err := loadKey(dir, deviceCAKey); err == nil {
		t.Error("loaded a world-readable key")
	}
}

type enrolled struct {
	id  string
	key *ecdsa.PrivateKey
	rec map[string]string
}

func newEnrolled(t testing.TB, id string) enrolled {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	kd, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	pd, _ := x509.MarshalPKIXPublicKey(&p.PublicKey)
	return enrolled{id: id, key: k, rec: map[string]string{
		"deviceId": id, "deviceSerial": "SN-" + id, "firmwareVersion": "1.2.3",
		"identityPublicKey": base64.StdEncoding.EncodeToString(kd), "payloadPublicKey": base64.StdEncoding.EncodeToString(pd),
	}}
}

func TestInventoryCommands(t *testing.T) {
	dir, _ := initCentral(t)
	a, b, c := newEnrolled(t, "ZM-001"), newEnrolled(t, "ZM-002"), newEnrolled(t, "ZM-003")
	bad := newEnrolled(t, "ZM-004")
	bad.rec["payloadPublicKey"] = "AAAA"
	js, _ := json.Marshal([]map[string]string{a.rec, b.rec, bad.rec})
	jsonFile := filepath.Join(t.TempDir(), "batch.json")
	os.WriteFile(jsonFile, js, 0o644)
	csvFile := filepath.Join(t.TempDir(), "line.csv")
	os.WriteFile(csvFile, []byte(strings.Join(store.CSVHeader, ",")+"\n"+
		fmt.Sprintf("%s,%s,%s,%s,%s\n", c.rec["deviceId"], c.rec["deviceSerial"], c.rec["identityPublicKey"], c.rec["payloadPublicKey"], c.rec["firmwareVersion"])), 0o644)

	code, out, _ := runCLI(t, "devices", "import", "--dir", dir, jsonFile, csvFile)
	if code != 1 || !strings.Contains(out, "ZM-001: added") || !strings.Contains(out, "ZM-004: refused") || !strings.Contains(out, "ZM-003: added") || !strings.Contains(out, "3 added, 0 updated, 0 unchanged, 1 refused") {
		t.Errorf("import: %d\n%s", code, out)
	}
	if code, out, _ := runCLI(t, "devices", "import", "--dir", dir, csvFile); code != 0 || !strings.Contains(out, "ZM-003: unchanged") {
		t.Errorf("re-import: %d %s", code, out)
	}
	if code, out, _ := runCLI(t, "devices", "revoke", "--dir", dir, "ZM-002"); code != 0 || !strings.Contains(out, "revoked") {
		t.Errorf("revoke: %d %s", code, out)
	}
	if code, _, _ := runCLI(t, "devices", "label", "--dir", dir, "ZM-001", "ICU-MON-04"); code != 0 {
		t.Errorf("label: %d", code)
	}
	code, out, _ = runCLI(t, "devices", "list", "--dir", dir)
	if code != 0 || !strings.Contains(out, "ZM-001") || !strings.Contains(out, "ICU-MON-04") || !strings.Contains(out, "revoked") || strings.Count(out, "\n") != 4 {
		t.Errorf("list: %d\n%s", code, out)
	}
	code, out, _ = runCLI(t, "technicians", "add", "--dir", dir, "Grace")
	if code != 0 || !strings.Contains(out, "shown once") {
		t.Fatalf("technicians add: %d %s", code, out)
	}
	id, _ := store.TechnicianIDOfToken(strings.TrimSpace(out[strings.LastIndex(strings.TrimSpace(out), "\n")+1:]))
	if code, _, _ := runCLI(t, "technicians", "revoke", "--dir", dir, id); code != 0 {
		t.Errorf("technicians revoke %q: %d", id, code)
	}
	if code, out, _ := runCLI(t, "technicians", "list", "--dir", dir); code != 0 || !strings.Contains(out, "Grace") || !strings.Contains(out, "revoked") {
		t.Errorf("technicians list: %d %s", code, out)
	}
	code, out, _ = runCLI(t, "audit", "export", "--dir", dir)
	if code != 0 {
		t.Fatalf("audit export: %d", code)
	}
	var events []string
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var r store.AuditRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("audit line %q: %v", sc.Text(), err)
		}
		events = append(events, r.Event)
	}
	want := "central.init,technician.add,enrollment.link_created,device.import,device.import,device.import_refused,device.import,device.revoke,device.label,technician.add,technician.revoke"
	if got := strings.Join(events, ","); got != want {
		t.Errorf("audit events\n got %s\nwant %s", got, want)
	}
}

func TestUsage(t *testing.T) {
	for _, args := range [][]string{nil, {"nope"}, {"devices"}, {"devices", "revoke"}, {"init"}, {"serve", "--dir", "x"}} {
		if code, _, _ := runCLI(t, args...); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
	if code, out, _ := runCLI(t, "help"); code != 0 || !strings.Contains(out, "usage") {
		t.Errorf("help: %d", code)
	}
	if code, _, errOut := runCLI(t, "devices", "list", "--dir", t.TempDir()); code != 1 || !strings.Contains(errOut, "init") {
		t.Errorf("list without init: %d %s", code, errOut)
	}
}

func TestServe(t *testing.T) {
	dir, tok := initCentral(t)
	dev := newEnrolled(t, "ZM-001")
	js, _ := json.Marshal(dev.rec)
	f := filepath.Join(t.TempDir(), "d.json")
	os.WriteFile(f, js, 0o644)
	if code, out, _ := runCLI(t, "devices", "import", "--dir", dir, f); code != 0 {
		t.Fatalf("import: %s", out)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addrs := make(chan [2]string, 1)
	done := make(chan error, 1)
	var out, errb bytes.Buffer
	go func() {
		done <- cmdServe(ctx, []string{"--dir", dir, "--listen", "127.0.0.1:0", "--monitor-listen", "127.0.0.1:0",
			"--server-url", "https://localhost:9443", "--device-addr", "ZM-001=127.0.0.1:1"}, &out, &errb,
			func(l listening) { addrs <- [2]string{l.tablet, l.monitor} })
	}()
	var a [2]string
	select {
	case a = <-addrs:
	case err := <-done:
		t.Fatalf("serve ended: %v %s", err, errb.String())
	}
	devCA, _ := loadPair(dir, deviceCACert, deviceCAKey)
	pool := x509.NewCertPool()
	pool.AddCert(devCA.cert)

	// Tablet API: a scanned QR is accepted.
	sess, err := pairing.NewSession(time.Now(), time.Now(), pairing.SessionOpts{DeviceID: "ZM-001", DeviceSerial: "SN-ZM-001", IPAddress: "192.0.2.10", FirmwareVersion: "1.2.3", Signer: dev.key})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(tabletwire.PairingRequest{QR: string(sess.QR().Marshal())})
	req, _ := http.NewRequest(http.MethodPost, "https://"+a[0]+"/v1/pairings", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+tok)
	tablet := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "localhost"}}, Timeout: 30 * time.Second}
	resp, err := tablet.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST pairing: %d %s", resp.StatusCode, b)
	}
	var acc tabletwire.Accepted
	json.Unmarshal(b, &acc)

	// Stand-in monitoring server: a device certificate from the device CA.
	k, _ := newKey()
	leafTmpl := serverTemplate("ZM-001", nil, time.Now())
	leafTmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	leaf, err := issue(leafTmpl, &k.PublicKey, devCA.cert, devCA.key)
	if err != nil {
		t.Fatal(err)
	}
	mon := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "localhost", Certificates: []tls.Certificate{pair{leaf, k}.tls()}}}, Timeout: 30 * time.Second}
	mresp, err := mon.Get("https://" + a[1] + "/health")
	if err != nil {
		t.Fatal(err)
	}
	mb, _ := io.ReadAll(mresp.Body)
	mresp.Body.Close()
	if mresp.StatusCode != 200 || string(mb) != "ok" {
		t.Errorf("health: %d %q", mresp.StatusCode, mb)
	}

	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve: %v", err)
	}
	// Shutdown waited for the job: its outcome is recorded. The device is
	// unreachable (127.0.0.1:1), so the pusher failed to connect.
	st, err := store.Open(context.Background(), "sqlite:"+filepath.Join(dir, dbFile), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	p, err := st.Pairing(context.Background(), acc.PairingID)
	if err != nil || !p.State.Final() || p.State == store.PairingSucceeded {
		t.Errorf("pairing after shutdown: %+v %v", p, err)
	}
	if strings.Contains(errb.String(), tok) || strings.Contains(out.String(), tok) || strings.Contains(errb.String(), sess.Code().Display()) {
		t.Error("serve logged a secret")
	}
}
