package uefi

import (
	"bytes"
	"crypto/sha256"
	"debug/pe"
	"errors"
	"fmt"

	saferwall "github.com/saferwall/pe"
)

// Authenticode returns the SHA-256 Authenticode digest of the PE image b:
// the hash over the file without its checksum field, the certificate table's
// directory entry and the certificate table itself. UEFI firmware compares
// it with db and dbx and extends it into PCR 4 when it loads the image
// (EV_EFI_BOOT_SERVICES_APPLICATION). Take it of the signed file: sbsign
// pads the file to a multiple of 8 bytes before it appends the signature,
// and the padding is hashed.
func Authenticode(b []byte) ([sha256.Size]byte, error) {
	var d [sha256.Size]byte
	// The standard library checks the headers first: saferwall/pe returns
	// no error from the digest itself.
	f, err := pe.NewFile(bytes.NewReader(b))
	if err != nil {
		return d, fmt.Errorf("authenticode: not a PE image: %w", err)
	}
	f.Close()
	p, err := saferwall.NewBytes(b, &saferwall.Options{Fast: true})
	if err != nil {
		return d, fmt.Errorf("authenticode: %w", err)
	}
	defer p.Close()
	if err := p.Parse(); err != nil {
		return d, fmt.Errorf("authenticode: parse PE: %w", err)
	}
	h := p.Authentihash()
	if len(h) != sha256.Size {
		return d, errors.New("authenticode: the PE image's certificate table or checksum lies outside the file")
	}
	copy(d[:], h)
	return d, nil
}
