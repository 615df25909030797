package tpm

import (
	"fmt"

	"github.com/google/go-tpm/tpm2"
)

// DefaultAttestationHandle is the persistent handle of the attestation key
// (AK), next to the client key slots.
const DefaultAttestationHandle tpm2.TPMHandle = 0x81010005

// AttestationLabel is the qualifying data of the identity key's TPM2_Certify
// of the attestation key: it names what the certification is for.
const AttestationLabel = "zmonitor-ak-v1"

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

// AttestationKey is the attestation key's public area and its
// certification by the identity key, each in its TPM wire form.
type AttestationKey struct {
	Public           []byte // TPMT_PUBLIC
	CertifyInfo      []byte // TPMS_ATTEST (TPM_ST_ATTEST_CERTIFY, qualifying data AttestationLabel)
	CertifySignature []byte // TPMT_SIGNATURE by the identity key
}

// Quote is a TPM2_Quote over AttestedPCRs and the PCR values it covers.
type Quote struct {
	Attest    []byte   // TPMS_ATTEST (TPM_ST_ATTEST_QUOTE)
	Signature []byte   // TPMT_SIGNATURE by the attestation key
	PCRs      [][]byte // SHA-256 values of AttestedPCRs, in that order
}

// AttestationKey returns the attestation key, creating and persisting it at
// Opts.AttestationHandle when the TPM has none (first boot, or a device
// made before attestation), and certifies it with the identity key
// (TPM2_Certify). TPM commands: ReadPublic, Certify; when the key is
// missing also Create, Load, EvictControl, ReadPublic, FlushContext.
func (s *Store) AttestationKey() (AttestationKey, error) {
	const step = "attestation key"
	if err := s.lock(step); err != nil {
		return AttestationKey{}, err
	}
	defer s.mu.Unlock()
	ak, err := s.ensureAK()
	if err != nil {
		return AttestationKey{}, err
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
		return AttestationKey{}, wrap("certify attestation key", err)
	}
	return AttestationKey{
		Public:           tpm2.Marshal(ak.public),
		CertifyInfo:      rsp.CertifyInfo.Bytes(),
		CertifySignature: tpm2.Marshal(rsp.Signature),
	}, nil
}

// Quote reads the SHA-256 values of AttestedPCRs and has the attestation
// key quote them with nonce as qualifying data. TPM commands: ReadPublic
// (the key), PCR_Read, Quote.
func (s *Store) Quote(nonce []byte) (Quote, error) {
	const step = "quote"
	if len(nonce) == 0 || len(nonce) > 32 {
		return Quote{}, fmt.Errorf("tpm: %s: nonce of %d bytes, want 1 to 32", step, len(nonce))
	}
	if err := s.lock(step); err != nil {
		return Quote{}, err
	}
	defer s.mu.Unlock()
	ak, err := s.ensureAK()
	if err != nil {
		return Quote{}, err
	}
	sel := tpm2.TPMLPCRSelection{PCRSelections: []tpm2.TPMSPCRSelection{{
		Hash: tpm2.TPMAlgSHA256, PCRSelect: tpm2.PCClientCompatible.PCRs(AttestedPCRs...),
	}}}
	pr, err := tpm2.PCRRead{PCRSelectionIn: sel}.Execute(s.tpm)
	if err != nil {
		return Quote{}, wrap("quote: read PCRs", err)
	}
	if len(pr.PCRValues.Digests) != len(AttestedPCRs) {
		return Quote{}, fmt.Errorf("tpm: quote: read PCRs: %d values, want %d (no SHA-256 bank?)", len(pr.PCRValues.Digests), len(AttestedPCRs))
	}
	q, err := tpm2.Quote{
		SignHandle:     ak.auth(),
		QualifyingData: tpm2.TPM2BData{Buffer: nonce},
		InScheme:       tpm2.TPMTSigScheme{Scheme: tpm2.TPMAlgNull},
		PCRSelect:      sel,
	}.Execute(s.tpm)
	if err != nil {
		return Quote{}, wrap(step, err)
	}
	out := Quote{Attest: q.Quoted.Bytes(), Signature: tpm2.Marshal(q.Signature)}
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
