//go:build cgo

package tpm

import (
	"testing"

	"github.com/google/go-tpm-tools/simulator"
	"github.com/google/go-tpm/tpm2/transport"
)

// simBackends is the Microsoft reference TPM simulator (cgo) from
// go-tpm-tools. Only one simulator can exist per process, so subtests that
// use it run one after the other.
func simBackends() []backendKind {
	return []backendKind{{"simulator", startSim}}
}

type sim struct{ s *simulator.Simulator }

func startSim(t testing.TB) backend {
	t.Helper()
	s, err := simulator.Get()
	if err != nil {
		t.Fatalf("simulator: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return &sim{s: s}
}

// simConn is a connection to the simulator whose Close leaves the simulator
// running (Store.Close closes its transport).
type simConn struct{ transport.TPM }

func (simConn) Close() error { return nil }

func (b *sim) open(t testing.TB) transport.TPMCloser {
	return simConn{transport.FromReadWriter(b.s)}
}

func (b *sim) restart(t testing.TB) {
	t.Helper()
	if err := b.s.Reset(); err != nil {
		t.Fatalf("simulator reset: %v", err)
	}
}
