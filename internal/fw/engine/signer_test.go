package engine_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/zmonitor/firmware/internal/central/deviceclient"
	"github.com/zmonitor/firmware/internal/central/pusher"
	"github.com/zmonitor/firmware/internal/proto/failure"
	"github.com/zmonitor/firmware/internal/proto/state"
)

func (r *rig) deviceClient(cert tls.Certificate) *deviceclient.Client {
	return deviceclient.New(r.eng.EndpointAddr(), r.keys.Identity().Public().(*ecdsa.PublicKey), "ZM-001", deviceclient.Opts{Certificate: cert, Timeout: 30 * time.Second})
}

// A push must come with the hello's signer certificate itself: another
// certificate from the same root with the same subject is another signer.
func TestConfigFromAnotherSignerCertificateWithTheSameNameIsRefused(t *testing.T) {
	r := newRig(t, nil)
	q := r.pair()
	leaf, err := r.root.NewLeaf(signerTemplate(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	twin := pusher.Signer{Key: leaf.Key, Chain: []*x509.Certificate{leaf.Cert}}
	if twin.Chain[0].Subject.CommonName != r.signer.Chain[0].Subject.CommonName {
		t.Fatal("the two signers should share their name")
	}
	a := r.deviceClient(r.signer.TLSCertificate())
	defer a.Close()
	if _, err := a.Hello(context.Background(), q.PairingToken); err != nil {
		t.Fatal(err)
	}
	b := r.deviceClient(twin.TLSCertificate())
	defer b.Close()
	_, err = b.PushConfig(context.Background(), []byte(`{"version":1}`), nil)
	var re *deviceclient.RefusedError
	if !errors.As(err, &re) || re.Code() != failure.SessionMismatch || !strings.Contains(re.Body.Message, "another signer certificate") {
		t.Fatalf("push with the twin certificate: %v", err)
	}
	if st := r.eng.Status().State; st != state.ReadyToPair {
		t.Fatalf("state %s after a refused push", st)
	}
	// The hello's own signer still pushes.
	r.mustSucceed(r.currentQR())
}

// A handshake with the real signer certificate but another key is
// refused and audited, aggregated like every refusal.
func TestSignerCertificateWithAnotherKeyIsAudited(t *testing.T) {
	r := newRig(t, nil)
	q := r.pair()
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	stolen := tls.Certificate{Certificate: [][]byte{r.signer.Chain[0].Raw}, PrivateKey: other}
	for range 3 {
		c := r.deviceClient(stolen)
		if _, err := c.Hello(context.Background(), q.PairingToken); err == nil {
			t.Fatal("hello with the signer's certificate and another key succeeded")
		}
		c.Close()
	}
	r.clk.Advance(10 * time.Second) // the refusal interval ends
	r.eventually("the refusals of the stolen certificate in the audit log", func() bool {
		n := 0
		for _, ev := range r.aud.Named("REQUEST_REFUSED") {
			if ev.Code == failure.SignerUntrusted.String() && strings.Contains(ev.Reason, "invalid signature by the client certificate") && ev.Actor == "remote:127.0.0.1" {
				n += countOf(ev.Reason)
			}
		}
		return n == 3
	})
	if len(r.aud.Named("HELLO")) != 0 {
		t.Error("a hello got through")
	}
	if st := r.eng.Status().State; st != state.ReadyToPair {
		t.Errorf("state %s", st)
	}
}
