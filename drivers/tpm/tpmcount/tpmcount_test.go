package tpmcount

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-tpm/tpm2"
)

// echoTPM answers every command with a success header.
type echoTPM struct{ closed bool }

func (e *echoTPM) Send(cmd []byte) ([]byte, error) {
	return []byte{0x80, 0x01, 0, 0, 0, 10, 0, 0, 0, 0}, nil
}
func (e *echoTPM) Close() error { e.closed = true; return nil }

// stepClock advances by one millisecond on every reading.
type stepClock struct{ t time.Time }

func (s *stepClock) now() time.Time { s.t = s.t.Add(time.Millisecond); return s.t }

func cmd(cc tpm2.TPMCC) []byte {
	return []byte{0x80, 0x01, 0, 0, 0, 10, byte(cc >> 24), byte(cc >> 16), byte(cc >> 8), byte(cc)}
}

func TestCounterCountsByCommandCode(t *testing.T) {
	e := &echoTPM{}
	clk := &stepClock{}
	c := New(e, clk.now)
	for _, cc := range []tpm2.TPMCC{tpm2.TPMCCSign, tpm2.TPMCCSign, tpm2.TPMCCECDHZGen} {
		if _, err := c.Send(cmd(cc)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Send([]byte{1, 2}); err != nil {
		t.Fatal(err)
	}
	st := c.Stats()
	if len(st) != 2 {
		t.Fatalf("stats = %v, want 2 kinds", st)
	}
	want := map[tpm2.TPMCC]int{tpm2.TPMCCSign: 2, tpm2.TPMCCECDHZGen: 1}
	for _, s := range st {
		if s.Count != want[s.Code] {
			t.Errorf("%v count = %d, want %d", s.Code, s.Count, want[s.Code])
		}
		if s.Mean() != time.Millisecond {
			t.Errorf("%v mean = %v, want 1ms", s.Code, s.Mean())
		}
	}
	if c.Total() != 4 {
		t.Errorf("Total = %d, want 4", c.Total())
	}
	if s := c.String(); s == "" {
		t.Error("String is empty")
	}
	c.Reset()
	if c.Total() != 0 || len(c.Stats()) != 0 {
		t.Error("Reset left counts")
	}
	if err := c.Close(); err != nil || !e.closed {
		t.Errorf("Close = %v, closed %v", err, e.closed)
	}
}

type failTPM struct{}

func (failTPM) Send([]byte) ([]byte, error) { return nil, errors.New("gone") }

func TestCounterPassesErrorsAndRefusesClose(t *testing.T) {
	c := New(failTPM{}, nil)
	if _, err := c.Send(cmd(tpm2.TPMCCSign)); err == nil {
		t.Fatal("error swallowed")
	}
	if c.Total() != 1 {
		t.Errorf("failed command not counted")
	}
	if err := c.Close(); err == nil {
		t.Error("Close of a non-closer succeeded")
	}
}

func TestName(t *testing.T) {
	if Name(tpm2.TPMCCSign) != "Sign" || Name(tpm2.TPMCCECDHZGen) != "ECDH_ZGen" {
		t.Error("known command names")
	}
	if Name(tpm2.TPMCC(0x1ff)) != "CC_0x1ff" {
		t.Errorf("unknown command: %s", Name(tpm2.TPMCC(0x1ff)))
	}
}
