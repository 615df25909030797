package uefi

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"strconv"
)

// Signer names the image-signing key and certificate (PEM files), the
// signing time and the tools; empty tools mean osslsigncode and sbverify
// from $PATH.
type Signer struct {
	Key, Cert string
	// Time is the signing time the signature carries (its PKCS#7
	// signingTime attribute), in Unix seconds: with the time fixed, the
	// same file, key and certificate give the same signature byte for byte
	// (RSA PKCS#1 v1.5 signatures have no randomness). The image builder
	// uses SOURCE_DATE_EPOCH. A time outside the certificate's validity is
	// moved to its nearer end: U-Boot (as Linux's PKCS#7 code) refuses a
	// signature made outside the signer's validity. sbsign cannot fix the
	// time: it stamps the current one, so the signed kernel inside the
	// unified image changed the image's Authenticode digest on every build.
	Time int64
	// OsslSigncode signs (osslsigncode); SBVerify checks (sbverify).
	OsslSigncode, SBVerify string
}

// Sign writes in, signed with the key, to out: an Authenticode signature
// (SHA-256) in the PE certificate table, then checked with sbverify.
func (s Signer) Sign(ctx context.Context, in, out string) error {
	tool := s.OsslSigncode
	if tool == "" {
		tool = "osslsigncode"
	}
	// osslsigncode refuses to overwrite.
	if err := os.Remove(out); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("sign %s: %w", in, err)
	}
	at, err := s.signingTime()
	if err != nil {
		return fmt.Errorf("sign %s: %w", in, err)
	}
	cmd := exec.CommandContext(ctx, tool, "sign", "-certs", s.Cert, "-key", s.Key, "-h", "sha256",
		"-time", strconv.FormatInt(at, 10), "-in", in, "-out", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("sign %s: %s: %w: %s", in, tool, err, bytes.TrimSpace(b))
	}
	return s.Verify(ctx, out)
}

// signingTime is Time within the certificate's validity.
func (s Signer) signingTime() (int64, error) {
	b, err := os.ReadFile(s.Cert)
	if err != nil {
		return 0, fmt.Errorf("certificate: %w", err)
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "CERTIFICATE" {
		return 0, fmt.Errorf("certificate %s: no PEM CERTIFICATE block", s.Cert)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return 0, fmt.Errorf("certificate %s: %w", s.Cert, err)
	}
	return min(max(s.Time, c.NotBefore.Unix()), c.NotAfter.Unix()), nil
}

// Verify checks that path carries a valid signature by the certificate
// (sbverify).
func (s Signer) Verify(ctx context.Context, path string) error {
	tool := s.SBVerify
	if tool == "" {
		tool = "sbverify"
	}
	cmd := exec.CommandContext(ctx, tool, "--cert", s.Cert, path)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("verify the signature of %s: %s: %w: %s", path, tool, err, bytes.TrimSpace(b))
	}
	return nil
}
