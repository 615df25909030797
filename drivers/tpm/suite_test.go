package tpm

import (
	"bytes"
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hpke"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/google/go-tpm/tpm2"

	"github.com/zmonitor/firmware/internal/fw/keys"
)

var provision = &Opts{Provision: true}

// newStore opens a Store on b and closes it when the test ends.
func newStore(t *testing.T, b backend, opts *Opts) *Store {
	t.Helper()
	s, err := New(b.open(t), opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// requireTransient fails unless the TPM holds exactly want transient
// objects.
func requireTransient(t *testing.T, s *Store, want int, after string) {
	t.Helper()
	hs, err := s.TransientHandles()
	if err != nil {
		t.Fatalf("after %s: %v", after, err)
	}
	if len(hs) != want {
		t.Fatalf("after %s: %d transient handles %v, want %d", after, len(hs), hs, want)
	}
}

// rawTransient counts transient objects through a fresh connection (used
// where New itself failed and there is no Store).
func rawTransient(t *testing.T, b backend) int {
	t.Helper()
	tp := b.open(t)
	defer tp.Close()
	hs, err := transientHandles(tp)
	if err != nil {
		t.Fatal(err)
	}
	return len(hs)
}

func sha(msg string) []byte { d := sha256.Sum256([]byte(msg)); return d[:] }

func verify(t *testing.T, pub crypto.PublicKey, digest, sig []byte) {
	t.Helper()
	ep, ok := pub.(*ecdsa.PublicKey)
	if !ok {
		t.Fatalf("public key is %T, want *ecdsa.PublicKey", pub)
	}
	if !ecdsa.VerifyASN1(ep, digest, sig) {
		t.Fatal("signature does not verify with crypto/ecdsa")
	}
}

func readPublic(t *testing.T, s *Store, h tpm2.TPMHandle) *tpm2.TPMTPublic {
	t.Helper()
	rsp, err := tpm2.ReadPublic{ObjectHandle: h}.Execute(s.tpm)
	if err != nil {
		t.Fatalf("ReadPublic 0x%08x: %v", uint32(h), err)
	}
	p, err := rsp.OutPublic.Contents()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestProvisionCreatesKeysWithAttributes(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s := newStore(t, b, provision)
		requireTransient(t, s, 0, "provision")
		for _, c := range []struct {
			h          tpm2.TPMHandle
			sign, decr bool
			restricted bool
		}{
			{DefaultIdentityHandle, true, false, false},
			{DefaultPayloadHandle, false, true, false},
			{DefaultSRKHandle, false, true, true},
		} {
			p := readPublic(t, s, c.h)
			a := p.ObjectAttributes
			if !a.FixedTPM || !a.FixedParent || !a.SensitiveDataOrigin || !a.UserWithAuth {
				t.Errorf("0x%08x: attributes %+v lack fixedTPM|fixedParent|sensitiveDataOrigin|userWithAuth", uint32(c.h), a)
			}
			if a.SignEncrypt != c.sign || a.Decrypt != c.decr || a.Restricted != c.restricted {
				t.Errorf("0x%08x: sign=%v decrypt=%v restricted=%v, want %v %v %v", uint32(c.h), a.SignEncrypt, a.Decrypt, a.Restricted, c.sign, c.decr, c.restricted)
			}
			parms, err := p.Parameters.ECCDetail()
			if err != nil || parms.CurveID != tpm2.TPMECCNistP256 || p.Type != tpm2.TPMAlgECC {
				t.Errorf("0x%08x: not an ECC P-256 key (%v, %v)", uint32(c.h), p.Type, err)
			}
		}
		idp := readPublic(t, s, DefaultIdentityHandle)
		parms, _ := idp.Parameters.ECCDetail()
		if parms.Scheme.Scheme != tpm2.TPMAlgECDSA {
			t.Errorf("identity scheme %v, want ECDSA", parms.Scheme.Scheme)
		}
		// The public keys the store reports are those in the TPM.
		pt, err := eccPoint(idp)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(pt.Bytes(), mustECDH(t, s.Identity().Public()).Bytes()) {
			t.Error("Identity().Public() differs from the TPM's public area")
		}
		pp, _ := eccPoint(readPublic(t, s, DefaultPayloadHandle))
		if !pp.Equal(s.PayloadKey().PublicKey()) {
			t.Error("PayloadKey().PublicKey() differs from the TPM's public area")
		}
		if s.PayloadKey().Curve() != ecdh.P256() {
			t.Error("payload curve is not P-256")
		}
	})
}

func mustECDH(t *testing.T, pub crypto.PublicKey) *ecdh.PublicKey {
	t.Helper()
	k, err := pub.(*ecdsa.PublicKey).ECDH()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestLoadOfBlankTPMIsKeyMissing(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		_, err := New(b.open(t), nil)
		if !errors.Is(err, ErrKeyMissing) {
			t.Fatalf("New on a blank TPM = %v, want ErrKeyMissing", err)
		}
		if n := rawTransient(t, b); n != 0 {
			t.Fatalf("%d transient handles left after a failed New", n)
		}
	})
}

