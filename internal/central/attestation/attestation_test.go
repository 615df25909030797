package attestation

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/zmonitor/firmware/internal/proto/enroll"
	"github.com/zmonitor/firmware/internal/testkit/fakeak"
)

// A U-Boot boot of zmonitor.efi: the Secure Boot policy into PCR 7, the
// image and then the kernel systemd-stub loads into PCR 4.
var (
	imageDigest  = sha256.Sum256([]byte("zmonitor.efi Authenticode"))
	kernelDigest = sha256.Sum256([]byte("signed kernel Authenticode"))
)

func bootEvents(image []byte, secureBoot byte) []testEvent {
	return []testEvent{
		{pcr: 7, typ: 0x80000001, data: []byte{'S', 'B', secureBoot}},
		{pcr: 7, typ: 0x80000001, data: []byte("PK, KEK, db")},
		{pcr: 4, typ: 0x80000003, digest: image, data: []byte("image load event")},
		{pcr: 4, typ: 0x80000007, data: []byte("Calling EFI Application from Boot Option")},
		{pcr: 4, typ: 4, data: []byte{0, 0, 0, 0}},
		{pcr: 7, typ: 4, data: []byte{0, 0, 0, 0}},
		{pcr: 4, typ: 0x80000003, digest: kernelDigest[:], data: []byte("kernel load event")},
	}
}

// device is an enrolled device with an attestation key.
type device struct {
	ak  *fakeak.AK
	rec *enroll.AttestationKey
}

func newDevice(t *testing.T) device {
	t.Helper()
	id, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pay, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	payECDH, _ := pay.ECDH()
	rec, err := enroll.New(&id.PublicKey, payECDH.PublicKey(), "ZM-001", "SN-1", "1.2.3")
	if err != nil {
		t.Fatal(err)
	}
	ak := fakeak.New(t)
	c := ak.Certified(t, id)
	if rec, err = rec.WithAttestationKey(c.Public, c.CertifyInfo, c.CertifySignature); err != nil {
		t.Fatal(err)
	}
	k, err := rec.CheckedAttestationKey()
	if err != nil {
		t.Fatal(err)
	}
	return device{ak: ak, rec: k}
}

// boot returns the evidence of a boot with events, quoted by d with nonce.
func (d device) boot(t *testing.T, events []testEvent, nonce []byte) *Evidence {
	t.Helper()
	log, pcrs := eventLog(events)
	q := d.ak.Quote(t, nonce, pcrs[4], pcrs[7])
	return &Evidence{Quote: q.Attest, QuoteSignature: q.Signature, PCR4: pcrs[4], PCR7: pcrs[7], EventLog: log}
}

// allowList holds the released image with the PCR values of a good boot.
func allowList(t *testing.T, denied bool) Lookup {
	t.Helper()
	_, pcrs := eventLog(bootEvents(imageDigest[:], 1))
	fw := Firmware{Authenticode: hex.EncodeToString(imageDigest[:]), Version: "1.2.3",
		PCR4: hex.EncodeToString(pcrs[4]), PCR7: hex.EncodeToString(pcrs[7]), Denied: denied}
	return func(d string) (Firmware, bool, error) {
		if d == fw.Authenticode {
			return fw, true, nil
		}
		return Firmware{}, false, nil
	}
}

