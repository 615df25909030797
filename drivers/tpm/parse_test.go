package tpm

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/binary"
	"net"
	"testing"
)

// FuzzParseImportKey: the spec's clientPrivateKey arrives from outside; its
// parser must never panic and accept only P-256 ECDSA keys.
func FuzzParseImportKey(f *testing.F) {
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	pk8, _ := x509.MarshalPKCS8PrivateKey(p256)
	sec1, _ := x509.MarshalECPrivateKey(p256)
	pk8384, _ := x509.MarshalPKCS8PrivateKey(p384)
	f.Add(pk8)
	f.Add(sec1)
	f.Add(pk8384)
	f.Add([]byte{0x30, 0x03, 0x02, 0x01, 0x00})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, der []byte) {
		k, err := parseP256(der)
		if err != nil {
			return
		}
		if k.Curve != elliptic.P256() {
			t.Fatalf("accepted a key on %s", k.Curve.Params().Name)
		}
		if _, err := k.Bytes(); err != nil {
			t.Fatalf("accepted key has no scalar: %v", err)
		}
	})
}

func TestParseImportKeyWipes(t *testing.T) {
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(p256)
	k, err := parseP256(der)
	if err != nil {
		t.Fatal(err)
	}
	wipeKey(k)
	//lint:ignore SA1019 checking that the deprecated D was wiped.
	words := k.D.Bits()
	if len(words) == 0 {
		t.Fatal("parsed key has no D to wipe")
	}
	for _, w := range words {
		if w != 0 {
			t.Fatal("wipeKey left the scalar")
		}
	}
	wipeKey(nil)
}

// FuzzStreamResponse: responses on the TCP transport are outside bytes;
// whatever the peer sends, Send returns a response of the announced size or
// an error, never panics.
func FuzzStreamResponse(f *testing.F) {
	ok := []byte{0x80, 0x01, 0, 0, 0, 12, 0, 0, 0, 0, 0xaa, 0xbb}
	f.Add(ok)
	f.Add([]byte{0x80, 0x01, 0, 0, 0, 5, 0, 0, 0, 0})
	f.Add([]byte{0x80, 0x01, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0})
	f.Add([]byte{0x80})
	f.Fuzz(func(t *testing.T, rsp []byte) {
		client, server := net.Pipe()
		s := &streamTPM{conn: client}
		go func() {
			buf := make([]byte, 10)
			_, _ = server.Read(buf)
			// Dribble the response a byte at a time, then hang up.
			for i := range rsp {
				if _, err := server.Write(rsp[i : i+1]); err != nil {
					break
				}
			}
			_ = server.Close()
		}()
		got, err := s.Send([]byte{0x80, 0x01, 0, 0, 0, 10, 0, 0, 1, 0x7b})
		_ = s.Close()
		if err != nil {
			return
		}
		if len(got) < 10 || int(binary.BigEndian.Uint32(got[2:6])) != len(got) {
			t.Fatalf("response %x does not have its announced size", got)
		}
	})
}

func TestStreamReadsShortWrites(t *testing.T) {
	client, server := net.Pipe()
	s := &streamTPM{conn: client}
	defer s.Close()
	go func() {
		buf := make([]byte, 10)
		_, _ = server.Read(buf)
		for _, b := range []byte{0x80, 0x01, 0, 0, 0, 12, 0, 0, 0, 0, 0xaa, 0xbb} {
			_, _ = server.Write([]byte{b})
		}
	}()
	got, err := s.Send([]byte{0x80, 0x01, 0, 0, 0, 10, 0, 0, 1, 0x7b})
	if err != nil || len(got) != 12 || got[11] != 0xbb {
		t.Fatalf("got %x, %v", got, err)
	}
	_ = server.Close()
	if _, err := s.Send([]byte{1}); err == nil {
		t.Fatal("Send on a closed peer succeeded")
	}
}