func TestIdentitySignsForECDSAAndX509(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s := newStore(t, b, provision)
		id := s.Identity()
		d := sha("pairing token")
		sig, err := id.Sign(rand.Reader, d, crypto.SHA256)
		if err != nil {
			t.Fatal(err)
		}
		verify(t, id.Public(), d, sig)

		// Refused: other hashes, wrong digest lengths, no hash.
		d384 := sha512.Sum384([]byte("x"))
		for _, c := range []struct {
			name   string
			digest []byte
			opts   crypto.SignerOpts
		}{
			{"sha384", d384[:], crypto.SHA384},
			{"short digest", d[:31], crypto.SHA256},
			{"no hash", d, crypto.Hash(0)},
		} {
			if _, err := id.Sign(rand.Reader, c.digest, c.opts); !errors.Is(err, ErrUnsupported) {
				t.Errorf("%s: err = %v, want ErrUnsupported", c.name, err)
			}
		}

		// CSR and a self-signed certificate (the provisioning port's).
		csrDER, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "ZM-001"}}, id)
		if err != nil {
			t.Fatalf("CSR: %v", err)
		}
		csr, err := x509.ParseCertificateRequest(csrDER)
		if err != nil {
			t.Fatal(err)
		}
		if err := csr.CheckSignature(); err != nil {
			t.Fatalf("CSR signature: %v", err)
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ZM-001"},
			NotBefore: time.Unix(1700000000, 0), NotAfter: time.Unix(1900000000, 0),
			KeyUsage: x509.KeyUsageDigitalSignature, BasicConstraintsValid: true,
		}
		certDER, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, id.Public(), id)
		if err != nil {
			t.Fatalf("self-signed certificate: %v", err)
		}
		cert, err := x509.ParseCertificate(certDER)
		if err != nil {
			t.Fatal(err)
		}
		if err := cert.CheckSignature(cert.SignatureAlgorithm, cert.RawTBSCertificate, cert.Signature); err != nil {
			t.Fatalf("self-signed certificate signature: %v", err)
		}
		requireTransient(t, s, 0, "signing")
	})
}

const hpkeInfo = "zmonitor provisioning payload v1"

func TestHPKEOpensThroughPayloadKey(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s := newStore(t, b, provision)
		pub, err := hpke.NewDHKEMPublicKey(s.PayloadKey().PublicKey())
		if err != nil {
			t.Fatal(err)
		}
		aad := []byte("session nonce")
		enc, sender, err := hpke.NewSender(pub, hpke.HKDFSHA256(), hpke.AES256GCM(), []byte(hpkeInfo))
		if err != nil {
			t.Fatal(err)
		}
		ct, err := sender.Seal(aad, []byte(`{"serverUrl":"https://x"}`))
		if err != nil {
			t.Fatal(err)
		}
		priv, err := hpke.NewDHKEMPrivateKey(s.PayloadKey())
		if err != nil {
			t.Fatal(err)
		}
		rcpt, err := hpke.NewRecipient(enc, priv, hpke.HKDFSHA256(), hpke.AES256GCM(), []byte(hpkeInfo))
		if err != nil {
			t.Fatalf("NewRecipient through the TPM: %v", err)
		}
		pt, err := rcpt.Open(aad, ct)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		if string(pt) != `{"serverUrl":"https://x"}` {
			t.Fatalf("plaintext %q", pt)
		}
		// A different aad must not open.
		rcpt2, _ := hpke.NewRecipient(enc, priv, hpke.HKDFSHA256(), hpke.AES256GCM(), []byte(hpkeInfo))
		if _, err := rcpt2.Open([]byte("other nonce"), ct); err == nil {
			t.Fatal("opened with the wrong aad")
		}
		// The private key cannot be exported through hpke.
		if _, err := priv.Bytes(); err == nil {
			t.Fatal("hpke exported the TPM key's bytes")
		}
		// ECDH agrees with crypto/ecdh on the other side.
		eph, _ := ecdh.P256().GenerateKey(rand.Reader)
		z1, err := s.PayloadKey().ECDH(eph.PublicKey())
		if err != nil {
			t.Fatal(err)
		}
		z2, _ := eph.ECDH(s.PayloadKey().PublicKey())
		if !bytes.Equal(z1, z2) || len(z1) != 32 {
			t.Fatalf("TPM ECDH %x != crypto/ecdh %x", z1, z2)
		}
		x, _ := ecdh.X25519().GenerateKey(rand.Reader)
		if _, err := s.PayloadKey().ECDH(x.PublicKey()); !errors.Is(err, ErrUnsupported) {
			t.Errorf("X25519 peer: err = %v, want ErrUnsupported", err)
		}
		requireTransient(t, s, 0, "ECDH")
	})
}

