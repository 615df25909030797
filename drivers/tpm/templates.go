package tpm

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"errors"
	"fmt"

	"github.com/google/go-tpm/tpm2"
)

// Role names a key the store keeps at a persistent handle.
type Role int

// Roles, in the order first boot creates them (see Provision in docs/tpm.md).
const (
	RoleSRK Role = iota + 1
	RolePayload
	RoleIdentity
	RoleClient
	// RoleAttestation is the attestation key (attest.go): made when first
	// asked for, after the identity key that certifies it.
	RoleAttestation
)

// String implements fmt.Stringer.
func (r Role) String() string {
	switch r {
	case RoleSRK:
		return "storage root key"
	case RolePayload:
		return "payload key"
	case RoleIdentity:
		return "identity key"
	case RoleClient:
		return "client key"
	case RoleAttestation:
		return "attestation key"
	}
	return fmt.Sprintf("Role(%d)", int(r))
}

// fixedAttrs are the attributes of every key the TPM generates for the
// device: the private part is generated inside this TPM, cannot be
// duplicated to another TPM or re-parented, and is used with its (empty)
// password. noDA: with an empty authValue there is nothing to guess, and a
// dictionary-attack lockout must not take the device identity down with it.
func fixedAttrs() tpm2.TPMAObject {
	return tpm2.TPMAObject{
		FixedTPM:            true,
		FixedParent:         true,
		SensitiveDataOrigin: true,
		UserWithAuth:        true,
		NoDA:                true,
	}
}

func eccParms(scheme tpm2.TPMTECCScheme) tpm2.TPMUPublicParms {
	return tpm2.NewTPMUPublicParms(tpm2.TPMAlgECC, &tpm2.TPMSECCParms{
		Symmetric: tpm2.TPMTSymDefObject{Algorithm: tpm2.TPMAlgNull},
		Scheme:    scheme,
		CurveID:   tpm2.TPMECCNistP256,
		KDF:       tpm2.TPMTKDFScheme{Scheme: tpm2.TPMAlgNull},
	})
}

func ecdsaScheme() tpm2.TPMTECCScheme {
	return tpm2.TPMTECCScheme{
		Scheme: tpm2.TPMAlgECDSA,
		Details: tpm2.NewTPMUAsymScheme(tpm2.TPMAlgECDSA,
			&tpm2.TPMSSigSchemeECDSA{HashAlg: tpm2.TPMAlgSHA256}),
	}
}

func emptyUnique() tpm2.TPMUPublicID {
	return tpm2.NewTPMUPublicID(tpm2.TPMAlgECC, &tpm2.TPMSECCPoint{})
}

// SigningTemplate is the template of the identity key and of client keys
// the TPM creates: ECC P-256, ECDSA with SHA-256, unrestricted.
func SigningTemplate() tpm2.TPMTPublic {
	a := fixedAttrs()
	a.SignEncrypt = true
	return tpm2.TPMTPublic{
		Type:             tpm2.TPMAlgECC,
		NameAlg:          tpm2.TPMAlgSHA256,
		ObjectAttributes: a,
		Parameters:       eccParms(ecdsaScheme()),
		Unique:           emptyUnique(),
	}
}

// PayloadTemplate is the template of the payload key: ECC P-256 key
// agreement (decrypt, unrestricted, scheme NULL) so TPM2_ECDH_ZGen serves
// HPKE's DHKEM(P-256).
func PayloadTemplate() tpm2.TPMTPublic {
	a := fixedAttrs()
	a.Decrypt = true
	return tpm2.TPMTPublic{
		Type:             tpm2.TPMAlgECC,
		NameAlg:          tpm2.TPMAlgSHA256,
		ObjectAttributes: a,
		Parameters:       eccParms(tpm2.TPMTECCScheme{Scheme: tpm2.TPMAlgNull}),
		Unique:           emptyUnique(),
	}
}

// ImportedTemplate is the template of an imported client key (the spec's
// clientPrivateKey). The TPM refuses to import objects with fixedTPM or
// fixedParent, and sensitiveDataOrigin would be a lie; the empty authPolicy
// still makes TPM2_Duplicate impossible (it needs a policy session).
func ImportedTemplate() tpm2.TPMTPublic {
	return tpm2.TPMTPublic{
		Type:    tpm2.TPMAlgECC,
		NameAlg: tpm2.TPMAlgSHA256,
		ObjectAttributes: tpm2.TPMAObject{
			UserWithAuth: true,
			NoDA:         true,
			SignEncrypt:  true,
		},
		Parameters: eccParms(ecdsaScheme()),
		Unique:     emptyUnique(),
	}
}

// SRKTemplate is the TCG ECC P-256 storage root key template.
func SRKTemplate() tpm2.TPMTPublic { return tpm2.ECCSRKTemplate }

func templateFor(r Role) tpm2.TPMTPublic {
	switch r {
	case RoleSRK:
		return SRKTemplate()
	case RolePayload:
		return PayloadTemplate()
	case RoleAttestation:
		return AttestationTemplate()
	default:
		return SigningTemplate()
	}
}

// matches reports whether pub is an instance of template: everything but
// the unique field (the public point) must be byte-for-byte equal.
func matches(pub, template tpm2.TPMTPublic) bool {
	pub.Unique = emptyUnique()
	template.Unique = emptyUnique()
	return bytes.Equal(tpm2.Marshal(pub), tpm2.Marshal(template))
}

// eccPoint returns pub's P-256 point, checked to be on the curve.
func eccPoint(pub *tpm2.TPMTPublic) (*ecdh.PublicKey, error) {
	if pub.Type != tpm2.TPMAlgECC {
		return nil, fmt.Errorf("key type %v: %w", pub.Type, ErrUnsupported)
	}
	parms, err := pub.Parameters.ECCDetail()
	if err != nil {
		return nil, fmt.Errorf("ECC parameters: %w", err)
	}
	if parms.CurveID != tpm2.TPMECCNistP256 {
		return nil, fmt.Errorf("curve %v: %w", parms.CurveID, ErrUnsupported)
	}
	pt, err := pub.Unique.ECC()
	if err != nil {
		return nil, fmt.Errorf("ECC point: %w", err)
	}
	if len(pt.X.Buffer) > 32 || len(pt.Y.Buffer) > 32 {
		return nil, errors.New("ECC point: coordinate longer than 32 bytes")
	}
	raw := make([]byte, 65)
	raw[0] = 4
	copy(raw[1+32-len(pt.X.Buffer):33], pt.X.Buffer)
	copy(raw[33+32-len(pt.Y.Buffer):], pt.Y.Buffer)
	k, err := ecdh.P256().NewPublicKey(raw)
	if err != nil {
		return nil, fmt.Errorf("ECC point: %w", err)
	}
	return k, nil
}

// ecdsaPublic converts a P-256 ecdh public key to its ecdsa form.
func ecdsaPublic(k *ecdh.PublicKey) (*ecdsa.PublicKey, error) {
	p, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), k.Bytes())
	if err != nil {
		return nil, fmt.Errorf("ECC point: %w", err)
	}
	return p, nil
}

// pointOf encodes a P-256 public key as a TPMS_ECC_POINT.
func pointOf(k *ecdh.PublicKey) tpm2.TPMSECCPoint {
	b := k.Bytes() // 0x04 || X || Y
	return tpm2.TPMSECCPoint{
		X: tpm2.TPM2BECCParameter{Buffer: append([]byte(nil), b[1:33]...)},
		Y: tpm2.TPM2BECCParameter{Buffer: append([]byte(nil), b[33:65]...)},
	}
}
