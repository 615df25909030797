package fakeak

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/asn1"
	"math/big"
	"testing"

	"github.com/google/go-tpm/tpm2"

	"github.com/zmonitor/firmware/drivers/tpm"
	"github.com/zmonitor/firmware/internal/fw/keys"
	"github.com/zmonitor/firmware/internal/proto/enroll"
)

// AK is an attestation key in memory.
type AK struct {
	Key    *ecdsa.PrivateKey
	Public tpm2.TPMTPublic // drivers/tpm.AttestationTemplate with the key's point
}

// New makes an attestation key.
func New(t testing.TB) *AK {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &AK{Key: k, Public: PublicOf(tpm.AttestationTemplate(), &k.PublicKey)}
}

// PublicOf is template with pub as its unique field.
func PublicOf(template tpm2.TPMTPublic, pub *ecdsa.PublicKey) tpm2.TPMTPublic {
	b, _ := pub.Bytes()
	template.Unique = tpm2.NewTPMUPublicID(tpm2.TPMAlgECC, &tpm2.TPMSECCPoint{
		X: tpm2.TPM2BECCParameter{Buffer: b[1:33]},
		Y: tpm2.TPM2BECCParameter{Buffer: b[33:65]},
	})
	return template
}

// Sign returns the TPMT_SIGNATURE (ECDSA/SHA-256) of msg by k.
func Sign(t testing.TB, k crypto.Signer, msg []byte) []byte {
	t.Helper()
	d := sha256.Sum256(msg)
	der, err := k.Sign(rand.Reader, d[:], crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	var rs struct{ R, S *big.Int }
	if _, err := asn1.Unmarshal(der, &rs); err != nil {
		t.Fatal(err)
	}
	return tpm2.Marshal(tpm2.TPMTSignature{
		SigAlg: tpm2.TPMAlgECDSA,
		Signature: tpm2.NewTPMUSignature(tpm2.TPMAlgECDSA, &tpm2.TPMSSignatureECC{
			Hash:       tpm2.TPMAlgSHA256,
			SignatureR: tpm2.TPM2BECCParameter{Buffer: rs.R.FillBytes(make([]byte, 32))},
			SignatureS: tpm2.TPM2BECCParameter{Buffer: rs.S.FillBytes(make([]byte, 32))},
		}),
	})
}

// CertifyInfo is the TPMS_ATTEST of a TPM2_Certify of public with the
// given qualifying data.
func CertifyInfo(t testing.TB, public tpm2.TPMTPublic, qualifying string) []byte {
	t.Helper()
	name, err := tpm2.ObjectName(&public)
	if err != nil {
		t.Fatal(err)
	}
	return tpm2.Marshal(tpm2.TPMSAttest{
		Magic:           tpm2.TPMGeneratedValue,
		Type:            tpm2.TPMSTAttestCertify,
		QualifiedSigner: *name, // a name of the right form; checkers do not look at it
		ExtraData:       tpm2.TPM2BData{Buffer: []byte(qualifying)},
		Attested: tpm2.NewTPMUAttest(tpm2.TPMSTAttestCertify, &tpm2.TPMSCertifyInfo{
			Name:          *name,
			QualifiedName: *name,
		}),
	})
}

// Certified is what the device exports: the AK certified by identity with
// enroll.AttestationLabel.
func (a *AK) Certified(t testing.TB, identity crypto.Signer) keys.AttestationKey {
	t.Helper()
	info := CertifyInfo(t, a.Public, enroll.AttestationLabel)
	return keys.AttestationKey{Public: tpm2.Marshal(a.Public), CertifyInfo: info, CertifySignature: Sign(t, identity, info)}
}

// Quote is a TPM2_Quote by the AK over PCR 4 and 7 (SHA-256) with the
// given values and nonce.
func (a *AK) Quote(t testing.TB, nonce, pcr4, pcr7 []byte) keys.Quote {
	t.Helper()
	name, err := tpm2.ObjectName(&a.Public)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	h.Write(pcr4)
	h.Write(pcr7)
	att := tpm2.Marshal(tpm2.TPMSAttest{
		Magic:           tpm2.TPMGeneratedValue,
		Type:            tpm2.TPMSTAttestQuote,
		QualifiedSigner: *name,
		ExtraData:       tpm2.TPM2BData{Buffer: nonce},
		Attested: tpm2.NewTPMUAttest(tpm2.TPMSTAttestQuote, &tpm2.TPMSQuoteInfo{
			PCRSelect: tpm2.TPMLPCRSelection{PCRSelections: []tpm2.TPMSPCRSelection{{
				Hash: tpm2.TPMAlgSHA256, PCRSelect: tpm2.PCClientCompatible.PCRs(4, 7),
			}}},
			PCRDigest: tpm2.TPM2BDigest{Buffer: h.Sum(nil)},
		}),
	})
	return keys.Quote{Attest: att, Signature: Sign(t, a.Key, att), PCRs: [][]byte{pcr4, pcr7}}
}