func TestClientKeyLifecycle(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s := newStore(t, b, provision)
		if _, err := s.CommittedClientKey(); !errors.Is(err, keys.ErrNoClientKey) {
			t.Fatalf("fresh device: err = %v, want ErrNoClientKey", err)
		}
		k1, err := s.NewClientKey()
		if err != nil {
			t.Fatal(err)
		}
		requireTransient(t, s, 1, "NewClientKey (deliberately loaded until Commit/Discard)")
		d := sha("csr")
		sig, err := k1.Sign(nil, d, crypto.SHA256)
		if err != nil {
			t.Fatal(err)
		}
		verify(t, k1.Public(), d, sig)
		if err := k1.Discard(); err != nil {
			t.Fatal(err)
		}
		requireTransient(t, s, 0, "Discard")
		if _, err := k1.Sign(nil, d, crypto.SHA256); !errors.Is(err, ErrClosed) {
			t.Errorf("Sign after Discard: err = %v, want ErrClosed", err)
		}
		if err := k1.Commit(); !errors.Is(err, ErrClosed) {
			t.Errorf("Commit after Discard: err = %v, want ErrClosed", err)
		}
		if _, err := s.CommittedClientKey(); !errors.Is(err, keys.ErrNoClientKey) {
			t.Fatalf("after Discard: err = %v, want ErrNoClientKey", err)
		}

		k2, err := s.NewClientKey()
		if err != nil {
			t.Fatal(err)
		}
		if err := k2.Commit(); err != nil {
			t.Fatal(err)
		}
		requireTransient(t, s, 0, "Commit")
		if err := k2.Discard(); err == nil {
			t.Error("Discard after Commit succeeded")
		}
		sig, err = k2.Sign(nil, d, crypto.SHA256) // now via the persistent handle
		if err != nil {
			t.Fatal(err)
		}
		verify(t, k2.Public(), d, sig)
		c2, err := s.CommittedClientKey()
		if err != nil {
			t.Fatal(err)
		}
		if !c2.Public().(*ecdsa.PublicKey).Equal(k2.Public()) {
			t.Fatal("committed key differs from the key committed")
		}

		// A new pairing replaces the committed key.
		k3, err := s.NewClientKey()
		if err != nil {
			t.Fatal(err)
		}
		if err := k3.Commit(); err != nil {
			t.Fatal(err)
		}
		c3, err := s.CommittedClientKey()
		if err != nil {
			t.Fatal(err)
		}
		if !c3.Public().(*ecdsa.PublicKey).Equal(k3.Public()) || c3.Public().(*ecdsa.PublicKey).Equal(k2.Public()) {
			t.Fatal("second Commit did not replace the committed key")
		}
		p := readPublic(t, s, DefaultClientHandle)
		if !p.ObjectAttributes.FixedTPM || !p.ObjectAttributes.SensitiveDataOrigin || !p.ObjectAttributes.SignEncrypt {
			t.Errorf("client key attributes %+v", p.ObjectAttributes)
		}

		if err := s.ForgetClientKey(); err != nil {
			t.Fatal(err)
		}
		if err := s.ForgetClientKey(); err != nil {
			t.Fatalf("second ForgetClientKey: %v", err)
		}
		if _, err := s.CommittedClientKey(); !errors.Is(err, keys.ErrNoClientKey) {
			t.Fatalf("after Forget: err = %v, want ErrNoClientKey", err)
		}
		requireTransient(t, s, 0, "ForgetClientKey")
	})
}

