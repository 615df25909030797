package auditcheckpoint

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/asn1"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"

	"github.com/zmonitor/firmware/internal/proto/ident"
)

// Label is the domain-separation label that starts the signed message.
const Label = "zmonitor-audit-checkpoint-v1"

// SignatureHexLen is the length of a signature in hex: r‖s, 32 bytes each.
const SignatureHexLen = 128

// MaxJSON bounds what Parse reads.
const MaxJSON = 1024

// Errors wrapped by Verify and Parse.
var (
	ErrMalformed = errors.New("audit checkpoint malformed")
	ErrSignature = errors.New("audit checkpoint: bad signature")
)

// Checkpoint is a signed statement that record Seq of DeviceID's audit
// chain has hash Hash.
type Checkpoint struct {
	DeviceID  string `json:"deviceId"`
	Seq       uint64 `json:"seq"`
	Hash      string `json:"hash"`      // the record's hash, 64 lower-case hex characters
	Signature string `json:"signature"` // r‖s, 128 lower-case hex characters
}

// Digest is the SHA-256 digest the identity key signs for record seq with
// hash (64 lower-case hex characters) of deviceID's log.
func Digest(deviceID string, seq uint64, hash string) ([]byte, error) {
	h, err := decodeHex(hash, sha256.Size)
	if err != nil {
		return nil, fmt.Errorf("%w: hash: %w", ErrMalformed, err)
	}
	if err := ident.CheckDeviceID(deviceID); err != nil {
		return nil, fmt.Errorf("%w: deviceId: %w", ErrMalformed, err)
	}
	d := sha256.New()
	var l [2]byte
	for _, s := range []string{Label, deviceID} {
		binary.BigEndian.PutUint16(l[:], uint16(len(s)))
		d.Write(l[:])
		io.WriteString(d, s)
	}
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], seq)
	d.Write(n[:])
	d.Write(h)
	return d.Sum(nil), nil
}

// Sign has signer (the device identity key: ECDSA P-256) sign record seq
// with hash of deviceID's log. The signature is verified before it is
// returned, so a faulty signer cannot publish a checkpoint nobody can check.
func Sign(signer crypto.Signer, rand io.Reader, deviceID string, seq uint64, hash string) (Checkpoint, error) {
	pub, ok := signer.Public().(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		return Checkpoint{}, errors.New("sign audit checkpoint: the key is not ECDSA P-256")
	}
	digest, err := Digest(deviceID, seq, hash)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("sign audit checkpoint: %w", err)
	}
	der, err := signer.Sign(rand, digest, crypto.SHA256)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("sign audit checkpoint: %w", err)
	}
	var sig struct{ R, S *big.Int }
	if rest, err := asn1.Unmarshal(der, &sig); err != nil || len(rest) != 0 || sig.R == nil || sig.S == nil || sig.R.Sign() <= 0 || sig.S.Sign() <= 0 {
		return Checkpoint{}, errors.New("sign audit checkpoint: the signer's output is not an ECDSA signature")
	}
	if sig.R.BitLen() > 256 || sig.S.BitLen() > 256 || !ecdsa.Verify(pub, digest, sig.R, sig.S) {
		return Checkpoint{}, errors.New("sign audit checkpoint: the signer produced a signature that does not verify")
	}
	raw := append(sig.R.FillBytes(make([]byte, 32)), sig.S.FillBytes(make([]byte, 32))...)
	return Checkpoint{DeviceID: deviceID, Seq: seq, Hash: hash, Signature: hex.EncodeToString(raw)}, nil
}

// Verify checks c's signature with pub, the device identity key of the
// enrollment record of c.DeviceID. It does not say that the log holds
// record c.Seq with c.Hash: the verifier compares that with the log.
func (c Checkpoint) Verify(pub *ecdsa.PublicKey) error {
	if pub == nil || pub.Curve != elliptic.P256() {
		return fmt.Errorf("%w: the identity key is not ECDSA P-256", ErrMalformed)
	}
	digest, err := Digest(c.DeviceID, c.Seq, c.Hash)
	if err != nil {
		return err
	}
	raw, err := decodeHex(c.Signature, SignatureHexLen/2)
	if err != nil {
		return fmt.Errorf("%w: signature: %w", ErrMalformed, err)
	}
	r := new(big.Int).SetBytes(raw[:32])
	s := new(big.Int).SetBytes(raw[32:])
	if !ecdsa.Verify(pub, digest, r, s) {
		return fmt.Errorf("%w: record %d of %s", ErrSignature, c.Seq, c.DeviceID)
	}
	return nil
}

// Marshal is the JSON form, fields in the order above.
func (c Checkpoint) Marshal() []byte {
	b, _ := json.Marshal(c) // a struct of strings and a number
	return b
}

// Parse reads the JSON form strictly: at most MaxJSON bytes, one object with
// exactly the four members (names matched exactly), nothing after it, every
// field well-formed. It does not verify the signature.
func Parse(b []byte) (Checkpoint, error) {
	var c Checkpoint
	if len(b) > MaxJSON {
		return c, fmt.Errorf("%w: %d bytes, limit %d", ErrMalformed, len(b), MaxJSON)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return Checkpoint{}, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Checkpoint{}, fmt.Errorf("%w: data after the JSON object", ErrMalformed)
	}
	// encoding/json matches member names case-insensitively and keeps the
	// last of duplicates: the canonical form must be what was read.
	if !bytes.Equal(bytes.TrimSpace(b), c.Marshal()) {
		return Checkpoint{}, fmt.Errorf("%w: not in the canonical form (members deviceId, seq, hash, signature, once each, in that order, compact)", ErrMalformed)
	}
	if _, err := Digest(c.DeviceID, c.Seq, c.Hash); err != nil {
		return Checkpoint{}, err
	}
	if _, err := decodeHex(c.Signature, SignatureHexLen/2); err != nil {
		return Checkpoint{}, fmt.Errorf("%w: signature: %w", ErrMalformed, err)
	}
	return c, nil
}

// decodeHex decodes lower-case hex of exactly n bytes.
func decodeHex(s string, n int) ([]byte, error) {
	if len(s) != 2*n {
		return nil, fmt.Errorf("%d characters, want %d", len(s), 2*n)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return nil, fmt.Errorf("character %d is not lower-case hex", i)
		}
	}
	return hex.DecodeString(s)
}
