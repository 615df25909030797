package enroll

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"

	"github.com/google/go-tpm/tpm2"
)

// AttestationLabel is the qualifying data of the identity key's
// TPM2_Certify of the attestation key (drivers/tpm makes it): it says what
// the certification is for.
const AttestationLabel = "zmonitor-ak-v1"

// maxTPMBlob bounds each decoded attestation field (a P-256 TPMT_PUBLIC is
// about 90 bytes, a TPMS_ATTEST of a certification about 150).
const maxTPMBlob = 512

// AttestationKey is a record's attestation key (AK), checked: a restricted
// ECDSA P-256/SHA-256 signing key made in a TPM, certified by the record's
// identity key.
type AttestationKey struct {
	// Public is the AK's TPMT_PUBLIC, as the TPM reported it.
	Public []byte
	// Key is its public key.
	Key *ecdsa.PublicKey
}

// HasAttestationKey reports whether the record names an attestation key.
// Records exported before attestation existed do not.
func (e Record) HasAttestationKey() bool {
	return e.AttestationKey != "" || e.AttestationCertifyInfo != "" || e.AttestationCertifySignature != ""
}

// CheckedAttestationKey decodes the record's attestation key and checks
// that it is a restricted signing key of the expected template and that
// the TPM2_Certify in the record, signed by the record's identity key,
// names it. It returns nil, nil for a record without one.
func (e Record) CheckedAttestationKey() (*AttestationKey, error) {
	if !e.HasAttestationKey() {
		return nil, nil
	}
	fail := func(field string, err error) (*AttestationKey, error) {
		return nil, fmt.Errorf("%w: %s: %w", ErrField, field, err)
	}
	pubB, err := decodeBlob(e.AttestationKey)
	if err != nil {
		return fail("attestationKey", err)
	}
	infoB, err := decodeBlob(e.AttestationCertifyInfo)
	if err != nil {
		return fail("attestationKeyCertifyInfo", err)
	}
	sigB, err := decodeBlob(e.AttestationCertifySignature)
	if err != nil {
		return fail("attestationKeyCertifySignature", err)
	}
	pub, key, err := parseAKPublic(pubB)
	if err != nil {
		return fail("attestationKey", err)
	}
	id, _, err := e.Keys()
	if err != nil {
		return nil, err
	}
	if err := checkCertify(id, pub, infoB, sigB); err != nil {
		return fail("attestationKeyCertifyInfo", err)
	}
	return &AttestationKey{Public: pubB, Key: key}, nil
}

func decodeBlob(s string) ([]byte, error) {
	if s == "" {
		return nil, errors.New("missing (the three attestation fields come together)")
	}
	if len(s) > base64.StdEncoding.EncodedLen(maxTPMBlob) {
		return nil, fmt.Errorf("longer than %d bytes", maxTPMBlob)
	}
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("base64: %w", err)
	}
	return b, nil
}

// parseAKPublic requires the attestation key's template: ECC P-256,
// nameAlg SHA-256, restricted sign-only, fixedTPM, fixedParent,
// sensitiveDataOrigin, scheme ECDSA/SHA-256.
func parseAKPublic(b []byte) (*tpm2.TPMTPublic, *ecdsa.PublicKey, error) {
	pub, err := tpm2.Unmarshal[tpm2.TPMTPublic](b)
	if err != nil {
		return nil, nil, fmt.Errorf("TPMT_PUBLIC: %w", err)
	}
	if !bytes.Equal(tpm2.Marshal(*pub), b) {
		return nil, nil, errors.New("TPMT_PUBLIC: trailing bytes")
	}
	if pub.Type != tpm2.TPMAlgECC || pub.NameAlg != tpm2.TPMAlgSHA256 {
		return nil, nil, fmt.Errorf("type %v, nameAlg %v: want ECC, SHA-256", pub.Type, pub.NameAlg)
	}
	a := pub.ObjectAttributes
	if !a.Restricted || !a.SignEncrypt || a.Decrypt || !a.FixedTPM || !a.FixedParent || !a.SensitiveDataOrigin {
		return nil, nil, errors.New("not a restricted signing key generated in and bound to its TPM (restricted, sign, fixedTPM, fixedParent, sensitiveDataOrigin, not decrypt)")
	}
	parms, err := pub.Parameters.ECCDetail()
	if err != nil {
		return nil, nil, fmt.Errorf("ECC parameters: %w", err)
	}
	if parms.CurveID != tpm2.TPMECCNistP256 || parms.Scheme.Scheme != tpm2.TPMAlgECDSA {
		return nil, nil, errors.New("not ECDSA on P-256")
	}
	if d, err := parms.Scheme.Details.ECDSA(); err != nil || d.HashAlg != tpm2.TPMAlgSHA256 {
		return nil, nil, errors.New("signing scheme hash is not SHA-256")
	}
	pt, err := pub.Unique.ECC()
	if err != nil {
		return nil, nil, fmt.Errorf("ECC point: %w", err)
	}
	if len(pt.X.Buffer) > 32 || len(pt.Y.Buffer) > 32 {
		return nil, nil, errors.New("ECC point: coordinate longer than 32 bytes")
	}
	raw := make([]byte, 65)
	raw[0] = 4
	copy(raw[1+32-len(pt.X.Buffer):33], pt.X.Buffer)
	copy(raw[33+32-len(pt.Y.Buffer):], pt.Y.Buffer)
	key, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), raw)
	if err != nil {
		return nil, nil, fmt.Errorf("ECC point: %w", err)
	}
	return pub, key, nil
}

