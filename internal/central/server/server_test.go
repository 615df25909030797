package server

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"math/big"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zmonitor/firmware/internal/central/job"
	"github.com/zmonitor/firmware/internal/central/store"
	"github.com/zmonitor/firmware/internal/proto/failure"
	"github.com/zmonitor/firmware/internal/proto/pairing"
	"github.com/zmonitor/firmware/internal/proto/state"
	"github.com/zmonitor/firmware/internal/proto/tabletwire"
)

func TestAuthentication(t *testing.T) {
	e := newEnv(t, nil, nil)
	d := e.enroll("ZM-001")
	body := tabletwire.PairingRequest{QR: d.qr(t, t0)}
	revoked := e.addTechnician("Bob")
	if err := e.st.RevokeTechnician(context.Background(), revoked.ID); err != nil {
		t.Fatal(err)
	}
	other, _ := store.NewTechnicianToken(nil) // never added
	wrongSecret := e.techs["Ada"].ID + "." + strings.Repeat("A", 43)
	for name, tok := range map[string]string{
		"missing":       "",
		"malformed":     "hello",
		"wrong secret":  wrongSecret,
		"unknown":       other.Token,
		"revoked":       revoked.Token,
		"basic instead": "",
	} {
		req := e.do(http.MethodPost, "/v1/pairings", tok, body)
		wantRefusal(t, req, Unauthorized)
		if req.Header().Get("WWW-Authenticate") == "" {
			t.Errorf("%s: no WWW-Authenticate", name)
		}
	}
	if n := e.prov.callCount(); n != 0 {
		t.Errorf("provisioner called %d times for refused requests", n)
	}
	if w := e.do(http.MethodGet, "/v1/pairings/p-x", "", nil); w.Code != http.StatusUnauthorized {
		t.Errorf("GET without token: %d", w.Code)
	}
	// The token was not consumed by the refused requests.
	if w := e.do(http.MethodPost, "/v1/pairings", e.token, body); w.Code != http.StatusAccepted {
		t.Fatalf("valid token: %d %s", w.Code, w.Body)
	}
}

func TestQRPairingSucceeds(t *testing.T) {
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(77), Subject: pkix.Name{CommonName: "ZM-001"}, NotBefore: t0, NotAfter: t0.Add(time.Hour)}
	certDER, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &caKey.PublicKey, caKey)
	prov := &fakeProv{result: func(job.Job) (job.Outcome, error) {
		return job.Outcome{State: state.Provisioned.String(), CertificateDER: certDER}, nil
	}}
	e := newEnv(t, prov, func(c *Config) {
		c.DeviceAddr = func(id, ip string) string { return "127.0.0.1:40000" }
	})
	d := e.enroll("ZM-001")
	if err := e.st.SetDeviceLabel(context.Background(), "ZM-001", "ICU-MON-04"); err != nil {
		t.Fatal(err)
	}
	sess := d.session(t, t0)
	w := e.do(http.MethodPost, "/v1/pairings", e.token, tabletwire.PairingRequest{QR: string(sess.QR().Marshal())})
	if w.Code != http.StatusAccepted {
		t.Fatalf("POST: %d %s", w.Code, w.Body)
	}
	acc := decode[tabletwire.Accepted](t, w)
	if !strings.HasPrefix(acc.PairingID, "p-") || acc.DeviceID != "ZM-001" || acc.State != "queued" {
		t.Errorf("accepted = %+v", acc)
	}
	e.srv.Wait()
	v := e.pairing(acc.PairingID)
	if v.State != "succeeded" || !v.Final || v.Result != nil || v.DeviceState != "APPLYING_CONFIG" || v.Method != "qr" || v.FinishedAt == nil || v.Label != "ICU-MON-04" {
		t.Errorf("view = %+v", v)
	}
	if len(prov.calls) != 1 {
		t.Fatalf("%d calls", len(prov.calls))
	}
	j := prov.calls[0]
	if j.Address != "127.0.0.1:40000" || j.Token != sess.QR().PairingToken || j.PairingCode != sess.Code().Display() ||
		!j.IdentityKey.Equal(&d.key.PublicKey) || j.Label != "ICU-MON-04" || j.PairingID != acc.PairingID {
		t.Errorf("job = %+v", j)
	}
	certs, err := e.st.Certificates(context.Background(), "ZM-001")
	// The fake reports its certificate only in the Outcome (no
	// Job.Issued call): it is recorded all the same.
	if err != nil || len(certs) != 1 || certs[0].PairingID != acc.PairingID || certs[0].State != store.CertificateInUse {
		t.Errorf("certificates = %+v, %v", certs, err)
	}
	var events []string
	var all strings.Builder
	e.st.ExportAudit(context.Background(), func(r store.AuditRecord) error {
		events = append(events, r.Event)
		json.NewEncoder(&all).Encode(r)
		return nil
	})
	if strings.Join(events, ",") != "pairing.accepted,certificate.issued,certificate.in_use,pairing.succeeded" {
		t.Errorf("audit events %v", events)
	}
	for _, secret := range []string{sess.Code().Display(), sess.QR().PairingToken, e.token} {
		if strings.Contains(all.String(), secret) {
			t.Errorf("audit holds a secret: %s", all.String())
		}
	}
}

