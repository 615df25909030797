package tpm

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/sha256"
	"math/big"
	"testing"

	"github.com/google/go-attestation/attest"
	"github.com/google/go-tpm/tpm2"

	"github.com/zmonitor/firmware/drivers/tpm/tpmcount"
	"github.com/zmonitor/firmware/internal/proto/enroll"
)

// extendPCR4 extends PCR 4 (SHA-256) with digest through a connection of
// its own, before the store opens, and returns the PCR's new value.
func extendPCR4(t *testing.T, b backend, digest []byte) []byte {
	t.Helper()
	tp := b.open(t)
	defer tp.Close()
	s, err := New(tp, provision) // starts the TPM up if it needs it
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, err = tpm2.PCRExtend{
		PCRHandle: tpm2.AuthHandle{Handle: tpm2.TPMHandle(4), Auth: tpm2.PasswordAuth(nil)},
		Digests:   tpm2.TPMLDigestValues{Digests: []tpm2.TPMTHA{{HashAlg: tpm2.TPMAlgSHA256, Digest: digest}}},
	}.Execute(s.tpm)
	if err != nil {
		t.Fatalf("PCR_Extend: %v", err)
	}
	h := sha256.New()
	h.Write(make([]byte, 32))
	h.Write(digest)
	return h.Sum(nil)
}

func TestAttestationKeyIsRestrictedAndCertifiedByTheIdentity(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s := newStore(t, b, provision)
		ak, err := s.AttestationKey()
		if err != nil {
			t.Fatalf("AttestationKey: %v", err)
		}
		requireTransient(t, s, 0, "AttestationKey")
		p := readPublic(t, s, DefaultAttestationHandle)
		a := p.ObjectAttributes
		if !a.Restricted || !a.SignEncrypt || a.Decrypt || !a.FixedTPM || !a.FixedParent || !a.SensitiveDataOrigin {
			t.Errorf("attestation key attributes %+v: want restricted, sign, fixedTPM, fixedParent, sensitiveDataOrigin", a)
		}
		if !bytes.Equal(tpm2.Marshal(*p), ak.Public) {
			t.Error("AttestationKey().Public is not the TPM's public area at the handle")
		}
		// The certification: a TPMS_ATTEST made by the TPM, naming the AK,
		// carrying the label, signed by the identity key.
		info, err := tpm2.Unmarshal[tpm2.TPMSAttest](ak.CertifyInfo)
		if err != nil {
			t.Fatalf("certify info: %v", err)
		}
		if info.Magic != tpm2.TPMGeneratedValue || info.Type != tpm2.TPMSTAttestCertify {
			t.Fatalf("certify info magic %x type %v", info.Magic, info.Type)
		}
		if string(info.ExtraData.Buffer) != AttestationLabel {
			t.Errorf("certify qualifying data %q, want %q", info.ExtraData.Buffer, AttestationLabel)
		}
		cert, err := info.Attested.Certify()
		if err != nil {
			t.Fatal(err)
		}
		name, err := tpm2.ObjectName(p)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(cert.Name.Buffer, name.Buffer) {
			t.Error("certification names another object than the attestation key")
		}
		sig, err := tpm2.Unmarshal[tpm2.TPMTSignature](ak.CertifySignature)
		if err != nil {
			t.Fatal(err)
		}
		es, err := sig.Signature.ECDSA()
		if err != nil {
			t.Fatal(err)
		}
		d := sha256.Sum256(ak.CertifyInfo)
		if !ecdsa.Verify(s.Identity().Public().(*ecdsa.PublicKey), d[:], new(big.Int).SetBytes(es.SignatureR.Buffer), new(big.Int).SetBytes(es.SignatureS.Buffer)) {
			t.Error("certification does not verify with the identity key")
		}
		// The Central Station's check of an enrollment record accepts it.
		rec, err := enroll.New(s.Identity().Public(), s.PayloadKey().PublicKey(), "ZM-001", "SN-1", "1.2.3")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := rec.WithAttestationKey(ak.Public, ak.CertifyInfo, ak.CertifySignature); err != nil {
			t.Errorf("enroll refuses the TPM's attestation key: %v", err)
		}
		// Asked again, the same key (not a new one).
		again, err := s.AttestationKey()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(again.Public, ak.Public) {
			t.Error("a second AttestationKey made another key")
		}
	})
}

