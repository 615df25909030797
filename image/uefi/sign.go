package uefi

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
)

// Signer names the image-signing key and certificate (PEM files) and the
// tools; empty tools mean sbsign and sbverify from $PATH.
type Signer struct {
	Key, Cert        string
	SBSign, SBVerify string
}

// Sign writes in, signed with the key, to out (sbsign: an Authenticode
// signature in the PE certificate table).
func (s Signer) Sign(ctx context.Context, in, out string) error {
	tool := s.SBSign
	if tool == "" {
		tool = "sbsign"
	}
	cmd := exec.CommandContext(ctx, tool, "--key", s.Key, "--cert", s.Cert, "--output", out, in)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("sign %s: %s: %w: %s", in, tool, err, bytes.TrimSpace(b))
	}
	return s.Verify(ctx, out)
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
