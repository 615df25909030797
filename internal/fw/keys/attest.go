package keys

// Attester is a key store that can prove what the device booted: a TPM
// with an attestation key (drivers/tpm). Stores without one (softkeys, the
// host tools) do not implement it.
type Attester interface {
	// AttestationKey returns the attestation key's public area and the
	// identity key's certification of it, making the key the first time.
	AttestationKey() (AttestationKey, error)
	// Quote signs the boot PCRs (4 and 7) with nonce as qualifying data.
	Quote(nonce []byte) (Quote, error)
}

// AttestationKey is an attestation key's public area and its
// certification by the identity key, each in its TPM wire form.
type AttestationKey struct {
	Public           []byte // TPMT_PUBLIC
	CertifyInfo      []byte // TPMS_ATTEST (TPM_ST_ATTEST_CERTIFY)
	CertifySignature []byte // TPMT_SIGNATURE by the identity key
}

// Quote is a TPM2_Quote over the boot PCRs and the values it covers.
type Quote struct {
	Attest    []byte   // TPMS_ATTEST (TPM_ST_ATTEST_QUOTE)
	Signature []byte   // TPMT_SIGNATURE by the attestation key
	PCRs      [][]byte // SHA-256 values of PCR 4 and 7, in that order
}
