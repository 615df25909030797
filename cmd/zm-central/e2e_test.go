package main

import (
	"github.com/zmonitor/firmware/internal/proto/devicewire"
	"github.com/zmonitor/firmware/internal/proto/tabletwire"

	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zmonitor/firmware/internal/central/store"
	"github.com/zmonitor/firmware/internal/fw/endpoint"
	"github.com/zmonitor/firmware/internal/proto/failure"
	"github.com/zmonitor/firmware/internal/proto/pairing"
	"github.com/zmonitor/firmware/internal/proto/payload"
	"github.com/zmonitor/firmware/internal/proto/state"
)

// softDevice is a device in software behind the real provisioning endpoint:
// it checks the token against its pairing session, answers hello with a CSR
// for a fresh client key, and verifies the pushed payload with
// internal/proto/payload exactly as the firmware does (anchors = the
// provisioning root zm-central init wrote).
type softDevice struct {
	id       string
	identity *ecdsa.PrivateKey
	payload  *ecdh.PrivateKey
	sess     *pairing.Session
	anchors  *x509.CertPool

	mu        sync.Mutex
	nonce     []byte
	clientKey *ecdsa.PrivateKey
	verified  *payload.Verified
	finalSent chan struct{}
}

type trustedWall struct{}

func (trustedWall) Now() (time.Time, bool) { return time.Now(), true }
func (trustedWall) Adopt(time.Time) error  { return nil }

func (d *softDevice) Hello(_ context.Context, req devicewire.HelloRequest, _ *x509.Certificate) (devicewire.HelloResponse, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if req.PairingToken != "" {
		if err := d.sess.CheckToken(req.PairingToken, time.Now()); err != nil {
			return devicewire.HelloResponse{}, err
		}
	}
	d.nonce = make([]byte, devicewire.NonceSize)
	rand.Read(d.nonce)
	d.clientKey, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: d.id}}, d.clientKey)
	if err != nil {
		return devicewire.HelloResponse{}, err
	}
	return devicewire.NewHello(d.identity, d.id, d.nonce, d.payload.PublicKey(), csr)
}

func (d *softDevice) Config(_ context.Context, env []byte, _ *x509.Certificate) (<-chan devicewire.Progress, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	ch := make(chan devicewire.Progress, 3)
	ch <- devicewire.Progress{State: state.PairingReceived.String(), Step: "validate"}
	v, err := payload.Verify(env, d.payload, payload.Expect{
		Anchors: d.anchors, DeviceID: d.id, SessionNonce: d.nonce, Wall: trustedWall{}, ClientKey: d.clientKey.Public(),
		CheckPairingCode: func(typed string) error { return d.sess.CheckCode(typed, time.Now()) },
	})
	if err != nil {
		c := failure.CodeOf(err)
		ch <- devicewire.Progress{State: state.ProvisioningFailed.String(), Final: true, Error: &devicewire.ErrorBody{Code: c.String(), Message: err.Error()}}
	} else {
		d.verified = v
		ch <- devicewire.Progress{State: state.Provisioned.String(), Final: true}
	}
	close(ch)
	close(d.finalSent)
	return ch, nil
}

// Refuse implements endpoint.Device: this software device has no screen
// to show a refusal on.
func (d *softDevice) Refuse(context.Context, failure.Code, []byte, string, *x509.Certificate) error {
	return nil
}

func (d *softDevice) Status() devicewire.Status {
	return devicewire.Status{State: state.ReadyToPair.String()}
}

// TestEndToEndSoftDevice: init → import the device's enrollment record →
// serve → a tablet posts the scanned QR → the pusher provisions a software
// device through the real endpoint → the device verifies the payload with
// the provisioning root init wrote → PROVISIONED is recorded with the issued
// certificate; a replay of the QR is refused.
func TestEndToEndSoftDevice(t *testing.T) {
	t.Run("provisioned", func(t *testing.T) { endToEnd(t, nil, store.PairingSucceeded, "") })
	t.Run("payload older than 1 hour", func(t *testing.T) {
		endToEnd(t, []string{"--clock-offset", "-2h"}, store.PairingFailed, failure.PayloadExpired.String())
	})
}

