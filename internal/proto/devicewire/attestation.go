package devicewire

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
)

// Attestation limits.
const (
	// AttestationNonceSize is the size of the Central Station's attestation
	// nonce (the quote's qualifying data).
	AttestationNonceSize = 32
	// MaxEventLog bounds the event log a hello carries (U-Boot's on the
	// secure board is about 5 KiB; base64 of 32 KiB keeps the hello under
	// MaxResponse).
	MaxEventLog = 32 << 10
	// maxTPMStructure bounds the quote and its signature.
	maxTPMStructure = 1 << 10
	// maxUnmeasured bounds the reason a device gives for having no quote.
	maxUnmeasured = 200
)

// Attestation is the hello's proof of what the device booted: a TPM2_Quote
// of PCR 4 and 7 with the Central Station's attestation nonce, by the
// attestation key of the enrollment record, and the firmware's event log.
// A device without measured boot sends only Unmeasured, its reason.
type Attestation struct {
	Quote          string `json:"quote,omitempty"`          // base64 TPMS_ATTEST
	QuoteSignature string `json:"quoteSignature,omitempty"` // base64 TPMT_SIGNATURE
	PCR4           string `json:"pcr4,omitempty"`           // lowercase hex SHA-256
	PCR7           string `json:"pcr7,omitempty"`           // lowercase hex SHA-256
	EventLog       string `json:"eventLog,omitempty"`       // base64 binary_bios_measurements
	Unmeasured     string `json:"unmeasured,omitempty"`     // why there is no quote
}

// Evidence is a decoded Attestation with a quote.
type Evidence struct {
	Quote, QuoteSignature []byte
	PCR4, PCR7            []byte
	EventLog              []byte
}

// NewAttestation encodes evidence for a hello.
func NewAttestation(ev Evidence) *Attestation {
	return &Attestation{
		Quote:          base64.StdEncoding.EncodeToString(ev.Quote),
		QuoteSignature: base64.StdEncoding.EncodeToString(ev.QuoteSignature),
		PCR4:           hex.EncodeToString(ev.PCR4),
		PCR7:           hex.EncodeToString(ev.PCR7),
		EventLog:       base64.StdEncoding.EncodeToString(ev.EventLog),
	}
}

// Unmeasured is the attestation of a device that cannot quote, with why
// (cut to 200 bytes).
func Unmeasured(why string) *Attestation {
	if len(why) > maxUnmeasured {
		why = why[:maxUnmeasured]
	}
	if why == "" {
		why = "no reason given"
	}
	return &Attestation{Unmeasured: why}
}

// decode checks a. It returns the evidence, or nil and the device's reason
// for having none.
func (a *Attestation) decode() (*Evidence, string, error) {
	if a == nil {
		return nil, "the device sent no attestation (firmware before attestation)", nil
	}
	if a.Unmeasured != "" {
		if a.Quote != "" || a.QuoteSignature != "" || a.PCR4 != "" || a.PCR7 != "" || a.EventLog != "" {
			return nil, "", errors.New("attestation: both a quote and a reason for having none")
		}
		if len(a.Unmeasured) > maxUnmeasured {
			return nil, "", fmt.Errorf("attestation: reason longer than %d bytes", maxUnmeasured)
		}
		return nil, a.Unmeasured, nil
	}
	var ev Evidence
	var err error
	for _, f := range []struct {
		name string
		s    string
		max  int
		out  *[]byte
	}{
		{"quote", a.Quote, maxTPMStructure, &ev.Quote},
		{"quoteSignature", a.QuoteSignature, maxTPMStructure, &ev.QuoteSignature},
		{"eventLog", a.EventLog, MaxEventLog, &ev.EventLog},
	} {
		if f.s == "" {
			return nil, "", fmt.Errorf("attestation: %s missing", f.name)
		}
		if len(f.s) > base64.StdEncoding.EncodedLen(f.max) {
			return nil, "", fmt.Errorf("attestation: %s longer than %d bytes", f.name, f.max)
		}
		if *f.out, err = base64.StdEncoding.Strict().DecodeString(f.s); err != nil {
			return nil, "", fmt.Errorf("attestation: %s: %w", f.name, err)
		}
		if len(*f.out) > f.max {
			return nil, "", fmt.Errorf("attestation: %s longer than %d bytes", f.name, f.max)
		}
	}
	for _, f := range []struct {
		name string
		s    string
		out  *[]byte
	}{{"pcr4", a.PCR4, &ev.PCR4}, {"pcr7", a.PCR7, &ev.PCR7}} {
		if *f.out, err = hex.DecodeString(f.s); err != nil || len(*f.out) != 32 {
			return nil, "", fmt.Errorf("attestation: %s is not 64 hex digits", f.name)
		}
	}
	return &ev, "", nil
}
