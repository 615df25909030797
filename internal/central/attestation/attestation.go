package attestation

import (
	"bytes"
	"crypto"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/google/go-attestation/attest"

	"github.com/zmonitor/firmware/internal/proto/devicewire"
	"github.com/zmonitor/firmware/internal/proto/enroll"
)

// ErrNotTrusted is wrapped by every refusal: the device's firmware is not
// shown to be a released image (failure code FIRMWARE_NOT_TRUSTED).
var ErrNotTrusted = errors.New("firmware not trusted")

// Evidence is what a device with measured boot sends in its hello: the
// quote (TPMS_ATTEST, TPMT_SIGNATURE), the SHA-256 PCR 4 and 7 values it
// covers, and the event log (TCG crypto-agile).
type Evidence = devicewire.Evidence

// Firmware is one entry of the allow-list: a released image as its
// manifest describes it.
type Firmware struct {
	Authenticode string // SHA-256 Authenticode digest, lowercase hex
	Version      string
	PCR4, PCR7   string // expected SHA-256 values, lowercase hex
	Denied       bool   // withdrawn: `zm-central firmware deny`
}

// Lookup finds an allow-list entry by Authenticode digest; ok is false when
// there is none.
type Lookup func(authenticode string) (fw Firmware, ok bool, err error)

// Input is one hello's attestation, with what the Central Station knows.
type Input struct {
	// AK is the attestation key of the device's enrollment record; nil for
	// a record made before attestation.
	AK *enroll.AttestationKey
	// Nonce is the attestation nonce the Central Station sent in this hello.
	Nonce []byte
	// Evidence is nil when the device said it has no measured boot;
	// Unmeasured is then its reason.
	Evidence   *Evidence
	Unmeasured string
	// AllowUnmeasured is --allow-unmeasured-dev-firmware.
	AllowUnmeasured bool
	Lookup          Lookup
}

// Verdict is a trusted firmware's description, for the audit record.
type Verdict struct {
	// Firmware is the allow-list entry of the booted image; zero for an
	// unmeasured development device let through by AllowUnmeasured.
	Firmware Firmware
	// Unmeasured is set when the device was let through without
	// evidence, with the reason.
	Unmeasured string
}

// String describes the verdict for the audit log.
func (v Verdict) String() string {
	if v.Unmeasured != "" {
		return "unmeasured development firmware allowed by --allow-unmeasured-dev-firmware: " + v.Unmeasured
	}
	return fmt.Sprintf("firmware %s (image %s) attested", v.Firmware.Version, v.Firmware.Authenticode)
}

func refuse(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrNotTrusted, fmt.Sprintf(format, a...))
}

// evBootServicesApplication is EV_EFI_BOOT_SERVICES_APPLICATION: the
// firmware measured an EFI program (its Authenticode digest) before
// starting it.
const evBootServicesApplication = attest.EventType(0x80000003)

// Verify decides whether in shows a released firmware. Every refusal
// wraps ErrNotTrusted and says which check failed.
func Verify(in Input) (Verdict, error) {
	if in.Evidence == nil || in.AK == nil {
		why := in.Unmeasured
		switch {
		case in.Evidence == nil && why == "":
			why = "the device sent no attestation"
		case in.Evidence == nil:
			why = "the device has no measured boot: " + why
		default:
			why = "the enrollment record has no attestation key (exported before attestation)"
		}
		if in.AllowUnmeasured {
			return Verdict{Unmeasured: why}, nil
		}
		return Verdict{}, refuse("%s", why)
	}
	ev := in.Evidence
	if len(ev.PCR4) != 32 || len(ev.PCR7) != 32 {
		return Verdict{}, refuse("PCR values are not SHA-256 digests")
	}
	ak, err := attest.ParseAKPublic(in.AK.Public)
	if err != nil {
		return Verdict{}, refuse("attestation key: %v", err)
	}
	pcrs := []attest.PCR{
		{Index: 4, Digest: ev.PCR4, DigestAlg: crypto.SHA256},
		{Index: 7, Digest: ev.PCR7, DigestAlg: crypto.SHA256},
	}
	if err := ak.Verify(attest.Quote{Quote: ev.Quote, Signature: ev.QuoteSignature}, pcrs, in.Nonce); err != nil {
		return Verdict{}, refuse("quote does not verify with the enrolled attestation key over this hello's nonce: %v", err)
	}
	log, err := attest.ParseEventLog(ev.EventLog)
	if err != nil {
		return Verdict{}, refuse("event log: %v", err)
	}
	events, err := log.Verify(pcrs)
	if err != nil {
		return Verdict{}, refuse("event log does not replay to the quoted PCRs: %v", err)
	}
	var image []byte
	for _, e := range events {
		if e.Index == 4 && e.Type == evBootServicesApplication {
			image = e.Digest
			break
		}
	}
	if image == nil {
		return Verdict{}, refuse("event log has no EFI application measured into PCR 4")
	}
	digest := hex.EncodeToString(image)
	fw, ok, err := in.Lookup(digest)
	if err != nil {
		return Verdict{}, fmt.Errorf("attestation: firmware allow-list: %w", err)
	}
	switch {
	case !ok:
		return Verdict{}, refuse("booted image %s is not on the firmware allow-list", digest)
	case fw.Denied:
		return Verdict{}, refuse("booted image %s (firmware %s) was denied", digest, fw.Version)
	}
	if !hexEqual(fw.PCR4, ev.PCR4) || !hexEqual(fw.PCR7, ev.PCR7) {
		return Verdict{}, refuse("PCR 4/7 are not the values firmware %s's manifest expects (another Secure Boot policy or boot path)", fw.Version)
	}
	return Verdict{Firmware: fw}, nil
}

func hexEqual(h string, b []byte) bool {
	d, err := hex.DecodeString(h)
	return err == nil && bytes.Equal(d, b)
}
