package endpoint

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zmonitor/firmware/internal/proto/devicewire"
	"github.com/zmonitor/firmware/internal/proto/failure"
	"github.com/zmonitor/firmware/internal/testkit/testpki"
)

// gatedSigner is the identity key whose signatures wait for a gate, as a
// slow TPM would; it counts the signatures under way.
type gatedSigner struct {
	k *ecdsa.PrivateKey

	mu       sync.Mutex
	gate     chan struct{} // nil: sign at once
	in, most atomic.Int32
}

func (g *gatedSigner) Public() crypto.PublicKey { return g.k.Public() }

func (g *gatedSigner) Sign(r io.Reader, digest []byte, o crypto.SignerOpts) ([]byte, error) {
	n := g.in.Add(1)
	defer g.in.Add(-1)
	for {
		m := g.most.Load()
		if n <= m || g.most.CompareAndSwap(m, n) {
			break
		}
	}
	g.mu.Lock()
	gate := g.gate
	g.mu.Unlock()
	if gate != nil {
		<-gate
	}
	return g.k.Sign(r, digest, o)
}

type refusingDevice struct{}

func (refusingDevice) Hello(context.Context, devicewire.HelloRequest, *x509.Certificate) (devicewire.HelloResponse, error) {
	return devicewire.HelloResponse{}, errors.New("no")
}

func (refusingDevice) Config(context.Context, []byte, *x509.Certificate) (<-chan devicewire.Progress, error) {
	return nil, errors.New("no")
}

func (refusingDevice) Refuse(context.Context, failure.Code, []byte, string, *x509.Certificate) error {
	return failure.Errorf(failure.SessionMismatch, "refusal", "no")
}

func (refusingDevice) Status() devicewire.Status { return devicewire.Status{} }

// Each handshake past the ClientHello costs a signature by the identity
// key (a TPM operation): at most MaxHandshakes run at once, the others
// wait for a slot, and all of them complete once the key answers.
func TestHandshakesPastTheClientHelloAreCapped(t *testing.T) {
	const clients, slots = 6, 2
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	id := &gatedSigner{k: k}
	anchor, err := testpki.NewCA("provisioning root", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	signer, err := anchor.NewLeaf(testpki.ClientTemplate("central station signer"), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewServer(refusingDevice{}, Opts{Identity: id, DeviceID: "ZM-001", Anchors: anchor.Pool(), MaxHandshakes: slots, MaxConnsPerHost: clients})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Prepare(); err != nil { // the certificate's own signature
		t.Fatal(err)
	}
	gate := make(chan struct{})
	id.mu.Lock()
	id.gate = gate
	id.mu.Unlock()
	id.most.Store(0)
	addr, err := s.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		s.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := s.Wait(ctx); err != nil {
			t.Error(err)
		}
	}()
	release := sync.OnceFunc(func() { close(gate) })
	defer release() // before Close's wait, on failure too
	errs := make(chan error, clients)
	for range clients {
		go func() {
			c, err := tls.Dial("tcp", addr.String(), &tls.Config{MinVersion: tls.VersionTLS13, InsecureSkipVerify: true, Certificates: []tls.Certificate{signer.TLS()}})
			if err == nil {
				c.Close()
			}
			errs <- err
		}()
	}
	deadline := time.Now().Add(time.Minute)
	for id.in.Load() != slots || s.waitingSlot.Load() != clients-slots {
		if time.Now().After(deadline) {
			t.Fatalf("%d signatures under way, %d handshakes waiting for a slot; want %d and %d", id.in.Load(), s.waitingSlot.Load(), slots, clients-slots)
		}
		time.Sleep(time.Millisecond)
	}
	release()
	for range clients {
		if err := <-errs; err != nil {
			t.Errorf("handshake: %v", err)
		}
	}
	if m := id.most.Load(); m > slots {
		t.Errorf("%d signatures at once, want at most %d", m, slots)
	}
}
