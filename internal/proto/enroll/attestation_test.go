package enroll_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"strings"
	"testing"

	"github.com/google/go-tpm/tpm2"

	"github.com/zmonitor/firmware/drivers/tpm"
	"github.com/zmonitor/firmware/internal/proto/enroll"
	"github.com/zmonitor/firmware/internal/testkit/fakeak"
)

func device(t *testing.T) (*ecdsa.PrivateKey, enroll.Record) {
	t.Helper()
	id, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pay, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	payECDH, _ := pay.ECDH()
	rec, err := enroll.New(&id.PublicKey, payECDH.PublicKey(), "ZM-001", "SN-1", "1.2.3")
	if err != nil {
		t.Fatal(err)
	}
	return id, rec
}

func TestRecordWithAttestationKeyRoundTrips(t *testing.T) {
	id, rec := device(t)
	ak := fakeak.New(t)
	c := ak.Certified(t, id)
	rec, err := rec.WithAttestationKey(c.Public, c.CertifyInfo, c.CertifySignature)
	if err != nil {
		t.Fatalf("WithAttestationKey: %v", err)
	}
	b, err := rec.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > enroll.MaxRecord {
		t.Fatalf("record of %d bytes, over MaxRecord", len(b))
	}
	got, err := enroll.Parse(b)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	k, err := got.CheckedAttestationKey()
	if err != nil || k == nil || !k.Key.Equal(&ak.Key.PublicKey) {
		t.Fatalf("CheckedAttestationKey = %v, %v; want the AK", k, err)
	}
}

func TestRecordWithoutAttestationKeyStillParses(t *testing.T) {
	_, rec := device(t)
	b, _ := rec.Marshal()
	if strings.Contains(string(b), "attestation") {
		t.Fatalf("a record without AK names attestation fields: %s", b)
	}
	got, err := enroll.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.HasAttestationKey() {
		t.Error("HasAttestationKey on an old record")
	}
	if k, err := got.CheckedAttestationKey(); k != nil || err != nil {
		t.Errorf("CheckedAttestationKey = %v, %v; want nil, nil", k, err)
	}
}

func TestAttestationKeyRefusals(t *testing.T) {
	id, rec := device(t)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ak := fakeak.New(t)
	good := ak.Certified(t, id)
	unrestricted := fakeak.PublicOf(tpm.SigningTemplate(), &ak.Key.PublicKey)
	unrestrictedInfo := fakeak.CertifyInfo(t, unrestricted, enroll.AttestationLabel)
	otherAK := fakeak.New(t)
	otherInfo := fakeak.CertifyInfo(t, otherAK.Public, enroll.AttestationLabel)
	labelInfo := fakeak.CertifyInfo(t, ak.Public, "something else")
	for _, c := range []struct {
		name           string
		pub, info, sig []byte
		want           string
	}{
		{"certified by another device's identity", good.Public, good.CertifyInfo, fakeak.Sign(t, other, good.CertifyInfo), "does not verify with identityPublicKey"},
		{"certification of another key", good.Public, otherInfo, fakeak.Sign(t, id, otherInfo), "names another key"},
		{"another label", good.Public, labelInfo, fakeak.Sign(t, id, labelInfo), "qualifying data"},
		{"unrestricted key", tpm2.Marshal(unrestricted), unrestrictedInfo, fakeak.Sign(t, id, unrestrictedInfo), "not a restricted signing key"},
		{"trailing bytes", append(append([]byte{}, good.Public...), 0), good.CertifyInfo, good.CertifySignature, "trailing"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := rec.WithAttestationKey(c.pub, c.info, c.sig)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want one containing %q", err, c.want)
			}
		})
	}
	half := rec
	half.AttestationKey = "AAAA"
	if err := half.Validate(); err == nil || !strings.Contains(err.Error(), "come together") {
		t.Errorf("a record with only attestationKey: %v", err)
	}
}