func endToEnd(t *testing.T, extraFlags []string, want store.PairingState, wantCode string) {
	dir, tok := initCentral(t)
	ctx := context.Background()
	dev := newEnrolled(t, "ZM-001")
	pk, _ := ecdh.P256().GenerateKey(rand.Reader)
	pkPub, _ := x509.MarshalPKIXPublicKey(mustECDSAPub(t, pk))
	dev.rec["payloadPublicKey"] = base64.StdEncoding.EncodeToString(pkPub)
	js, _ := json.Marshal(dev.rec)
	f := filepath.Join(t.TempDir(), "d.json")
	os.WriteFile(f, js, 0o644)
	if code, out, _ := runCLI(t, "devices", "import", "--dir", dir, f); code != 0 {
		t.Fatalf("import: %s", out)
	}
	root, _ := loadCert(dir, provRootCert)
	anchors := x509.NewCertPool()
	anchors.AddCert(root)
	sess, err := pairing.NewSession(time.Now(), time.Now(), pairing.SessionOpts{DeviceID: "ZM-001", DeviceSerial: "SN-ZM-001", IPAddress: "192.0.2.10", FirmwareVersion: "1.2.3", Signer: dev.key})
	if err != nil {
		t.Fatal(err)
	}
	sd := &softDevice{id: "ZM-001", identity: dev.key, payload: pk, sess: sess, anchors: anchors, finalSent: make(chan struct{})}
	ep, err := endpoint.NewServer(sd, endpoint.Opts{Identity: dev.key, DeviceID: "ZM-001", Anchors: anchors})
	if err != nil {
		t.Fatal(err)
	}
	epAddr, err := ep.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ep.Close()

	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	addrs := make(chan string, 1)
	done := make(chan error, 1)
	var out, errb bytes.Buffer
	go func() {
		args := append([]string{"--dir", dir, "--listen", "127.0.0.1:0", "--server-url", "https://monitor.example:9443",
			"--device-addr", "ZM-001=" + epAddr.String(),
			// The in-process device has software keys and no measured boot.
			"--allow-unmeasured-dev-firmware"}, extraFlags...)
		done <- cmdServe(sctx, args, &out, &errb, func(l listening) { addrs <- l.tablet })
	}()
	var tabletAddr string
	select {
	case tabletAddr = <-addrs:
	case err := <-done:
		t.Fatalf("serve: %v %s", err, errb.String())
	}
	devCA, _ := loadCert(dir, deviceCACert)
	pool := x509.NewCertPool()
	pool.AddCert(devCA)
	tablet := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "localhost"}}, Timeout: time.Minute}
	post := func() (int, []byte) {
		body, _ := json.Marshal(tabletwire.PairingRequest{QR: string(sess.QR().Marshal())})
		req, _ := http.NewRequest(http.MethodPost, "https://"+tabletAddr+"/v1/pairings", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := tablet.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	code, b := post()
	if code != http.StatusAccepted {
		t.Fatalf("POST: %d %s", code, b)
	}
	var acc tabletwire.Accepted
	json.Unmarshal(b, &acc)
	<-sd.finalSent
	if code, b := post(); code != http.StatusConflict {
		t.Errorf("replayed QR: %d %s", code, b)
	}
	cancel() // serve drains: the push records its outcome
	if err := <-done; err != nil {
		t.Fatalf("serve: %v\n%s", err, errb.String())
	}

	st, err := store.Open(ctx, "sqlite:"+filepath.Join(dir, dbFile), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	p, err := st.Pairing(ctx, acc.PairingID)
	if err != nil || p.State != want || (wantCode != "" && p.ResultCode != wantCode) {
		t.Fatalf("pairing = %+v %v, want %s %s\n%s", p, err, want, wantCode, errb.String())
	}
	// The operator sees the certificate issued, with its fate.
	wantCert := "in-use"
	if want != store.PairingSucceeded {
		wantCert = "revoked"
	}
	code, list, _ := runCLI(t, "certificates", "list", "--dir", dir, "--device", "ZM-001")
	lines := strings.Split(strings.TrimSpace(list), "\n")
	if code != 0 || len(lines) != 2 || !strings.HasPrefix(lines[0], "SERIAL") || !strings.Contains(lines[1], " ZM-001 ") ||
		!strings.Contains(lines[1], " "+wantCert) || !strings.HasSuffix(lines[1], " "+acc.PairingID) {
		t.Errorf("certificates list: exit %d\n%s", code, list)
	}
	if want != store.PairingSucceeded {
		if !strings.Contains(lines[len(lines)-1], " device-refused ") {
			t.Errorf("refused payload: certificate not revoked as device-refused:\n%s", list)
		}
		return
	}
	if sd.verified == nil {
		t.Fatal("the device did not accept the payload")
	}
	if sd.verified.ServerURL.String() != "https://monitor.example:9443" || sd.verified.ClientCert.Subject.CommonName != "ZM-001" {
		t.Errorf("verified payload: %v %v", sd.verified.ServerURL, sd.verified.ClientCert.Subject)
	}
	certs, err := st.Certificates(ctx, "ZM-001")
	if err != nil || len(certs) != 1 || !bytes.Equal(certs[0].DER, sd.verified.ClientCert.Raw) {
		t.Errorf("issued certificates: %d %v", len(certs), err)
	}
}

func mustECDSAPub(t testing.TB, k *ecdh.PrivateKey) *ecdsa.PublicKey {
	t.Helper()
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), k.PublicKey().Bytes())
	if err != nil {
		t.Fatal(errors.Join(errors.New("payload key"), err))
	}
	return pub
}