func TestQuoteCoversPCR4And7WithTheNonce(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		image := sha256.Sum256([]byte("zmonitor.efi"))
		pcr4 := extendPCR4(t, b, image[:])
		s := newStore(t, b, nil)
		ak, err := s.AttestationKey()
		if err != nil {
			t.Fatal(err)
		}
		nonce := bytes.Repeat([]byte{7}, 32)
		q, err := s.Quote(nonce)
		if err != nil {
			t.Fatalf("Quote: %v", err)
		}
		requireTransient(t, s, 0, "Quote")
		if len(q.PCRs) != 2 || !bytes.Equal(q.PCRs[0], pcr4) || !bytes.Equal(q.PCRs[1], make([]byte, 32)) {
			t.Fatalf("PCR values %x, want PCR 4 %x and PCR 7 zero", q.PCRs, pcr4)
		}
		pub, err := attest.ParseAKPublic(ak.Public)
		if err != nil {
			t.Fatal(err)
		}
		pcrs := []attest.PCR{{Index: 4, Digest: q.PCRs[0], DigestAlg: crypto.SHA256}, {Index: 7, Digest: q.PCRs[1], DigestAlg: crypto.SHA256}}
		if err := pub.Verify(attest.Quote{Quote: q.Attest, Signature: q.Signature}, pcrs, nonce); err != nil {
			t.Fatalf("go-attestation refuses the quote: %v", err)
		}
		if err := pub.Verify(attest.Quote{Quote: q.Attest, Signature: q.Signature}, pcrs, bytes.Repeat([]byte{8}, 32)); err == nil {
			t.Error("the quote verified with another nonce")
		}
		if _, err := s.Quote(nil); err == nil {
			t.Error("Quote with an empty nonce: no error")
		}
	})
}

// BenchmarkHelloQuote is the TPM work attestation adds to one hello on
// swtpm (unix socket): the quote of PCR 4 and 7 (ReadPublic of the
// attestation key, PCR_Read, Quote). TestHelloQuoteCommandCount pins it.
func BenchmarkHelloQuote(b *testing.B) {
	s, counter := countedSwtpm(b)
	if _, err := s.AttestationKey(); err != nil {
		b.Fatal(err)
	}
	nonce := bytes.Repeat([]byte{1}, 32)
	counter.Reset()
	n := 0
	for b.Loop() {
		if _, err := s.Quote(nonce); err != nil {
			b.Fatal(err)
		}
		n++
	}
	b.ReportMetric(float64(counter.Total())/float64(n), "cmds/hello")
	for _, st := range counter.Stats() {
		b.ReportMetric(float64(st.Mean().Nanoseconds()), "ns/"+tpmcount.Name(st.Code))
	}
}

func TestHelloQuoteCommandCount(t *testing.T) {
	s, counter := countedSwtpm(t)
	counter.Reset()
	if _, err := s.AttestationKey(); err != nil {
		t.Fatal(err)
	}
	// First time: ReadPublic (absent), Create, Load, EvictControl,
	// ReadPublic, FlushContext, Certify = 7.
	if got := counter.Total(); got != 7 {
		t.Errorf("first AttestationKey = %d TPM commands, want 7:\n%s", got, counter)
	}
	counter.Reset()
	if _, err := s.Quote(bytes.Repeat([]byte{1}, 32)); err != nil {
		t.Fatal(err)
	}
	if got := counter.Total(); got != 3 {
		t.Errorf("Quote = %d TPM commands, want 3 (ReadPublic, PCR_Read, Quote):\n%s", got, counter)
	}
}