// checkCertify verifies a TPM2_Certify: a TPMS_ATTEST of type
// ATTEST_CERTIFY made by a TPM (TPM_GENERATED_VALUE), with AttestationLabel
// as qualifying data, naming ak, and signed (ECDSA/SHA-256) by identity.
func checkCertify(identity *ecdsa.PublicKey, ak *tpm2.TPMTPublic, info, sig []byte) error {
	att, err := tpm2.Unmarshal[tpm2.TPMSAttest](info)
	if err != nil {
		return fmt.Errorf("TPMS_ATTEST: %w", err)
	}
	if att.Magic != tpm2.TPMGeneratedValue || att.Type != tpm2.TPMSTAttestCertify {
		return errors.New("not a certification made by a TPM")
	}
	if string(att.ExtraData.Buffer) != AttestationLabel {
		return fmt.Errorf("qualifying data is not %q", AttestationLabel)
	}
	c, err := att.Attested.Certify()
	if err != nil {
		return fmt.Errorf("certify info: %w", err)
	}
	name, err := tpm2.ObjectName(ak)
	if err != nil {
		return fmt.Errorf("attestation key name: %w", err)
	}
	if !bytes.Equal(c.Name.Buffer, name.Buffer) {
		return errors.New("the certification names another key than attestationKey")
	}
	s, err := tpm2.Unmarshal[tpm2.TPMTSignature](sig)
	if err != nil {
		return fmt.Errorf("signature: TPMT_SIGNATURE: %w", err)
	}
	if s.SigAlg != tpm2.TPMAlgECDSA {
		return fmt.Errorf("signature: algorithm %v, want ECDSA", s.SigAlg)
	}
	es, err := s.Signature.ECDSA()
	if err != nil || es.Hash != tpm2.TPMAlgSHA256 {
		return errors.New("signature: not ECDSA with SHA-256")
	}
	d := sha256.Sum256(info)
	if !ecdsa.Verify(identity, d[:], new(big.Int).SetBytes(es.SignatureR.Buffer), new(big.Int).SetBytes(es.SignatureS.Buffer)) {
		return errors.New("signature: does not verify with identityPublicKey (the attestation key is not this device's)")
	}
	return nil
}

// WithAttestationKey returns the record with the attestation key's public
// area and its certification (each in TPM wire form) set, checked against
// the record's identity key.
func (e Record) WithAttestationKey(public, certifyInfo, certifySignature []byte) (Record, error) {
	e.AttestationKey = base64.StdEncoding.EncodeToString(public)
	e.AttestationCertifyInfo = base64.StdEncoding.EncodeToString(certifyInfo)
	e.AttestationCertifySignature = base64.StdEncoding.EncodeToString(certifySignature)
	if _, err := e.CheckedAttestationKey(); err != nil {
		return Record{}, err
	}
	return e, nil
}

// ParseAttestationPublic checks an attestation key's TPMT_PUBLIC (the
// template, as CheckedAttestationKey does) without its certification: for
// a key whose certification was checked when its record was imported.
func ParseAttestationPublic(b []byte) (*AttestationKey, error) {
	if len(b) > maxTPMBlob {
		return nil, fmt.Errorf("%w: attestationKey: longer than %d bytes", ErrField, maxTPMBlob)
	}
	_, key, err := parseAKPublic(b)
	if err != nil {
		return nil, fmt.Errorf("%w: attestationKey: %w", ErrField, err)
	}
	return &AttestationKey{Public: append([]byte(nil), b...), Key: key}, nil
}