func TestImportClientKey(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s := newStore(t, b, provision)
		for _, format := range []string{"pkcs8", "sec1"} {
			priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			var der []byte
			if format == "pkcs8" {
				der, _ = x509.MarshalPKCS8PrivateKey(priv)
			} else {
				der, _ = x509.MarshalECPrivateKey(priv)
			}
			k, err := s.ImportClientKey(der)
			if err != nil {
				t.Fatalf("%s: %v", format, err)
			}
			requireTransient(t, s, 1, "ImportClientKey")
			if !k.Public().(*ecdsa.PublicKey).Equal(&priv.PublicKey) {
				t.Fatalf("%s: imported public key differs", format)
			}
			d := sha("import")
			sig, err := k.Sign(nil, d, crypto.SHA256)
			if err != nil {
				t.Fatal(err)
			}
			verify(t, &priv.PublicKey, d, sig)
			if err := k.Commit(); err != nil {
				t.Fatal(err)
			}
			requireTransient(t, s, 0, "Commit of imported key")
			c, err := s.CommittedClientKey()
			if err != nil {
				t.Fatal(err)
			}
			if !c.Public().(*ecdsa.PublicKey).Equal(&priv.PublicKey) {
				t.Fatal("committed imported key differs")
			}
		}
		p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		der384, _ := x509.MarshalPKCS8PrivateKey(p384)
		if _, err := s.ImportClientKey(der384); !errors.Is(err, ErrUnsupported) {
			t.Errorf("P-384 key: err = %v, want ErrUnsupported", err)
		}
		if _, err := s.ImportClientKey([]byte("not a key")); err == nil {
			t.Error("garbage imported")
		}
		requireTransient(t, s, 0, "failed imports")
	})
}

func TestTLS13WithTPMClientKey(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s := newStore(t, b, provision)
		ck, err := s.NewClientKey()
		if err != nil {
			t.Fatal(err)
		}
		ca := newTestCA(t)
		clientCert := ca.issue(t, "ZM-001", ck.Public(), x509.ExtKeyUsageClientAuth)
		handshake(t, ca, tls.Certificate{Certificate: [][]byte{clientCert}, PrivateKey: ck})
		if err := ck.Commit(); err != nil {
			t.Fatal(err)
		}
		committed, err := s.CommittedClientKey()
		if err != nil {
			t.Fatal(err)
		}
		handshake(t, ca, tls.Certificate{Certificate: [][]byte{clientCert}, PrivateKey: committed})
		requireTransient(t, s, 0, "TLS handshakes")
	})
}

type testCA struct {
	key  *ecdsa.PrivateKey
	cert *x509.Certificate
	pool *x509.CertPool
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(c)
	return &testCA{key: k, cert: c, pool: pool}
}