func nonce(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

func TestVerify(t *testing.T) {
	dev := newDevice(t)
	other := newDevice(t)
	good := bootEvents(imageDigest[:], 1)
	unknown := sha256.Sum256([]byte("modified image"))
	tampered := dev.boot(t, good, nonce(1))
	tampered.EventLog, _ = eventLog(bootEvents(unknown[:], 1)) // the quote's PCRs are the good boot's
	for _, c := range []struct {
		name string
		in   Input
		want string // "" = trusted
	}{
		{"good quote", Input{AK: dev.rec, Nonce: nonce(1), Evidence: dev.boot(t, good, nonce(1)), Lookup: allowList(t, false)}, ""},
		{"replayed quote (an old nonce)", Input{AK: dev.rec, Nonce: nonce(2), Evidence: dev.boot(t, good, nonce(1)), Lookup: allowList(t, false)}, "nonce"},
		{"quote by another device's attestation key", Input{AK: dev.rec, Nonce: nonce(1), Evidence: other.boot(t, good, nonce(1)), Lookup: allowList(t, false)}, "does not verify with the enrolled attestation key"},
		{"image not on the allow-list", Input{AK: dev.rec, Nonce: nonce(1), Evidence: dev.boot(t, bootEvents(unknown[:], 1), nonce(1)), Lookup: allowList(t, false)}, "not on the firmware allow-list"},
		{"image denied", Input{AK: dev.rec, Nonce: nonce(1), Evidence: dev.boot(t, good, nonce(1)), Lookup: allowList(t, true)}, "was denied"},
		{"Secure Boot off (PCR 7)", Input{AK: dev.rec, Nonce: nonce(1), Evidence: dev.boot(t, bootEvents(imageDigest[:], 0), nonce(1)), Lookup: allowList(t, false)}, "PCR 4/7"},
		{"event log that does not replay", Input{AK: dev.rec, Nonce: nonce(1), Evidence: tampered, Lookup: allowList(t, false)}, "does not replay"},
		{"no measured boot, no flag", Input{AK: dev.rec, Nonce: nonce(1), Unmeasured: "no event log", Lookup: allowList(t, false)}, "no measured boot"},
		{"no measured boot, flag", Input{AK: dev.rec, Nonce: nonce(1), Unmeasured: "no event log", AllowUnmeasured: true, Lookup: allowList(t, false)}, ""},
		{"record without attestation key", Input{Nonce: nonce(1), Evidence: dev.boot(t, good, nonce(1)), Lookup: allowList(t, false)}, "no attestation key"},
		{"garbage event log", Input{AK: dev.rec, Nonce: nonce(1), Evidence: &Evidence{Quote: tampered.Quote, QuoteSignature: tampered.QuoteSignature, PCR4: tampered.PCR4, PCR7: tampered.PCR7, EventLog: []byte("junk")}, Lookup: allowList(t, false)}, "event log"},
	} {
		t.Run(c.name, func(t *testing.T) {
			v, err := Verify(c.in)
			if c.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if c.in.Evidence != nil && v.Firmware.Version != "1.2.3" {
					t.Errorf("verdict %+v, want firmware 1.2.3", v)
				}
				return
			}
			if !errors.Is(err, ErrNotTrusted) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want ErrNotTrusted containing %q", err, c.want)
			}
		})
	}
}

func BenchmarkVerify(b *testing.B) {
	t := &testing.T{}
	dev := newDevice(t)
	in := Input{AK: dev.rec, Nonce: nonce(1), Evidence: dev.boot(t, bootEvents(imageDigest[:], 1), nonce(1)), Lookup: allowList(t, false)}
	for b.Loop() {
		if _, err := Verify(in); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzVerify: whatever a device sends as quote, signature and event log,
// Verify refuses with ErrNotTrusted or accepts; it never panics.
func FuzzVerify(f *testing.F) {
	t := &testing.T{}
	dev := newDevice(t)
	ev := dev.boot(t, bootEvents(imageDigest[:], 1), nonce(1))
	f.Add(ev.Quote, ev.QuoteSignature, ev.EventLog)
	f.Fuzz(func(t *testing.T, quote, sig, log []byte) {
		in := Input{AK: dev.rec, Nonce: nonce(1), Evidence: &Evidence{Quote: quote, QuoteSignature: sig, PCR4: ev.PCR4, PCR7: ev.PCR7, EventLog: log}, Lookup: allowList(t, false)}
		if _, err := Verify(in); err != nil && !errors.Is(err, ErrNotTrusted) {
			t.Fatalf("error not ErrNotTrusted: %v", err)
		}
	})
}