func TestDefaultDeviceAddress(t *testing.T) {
	e := newEnv(t, nil, func(c *Config) { c.DevicePort = 9444 })
	d := e.enroll("ZM-001")
	if w := e.do(http.MethodPost, "/v1/pairings", e.token, tabletwire.PairingRequest{QR: d.qr(t, t0)}); w.Code != http.StatusAccepted {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	e.srv.Wait()
	if got := e.prov.calls[0].Address; got != "192.0.2.10:9444" {
		t.Errorf("address %q", got)
	}
}

func TestRefusals(t *testing.T) {
	e := newEnv(t, nil, func(c *Config) { c.TrustDeviceClock = true })
	ctx := context.Background()
	d := e.enroll("ZM-001")
	rev := e.enroll("ZM-002")
	if err := e.st.RevokeDevice(ctx, "ZM-002"); err != nil {
		t.Fatal(err)
	}
	stranger := &testDevice{id: "ZM-404", key: d.key}
	impostor := &testDevice{id: "ZM-001"}
	impostor.key, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)

	tampered := d.session(t, t0).QR()
	tampered.IPAddress = "192.0.2.99" // signed for another address
	wrongSerial := d.session(t, t0).QR()
	wrongSerial.DeviceSerial = "SN-OTHER"
	wrongSerial.PairingToken, _ = pairing.SignToken(d.key, rand.Reader, wrongSerial)
	badTok := d.session(t, t0).QR()
	badTok.PairingToken = strings.Repeat("A", pairing.TokenChars) // r = s = 0
	expired := d.session(t, t0.Add(-time.Hour)).QR()
	code := d.session(t, t0).Code().Display()

	cases := []struct {
		name string
		body any
		want Refusal
	}{
		{"unknown device", tabletwire.PairingRequest{QR: stranger.qr(t, t0)}, DeviceUnknown},
		{"revoked device", tabletwire.PairingRequest{QR: rev.qr(t, t0)}, DeviceRevoked},
		{"not a QR", tabletwire.PairingRequest{QR: "https://example.com"}, QRInvalid},
		{"QR with an extra field", tabletwire.PairingRequest{QR: strings.Replace(d.qr(t, t0), "{", `{"x":"1",`, 1)}, QRInvalid},
		{"tampered QR", tabletwire.PairingRequest{QR: string(tampered.Marshal())}, TokenSignatureInvalid},
		{"token by another key", tabletwire.PairingRequest{QR: impostor.qr(t, t0)}, TokenSignatureInvalid},
		{"zero signature", tabletwire.PairingRequest{QR: string(badTok.Marshal())}, TokenSignatureInvalid},
		{"serial not the inventory's", tabletwire.PairingRequest{QR: string(wrongSerial.Marshal())}, QRInvalid},
		{"expired", tabletwire.PairingRequest{QR: string(expired.Marshal())}, QRExpired},
		{"code typo", tabletwire.PairingRequest{DeviceID: "ZM-001", Address: "192.0.2.10", PairingCode: code[:len(code)-1] + typo(code[len(code)-1])}, CodeInvalid},
		{"code too short", tabletwire.PairingRequest{DeviceID: "ZM-001", Address: "192.0.2.10", PairingCode: "ABC-123"}, CodeInvalid},
		{"bad address", tabletwire.PairingRequest{DeviceID: "ZM-001", Address: "192.0.2.10:99999", PairingCode: code}, AddressInvalid},
		{"manual unknown device", tabletwire.PairingRequest{DeviceID: "ZM-404", Address: "192.0.2.10", PairingCode: code}, DeviceUnknown},
		{"manual malformed device ID", tabletwire.PairingRequest{DeviceID: "ZM/001", Address: "192.0.2.10", PairingCode: code}, DeviceUnknown},
		{"label with a newline", tabletwire.PairingRequest{QR: d.qr(t, t0), Label: "ICU\nMON"}, BadRequest},
		{"label with a C1 control", tabletwire.PairingRequest{QR: d.qr(t, t0), Label: "ICU\u0085"}, BadRequest},
		{"both paths", tabletwire.PairingRequest{QR: d.qr(t, t0), DeviceID: "ZM-001"}, BadRequest},
		{"manual incomplete", tabletwire.PairingRequest{DeviceID: "ZM-001"}, BadRequest},
		{"unknown JSON field", `{"qr":"x","extra":1}`, BadRequest},
		{"member name in another case", `{"QR":` + jsonString(d.qr(t, t0)) + `}`, BadRequest},
		{"member named twice", `{"qr":` + jsonString(d.qr(t, t0)) + `,"qr":"x"}`, BadRequest},
		{"null member", `{"qr":` + jsonString(d.qr(t, t0)) + `,"label":null}`, BadRequest},
		{"trailing JSON", `{"qr":"x"} {}`, BadRequest},
		{"too large", `{"qr":"` + strings.Repeat("x", tabletwire.MaxPairingRequest) + `"}`, BadRequest},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := e.do(http.MethodPost, "/v1/pairings", e.token, c.body)
			er := wantRefusal(t, w, c.want)
			if er.Error.Action == "" && c.want != NotFound {
				t.Errorf("no user action: %+v", er.Error)
			}
			if code != "" && strings.Contains(w.Body.String(), code) {
				t.Errorf("refusal repeats the pairing code: %s", w.Body)
			}
			if er.PairingID != "" {
				if v := e.pairing(er.PairingID); v.State != "refused" || v.Result == nil || v.Result.Code != c.want.String() {
					t.Errorf("recorded refusal = %+v", v)
				}
			} else {
				t.Errorf("refusal %s not recorded", c.want)
			}
		})
	}
	if n := e.prov.callCount(); n != 0 {
		t.Errorf("provisioner called %d times", n)
	}
}

