package tpm

import (
	"fmt"

	"github.com/google/go-tpm/tpm2"

	"github.com/zmonitor/firmware/internal/fw/keys"
	"github.com/zmonitor/firmware/internal/proto/enroll"
)

var _ keys.Attester = (*Store)(nil)

// DefaultAttestationHandle is the persistent handle of the attestation key
// (AK), next to the client key slots.
const DefaultAttestationHandle tpm2.TPMHandle = 0x81010005

// AttestationLabel is the qualifying data of the identity key's TPM2_Certify
// of the attestation key: it names what the certification is for.
const AttestationLabel = enroll.AttestationLabel

// AttestedPCRs are the PCRs a quote covers (SHA-256 bank): 4 (the booted
// image, Authenticode digest) and 7 (the Secure Boot policy).
var AttestedPCRs = []uint{4, 7}

// AttestationTemplate is the template of the attestation key: ECC P-256,
// ECDSA/SHA-256, restricted signing. A restricted key signs only what the
// TPM itself produced (quotes, certifications) or digests the TPM hashed
// and found not to start with TPM_GENERATED_VALUE, so even firmware that
// holds the key cannot make it sign a fabricated quote.
func AttestationTemplate() tpm2.TPMTPublic {
	a := fixedAttrs()
	a.SignEncrypt = true
	a.Restricted = true
	return tpm2.TPMTPublic{
		Type:             tpm2.TPMAlgECC,
		NameAlg:          tpm2.TPMAlgSHA256,
		ObjectAttributes: a,
		Parameters:       eccParms(ecdsaScheme()),
		Unique:           emptyUnique(),
	}
}

// AttestationKey returns the attestation key, creating and persisting it at
// Opts.AttestationHandle when the TPM has none (first boot, or a device
// made before attestation), and certifies it with the identity key
// (TPM2_Certify). TPM commands: ReadPublic, Certify; when the key is
// missing also Create, Load, EvictControl, ReadPublic, FlushContext.
func (s *Store) AttestationKey() (keys.AttestationKey, error) {
	const step = "attestation key"
	if err := s.lock(step); err != nil {
		return keys.AttestationKey{}, err
	}
	defer s.mu.Unlock()
	ak, err := s.ensureAK()
	if err != nil {
		return keys.AttestationKey{}, err
	}
	rsp, err := tpm2.Certify{
		ObjectHandle:   ak.auth(),
		SignHandle:     s.identity.key.auth(),
		QualifyingData: tpm2.TPM2BData{Buffer: []byte(AttestationLabel)},
		InScheme: tpm2.TPMTSigScheme{
			Scheme:  tpm2.TPMAlgECDSA,
			Details: tpm2.NewTPMUSigScheme(tpm2.TPMAlgECDSA, &tpm2.TPMSSchemeHash{HashAlg: tpm2.TPMAlgSHA256}),
		},
	}.Execute(s.tpm)
	if err != nil {
		return keys.AttestationKey{}, wrap("certify attestation key", err)
	}
	return keys.AttestationKey{
		Public:           tpm2.Marshal(ak.public),
		CertifyInfo:      rsp.CertifyInfo.Bytes(),
		CertifySignature: tpm2.Marshal(rsp.Signature),
	}, nil
}

// Quote reads the SHA-256 values of AttestedPCRs and has the attestation
// key quote them with nonce as qualifying data. TPM commands: ReadPublic
// (the key), PCR_Read, Quote.
func (s *Store) Quote(nonce []byte) (keys.Quote, error) {
	const step = "quote"
	if len(nonce) == 0 || len(nonce) > 32 {
		return keys.Quote{}, fmt.Errorf("tpm: %s: nonce of %d bytes, want 1 to 32", step, len(nonce))
	}
	if err := s.lock(step); err != nil {
		return keys.Quote{}, err
	}
	defer s.mu.Unlock()
	ak, err := s.ensureAK()
	if err != nil {
		return keys.Quote{}, err
	}
	sel := tpm2.TPMLPCRSelection{PCRSelections: []tpm2.TPMSPCRSelection{{
		Hash: tpm2.TPMAlgSHA256, PCRSelect: tpm2.PCClientCompatible.PCRs(AttestedPCRs...),
	}}}
	pr, err := tpm2.PCRRead{PCRSelectionIn: sel}.Execute(s.tpm)
	if err != nil {
		return keys.Quote{}, wrap("quote: read PCRs", err)
	}
	if len(pr.PCRValues.Digests) != len(AttestedPCRs) {
		return keys.Quote{}, fmt.Errorf("tpm: quote: read PCRs: %d values, want %d (no SHA-256 bank?)", len(pr.PCRValues.Digests), len(AttestedPCRs))
	}
	q, err := tpm2.Quote{
		SignHandle:     ak.auth(),
		QualifyingData: tpm2.TPM2BData{Buffer: nonce},
		InScheme:       tpm2.TPMTSigScheme{Scheme: tpm2.TPMAlgNull},
		PCRSelect:      sel,
	}.Execute(s.tpm)
	if err != nil {
		return keys.Quote{}, wrap(step, err)
	}
	out := keys.Quote{Attest: q.Quoted.Bytes(), Signature: tpm2.Marshal(q.Signature)}
	for _, d := range pr.PCRValues.Digests {
		out.PCRs = append(out.PCRs, append([]byte(nil), d.Buffer...))
	}
	return out, nil
}

// ensureAK reads the attestation key, creating it when absent. The caller
// holds s.mu.
func (s *Store) ensureAK() (persistentKey, error) {
	k, ok, err := s.readKey(RoleAttestation, s.opts.AttestationHandle)
	if err != nil || ok {
		return k, err
	}
	k, err = s.createPersistent(RoleAttestation, s.opts.AttestationHandle)
	if err != nil {
		return persistentKey{}, err
	}
	return k, nil
}