func (ca *testCA) issue(t *testing.T, cn string, pub crypto.PublicKey, eku x509.ExtKeyUsage) []byte {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		DNSNames:  []string{cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{eku},
	}
	if cn == "localhost" {
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, pub, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// handshake runs a TLS 1.3 handshake with client against a crypto/tls
// server on 127.0.0.1 that requires and verifies client certificates.
func handshake(t *testing.T, ca *testCA, client tls.Certificate) {
	t.Helper()
	srvKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	srvCert := tls.Certificate{Certificate: [][]byte{ca.issue(t, "localhost", &srvKey.PublicKey, x509.ExtKeyUsageServerAuth)}, PrivateKey: srvKey}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{srvCert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    ca.pool,
		MinVersion:   tls.VersionTLS13,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type result struct {
		cn  string
		err error
	}
	done := make(chan result, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- result{err: err}
			return
		}
		defer c.Close()
		tc := c.(*tls.Conn)
		if err := tc.Handshake(); err != nil {
			done <- result{err: err}
			return
		}
		st := tc.ConnectionState()
		if len(st.PeerCertificates) == 0 {
			done <- result{err: errors.New("no client certificate")}
			return
		}
		_, _ = tc.Write([]byte("ok"))
		done <- result{cn: st.PeerCertificates[0].Subject.CommonName}
	}()
	conn, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{
		Certificates: []tls.Certificate{client},
		RootCAs:      ca.pool,
		ServerName:   "localhost",
		MinVersion:   tls.VersionTLS13,
	})
	if err != nil {
		t.Fatalf("client handshake: %v", err)
	}
	defer conn.Close()
	buf := make([]byte, 2)
	if _, err := conn.Read(buf); err != nil {
		t.Fatalf("read: %v", err)
	}
	if v := conn.ConnectionState().Version; v != tls.VersionTLS13 {
		t.Fatalf("TLS version %x", v)
	}
	r := <-done
	if r.err != nil {
		t.Fatalf("server: %v", r.err)
	}
	if r.cn != "ZM-001" {
		t.Fatalf("server saw client %q", r.cn)
	}
}

func TestKeysSurviveRestart(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s1, err := New(b.open(t), provision)
		if err != nil {
			t.Fatal(err)
		}
		idPub := s1.Identity().Public().(*ecdsa.PublicKey)
		payPub := s1.PayloadKey().PublicKey()
		ck, err := s1.NewClientKey()
		if err != nil {
			t.Fatal(err)
		}
		if err := ck.Commit(); err != nil {
			t.Fatal(err)
		}
		ckPub := ck.Public().(*ecdsa.PublicKey)
		_ = s1.Close()

		b.restart(t)

		s2 := newStore(t, b, nil) // Load: must exist
		if !s2.Identity().Public().(*ecdsa.PublicKey).Equal(idPub) {
			t.Fatal("identity key changed across restart")
		}
		if !s2.PayloadKey().PublicKey().Equal(payPub) {
			t.Fatal("payload key changed across restart")
		}
		d := sha("after restart")
		sig, err := s2.Identity().Sign(nil, d, crypto.SHA256)
		if err != nil {
			t.Fatal(err)
		}
		verify(t, idPub, d, sig)
		c, err := s2.CommittedClientKey()
		if err != nil {
			t.Fatal(err)
		}
		if !c.Public().(*ecdsa.PublicKey).Equal(ckPub) {
			t.Fatal("committed client key changed across restart")
		}
		sig, err = c.Sign(nil, d, crypto.SHA256)
		if err != nil {
			t.Fatal(err)
		}
		verify(t, ckPub, d, sig)
		// Provision on an enrolled TPM keeps the keys.
		_ = s2.Close()
		s3 := newStore(t, b, provision)
		if !s3.Identity().Public().(*ecdsa.PublicKey).Equal(idPub) {
			t.Fatal("Provision replaced an enrolled identity")
		}
	})
}

func TestPrivatePartsCannotBeRead(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s := newStore(t, b, provision)
		for _, h := range []tpm2.TPMHandle{DefaultIdentityHandle, DefaultPayloadHandle} {
			rsp, err := tpm2.ReadPublic{ObjectHandle: h}.Execute(s.tpm)
			if err != nil {
				t.Fatal(err)
			}
			// ReadPublic's response is public area and names only.
			p, _ := rsp.OutPublic.Contents()
			if !p.ObjectAttributes.FixedTPM || !p.ObjectAttributes.FixedParent {
				t.Fatalf("0x%08x is duplicable", uint32(h))
			}
			// Duplicating the key to an outside parent (NULL: unwrapped) is
			// refused by the TPM.
			_, err = tpm2.Duplicate{
				ObjectHandle:    tpm2.AuthHandle{Handle: h, Name: rsp.Name, Auth: tpm2.PasswordAuth(nil)},
				NewParentHandle: tpm2.TPMRHNull,
				Symmetric:       tpm2.TPMTSymDef{Algorithm: tpm2.TPMAlgNull},
			}.Execute(s.tpm)
			if err == nil {
				t.Fatalf("Duplicate of 0x%08x succeeded", uint32(h))
			}
			t.Logf("Duplicate 0x%08x: %v", uint32(h), err)
			// A policy session for TPM2_Duplicate does not help either:
			// the keys' authPolicy is empty, and fixedParent would refuse
			// the duplication after that.
			sess, cleanup, err := tpm2.PolicySession(s.tpm, tpm2.TPMAlgSHA256, 16)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := (tpm2.PolicyCommandCode{PolicySession: sess.Handle(), Code: tpm2.TPMCCDuplicate}).Execute(s.tpm); err != nil {
				t.Fatal(err)
			}
			_, err = tpm2.Duplicate{
				ObjectHandle:    tpm2.AuthHandle{Handle: h, Name: rsp.Name, Auth: sess},
				NewParentHandle: tpm2.TPMRHNull,
				Symmetric:       tpm2.TPMTSymDef{Algorithm: tpm2.TPMAlgNull},
			}.Execute(s.tpm)
			_ = cleanup()
			if err == nil {
				t.Fatalf("Duplicate of 0x%08x with a policy session succeeded", uint32(h))
			}
			t.Logf("Duplicate 0x%08x with policy: %v", uint32(h), err)
		}
		requireTransient(t, s, 0, "duplicate attempts")
	})
}