// TestRefusalRecordsOnlyADeviceID: a refused request is recorded under
// the device it names only when that is a device ID (internal/proto/ident):
// whatever else a request carries stays out of the pairing records and the
// audit trail.
func TestRefusalRecordsOnlyADeviceID(t *testing.T) {
	e := newEnv(t, nil, nil)
	for _, id := range []string{"ZM-001\n\x1b[2J", strings.Repeat("Z", 40)} {
		w := e.do(http.MethodPost, "/v1/pairings", e.token, tabletwire.PairingRequest{DeviceID: id}) // no address: refused
		er := wantRefusal(t, w, BadRequest)
		if er.PairingID == "" {
			t.Fatalf("%q: refusal not recorded", id)
		}
		if v := e.pairing(er.PairingID); v.DeviceID != "" {
			t.Errorf("%q: recorded under device %q", id, v.DeviceID)
		}
	}
	w := e.do(http.MethodPost, "/v1/pairings", e.token, tabletwire.PairingRequest{DeviceID: "ZM-001"})
	if v := e.pairing(wantRefusal(t, w, BadRequest).PairingID); v.DeviceID != "ZM-001" {
		t.Errorf("a valid device ID is recorded as %q", v.DeviceID)
	}
	err := e.st.ExportAudit(context.Background(), func(r store.AuditRecord) error {
		if strings.ContainsAny(r.DeviceID+r.Detail, "\n\x1b") || len(r.DeviceID) > 32 {
			t.Errorf("audit record %+v", r)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// typo returns a different letter from the code alphabet.
func typo(b byte) string {
	if b == 'A' {
		return "B"
	}
	return "A"
}

func TestExpiryIgnoredWhenDeviceClockUntrusted(t *testing.T) {
	e := newEnv(t, nil, nil)
	d := e.enroll("ZM-001")
	if w := e.do(http.MethodPost, "/v1/pairings", e.token, tabletwire.PairingRequest{QR: d.qr(t, t0.Add(-24*time.Hour))}); w.Code != http.StatusAccepted {
		t.Errorf("QR with an old expiresAt refused although the device clock is not trusted: %d %s", w.Code, w.Body)
	}
}

func TestTokenReplaySequential(t *testing.T) {
	e := newEnv(t, nil, nil)
	d := e.enroll("ZM-001")
	sess := d.session(t, t0)
	body := tabletwire.PairingRequest{QR: string(sess.QR().Marshal())}
	if w := e.do(http.MethodPost, "/v1/pairings", e.token, body); w.Code != http.StatusAccepted {
		t.Fatalf("first: %d %s", w.Code, w.Body)
	}
	wantRefusal(t, e.do(http.MethodPost, "/v1/pairings", e.token, body), TokenAlreadyUsed)
	// The next QR of the same session carries the same (now used) code.
	if err := sess.Rotate(t0.Add(pairing.DefaultRotation)); err != nil {
		t.Fatal(err)
	}
	wantRefusal(t, e.do(http.MethodPost, "/v1/pairings", e.token, tabletwire.PairingRequest{QR: string(sess.QR().Marshal())}), CodeAlreadyUsed)
	// And typing that code is refused too.
	wantRefusal(t, e.do(http.MethodPost, "/v1/pairings", e.token, tabletwire.PairingRequest{DeviceID: "ZM-001", Address: "192.0.2.10", PairingCode: sess.Code().Display()}), CodeAlreadyUsed)
	e.srv.Wait()
	if n := e.prov.callCount(); n != 1 {
		t.Errorf("provisioner called %d times, want 1", n)
	}
}

func TestTokenReplayRace(t *testing.T) {
	prov := &fakeProv{}
	e := newEnv(t, prov, nil)
	d := e.enroll("ZM-001")
	body := tabletwire.PairingRequest{QR: d.qr(t, t0)}
	const n = 8
	codes := make([]int, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			codes[i] = e.do(http.MethodPost, "/v1/pairings", e.token, body).Code
		}()
	}
	close(start)
	wg.Wait()
	e.srv.Wait()
	accepted := 0
	for _, c := range codes {
		switch c {
		case http.StatusAccepted:
			accepted++
		case http.StatusConflict:
		default:
			t.Errorf("status %d", c)
		}
	}
	if accepted != 1 || prov.callCount() != 1 {
		t.Errorf("%d accepted, %d reached the provisioner; want exactly 1", accepted, prov.callCount())
	}
}

func TestManualPath(t *testing.T) {
	e := newEnv(t, nil, nil)
	d := e.enroll("ZM-001")
	code := d.session(t, t0).Code().Display()
	typed := strings.ToLower(strings.ReplaceAll(code, "-", " "))
	w := e.do(http.MethodPost, "/v1/pairings", e.token, tabletwire.PairingRequest{DeviceID: "ZM-001", Address: "10.0.0.5", PairingCode: typed, Label: "ICU-2"})
	if w.Code != http.StatusAccepted {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	e.srv.Wait()
	j := e.prov.calls[0]
	if j.Token != "" || j.PairingCode != code || j.Address != "10.0.0.5:8444" || j.Label != "ICU-2" {
		t.Errorf("job = %+v", j)
	}
	if v := e.pairing(decode[tabletwire.Accepted](t, w).PairingID); v.Method != "manual" || v.State != "succeeded" {
		t.Errorf("view = %+v", v)
	}
}

func TestDeviceAddress(t *testing.T) {
	good := map[string]string{
		"10.0.0.5":           "10.0.0.5:8444",
		"10.0.0.5:9000":      "10.0.0.5:9000",
		"[fe80::1]:9000":     "[fe80::1]:9000",
		"2001:db8::1":        "[2001:db8::1]:8444",
		"zm-001.ward4.local": "zm-001.ward4.local:8444",
		"monitor:1":          "monitor:1",
	}
	for in, want := range good {
		if got, err := deviceAddress(in, 8444); err != nil || got != want {
			t.Errorf("deviceAddress(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0.0.0.0", "10.0.0.5:0", "10.0.0.5:65536", "10.0.0.5:+80", "a b", "-x.local", "fe80::1%eth0", "x:y:z", "10.0.0.5:08"} {
		if got, err := deviceAddress(in, 8444); err == nil {
			t.Errorf("deviceAddress(%q) = %q, accepted", in, got)
		}
	}
}

func FuzzDeviceAddress(f *testing.F) {
	for _, s := range []string{"10.0.0.5", "[::1]:80", "host:8444", "", "a..b", "1.2.3.4:99999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := deviceAddress(s, 8444)
		if err != nil {
			return
		}
		if _, _, err := splitHostPortStrict(got); err != nil {
			t.Fatalf("deviceAddress(%q) = %q: %v", s, got, err)
		}
	})
}

func splitHostPortStrict(s string) (string, string, error) {
	h, p, err := netSplit(s)
	if err == nil && (h == "" || p == "") {
		err = errors.New("empty part")
	}
	return h, p, err
}

func TestDeviceFailuresRecorded(t *testing.T) {
	cases := []struct {
		name   string
		result func(job.Job) (job.Outcome, error)
		code   failure.Code
	}{
		{"device refused code", func(job.Job) (job.Outcome, error) {
			return job.Outcome{State: state.ProvisioningFailed.String(), Code: failure.PairingCodeMismatch, Message: "pairing code mismatch"}, nil
		}, failure.PairingCodeMismatch},
		{"unreachable", func(job.Job) (job.Outcome, error) {
			return job.Outcome{}, failure.New(failure.ConnectionFailed, "connect", errors.New("connection refused"))
		}, failure.ConnectionFailed},
		{"plain error", func(job.Job) (job.Outcome, error) { return job.Outcome{}, errors.New("boom") }, failure.Internal},
		{"final state without code", func(job.Job) (job.Outcome, error) {
			return job.Outcome{State: state.ProvisioningFailed.String()}, nil
		}, failure.Internal},
		{"panic", func(job.Job) (job.Outcome, error) { panic("bug") }, failure.Internal},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, &fakeProv{result: c.result}, nil)
			d := e.enroll("ZM-001")
			w := e.do(http.MethodPost, "/v1/pairings", e.token, tabletwire.PairingRequest{QR: d.qr(t, t0)})
			if w.Code != http.StatusAccepted {
				t.Fatalf("%d %s", w.Code, w.Body)
			}
			e.srv.Wait()
			v := e.pairing(decode[tabletwire.Accepted](t, w).PairingID)
			if v.State != "failed" || v.Result == nil || v.Result.Code != c.code.String() || v.Result.Action != c.code.UserAction() {
				t.Errorf("view = %+v result %+v", v, v.Result)
			}
		})
	}
}

func TestBusyBurnsNoToken(t *testing.T) {
	prov := &fakeProv{gate: make(chan struct{}), entered: make(chan string, 4)}
	e := newEnv(t, prov, func(c *Config) { c.MaxInFlight = 1 })
	a, b := e.enroll("ZM-001"), e.enroll("ZM-002")
	if w := e.do(http.MethodPost, "/v1/pairings", e.token, tabletwire.PairingRequest{QR: a.qr(t, t0)}); w.Code != http.StatusAccepted {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	<-prov.entered
	qrB := b.qr(t, t0)
	wantRefusal(t, e.do(http.MethodPost, "/v1/pairings", e.token, tabletwire.PairingRequest{QR: qrB}), Busy)
	close(prov.gate)
	e.srv.Wait()
	if w := e.do(http.MethodPost, "/v1/pairings", e.token, tabletwire.PairingRequest{QR: qrB}); w.Code != http.StatusAccepted {
		t.Errorf("the QR refused while busy was burnt: %d %s", w.Code, w.Body)
	}
	<-prov.entered
	e.srv.Wait()
}

func TestBatch(t *testing.T) {
	const devices, conc = 10, 4
	prov := &fakeProv{gate: make(chan struct{}), entered: make(chan string, devices)}
	e := newEnv(t, prov, func(c *Config) { c.BatchConcurrency = conc })
	var items []tabletwire.PairingRequest
	for i := range devices {
		d := e.enroll("ZM-" + string(rune('A'+i)))
		items = append(items, tabletwire.PairingRequest{QR: d.qr(t, t0)})
	}
	items = append(items, tabletwire.PairingRequest{DeviceID: "ZM-404", Address: "10.0.0.1", PairingCode: "ABC-123-ABC"})
	items = append(items, items[0]) // the same QR twice in one batch
	w := e.do(http.MethodPost, "/v1/batches", e.token, tabletwire.BatchRequest{Items: items})
	if w.Code != http.StatusAccepted {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	res := decode[tabletwire.BatchAccepted](t, w)
	if len(res.Items) != len(items) {
		t.Fatalf("%d results", len(res.Items))
	}
	for i, it := range res.Items {
		wantErr := ""
		switch i {
		case devices:
			wantErr = CodeInvalid.String()
		case devices + 1:
			wantErr = TokenAlreadyUsed.String()
		}
		got := ""
		if it.Error != nil {
			got = it.Error.Code
		}
		if got != wantErr || it.Index != i || it.PairingID == "" {
			t.Errorf("item %d = %+v, want error %q", i, it, wantErr)
		}
	}
	// Exactly conc jobs start; the others wait for a free place.
	for range conc {
		<-prov.entered
	}
	mid := decode[tabletwire.BatchView](t, e.do(http.MethodGet, "/v1/batches/"+res.BatchID, e.token, nil))
	if mid.Done || mid.Counts["refused"] != 2 || mid.Counts["queued"]+mid.Counts["running"] != devices {
		t.Errorf("batch while running = %+v", mid.Counts)
	}
	close(prov.gate)
	e.srv.Wait()
	if prov.max != conc {
		t.Errorf("max in flight %d, want %d", prov.max, conc)
	}
	v := decode[tabletwire.BatchView](t, e.do(http.MethodGet, "/v1/batches/"+res.BatchID, e.token, nil))
	if !v.Done || v.Counts["succeeded"] != devices || v.Counts["refused"] != 2 || len(v.Pairings) != len(items) || v.Size != len(items) {
		t.Errorf("batch = %+v", v)
	}
	for _, bad := range []any{tabletwire.BatchRequest{}, `{"items":[{"qr":"x","y":1}]}`} {
		wantRefusal(t, e.do(http.MethodPost, "/v1/batches", e.token, bad), BadRequest)
	}
	wantRefusal(t, e.do(http.MethodGet, "/v1/batches/b-nope", e.token, nil), NotFound)
	wantRefusal(t, e.do(http.MethodGet, "/v1/pairings/p-nope", e.token, nil), NotFound)
}

func TestCloseRecordsQueuedBatchJobs(t *testing.T) {
	prov := &fakeProv{gate: make(chan struct{}), entered: make(chan string, 3)}
	e := newEnv(t, prov, func(c *Config) { c.BatchConcurrency = 1 })
	var items []tabletwire.PairingRequest
	for i := range 3 {
		items = append(items, tabletwire.PairingRequest{QR: e.enroll("ZM-"+string(rune('A'+i))).qr(t, t0)})
	}
	res := decode[tabletwire.BatchAccepted](t, e.do(http.MethodPost, "/v1/batches", e.token, tabletwire.BatchRequest{Items: items}))
	<-prov.entered
	e.srv.Close() // cancels the running job; the queued ones never start
	v := decode[tabletwire.BatchView](t, e.do(http.MethodGet, "/v1/batches/"+res.BatchID, e.token, nil))
	if !v.Done || v.Counts["failed"] != 3 {
		t.Errorf("after Close: %+v", v.Counts)
	}
}

func FuzzPostPairing(f *testing.F) {
	f.Add(`{"qr":"{}"}`)
	f.Add(`{"deviceId":"ZM-001","address":"10.0.0.1","pairingCode":"ABC-123-ABC"}`)
	f.Add(`{"qr":"{\"deviceId\":\"ZM-001\"}","label":"x"}`)
	f.Add(`[]`)
	e := newEnv(f, nil, nil)
	e.enroll("ZM-001")
	f.Fuzz(func(t *testing.T, body string) {
		e := *e
		e.t = t
		w := e.do(http.MethodPost, "/v1/pairings", e.token, body)
		if w.Code >= 500 {
			t.Fatalf("status %d for %q: %s", w.Code, body, w.Body)
		}
		e.srv.Wait()
	})
}

// BenchmarkPostPairing measures one QR request end to end on SQLite: parse,
// inventory lookup, token signature, two claims, records, audit (the fake
// provisioner returns at once).
func BenchmarkPostPairing(b *testing.B) {
	e := newEnv(b, nil, nil)
	d := e.enroll("ZM-001")
	for b.Loop() {
		b.StopTimer()
		q := d.qr(b, t0) // a new session: a fresh token and code
		b.StartTimer()
		if w := e.do(http.MethodPost, "/v1/pairings", e.token, tabletwire.PairingRequest{QR: q}); w.Code != http.StatusAccepted {
			b.Fatalf("%d %s", w.Code, w.Body)
		}
	}
	e.srv.Wait()
}

func TestShutdownDrainsThenCancels(t *testing.T) {
	prov := &fakeProv{gate: make(chan struct{}), entered: make(chan string, 2)}
	e := newEnv(t, prov, nil)
	a, b := e.enroll("ZM-001"), e.enroll("ZM-002")
	wa := e.do(http.MethodPost, "/v1/pairings", e.token, tabletwire.PairingRequest{QR: a.qr(t, t0)})
	<-prov.entered
	// Drain: the job finishes once released, and is recorded as succeeded.
	done := make(chan error, 1)
	go func() { done <- e.srv.Shutdown(context.Background()) }()
	close(prov.gate)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if v := e.pairing(decode[tabletwire.Accepted](t, wa).PairingID); v.State != "succeeded" {
		t.Errorf("drained job = %+v", v)
	}
	// Grace over: a job still running is cancelled and recorded as failed.
	prov.gate = make(chan struct{})
	wb := e.do(http.MethodPost, "/v1/pairings", e.token, tabletwire.PairingRequest{QR: b.qr(t, t0)})
	<-prov.entered
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := e.srv.Shutdown(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Shutdown = %v", err)
	}
	if v := e.pairing(decode[tabletwire.Accepted](t, wb).PairingID); v.State != "failed" || v.Result.Code != failure.ConnectionFailed.String() {
		t.Errorf("cancelled job = %+v", v)
	}
}
