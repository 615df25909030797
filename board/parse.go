package board

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
)

// MaxFileSize bounds a profile file.
const MaxFileSize = 64 << 10

// Parse reads a profile from JSON and validates it.
//
// The object may name a built-in profile in "base"; the other fields then
// override that profile's (nested objects field by field). Without "base"
// every field must be given. Unknown fields, trailing data and files over
// MaxFileSize are errors.
func Parse(b []byte) (Profile, error) {
	if len(b) > MaxFileSize {
		return Profile{}, fmt.Errorf("board: profile is %d bytes, over the %d-byte limit", len(b), MaxFileSize)
	}
	var head struct {
		Base *string `json:"base"`
	}
	if err := json.Unmarshal(b, &head); err != nil {
		return Profile{}, fmt.Errorf("board: parse profile: %w", err)
	}
	var p Profile
	if head.Base != nil {
		base, err := Lookup(*head.Base)
		if err != nil {
			return Profile{}, fmt.Errorf("board: base: %w", err)
		}
		p = base
	}
	doc := struct {
		Base *string `json:"base"`
		*Profile
	}{Profile: &p}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		return Profile{}, fmt.Errorf("board: parse profile: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Profile{}, errors.New("board: parse profile: trailing data after the object")
	}
	if err := p.Validate(); err != nil {
		return Profile{}, err
	}
	return p, nil
}

// Load reads and parses the profile file at path (DefaultPath on the
// device).
func Load(path string) (Profile, error) {
	f, err := os.Open(path)
	if err != nil {
		return Profile{}, fmt.Errorf("board: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return Profile{}, fmt.Errorf("board: read %s: %w", path, err)
	}
	p, err := Parse(b)
	if err != nil {
		return Profile{}, fmt.Errorf("%s: %w", path, err)
	}
	return p, nil
}

// JSON returns the profile as an indented JSON document that Parse reads
// back (what the image writes to DefaultPath).
func (p Profile) JSON() ([]byte, error) {
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("board: encode profile: %w", err)
	}
	return append(b, '\n'), nil
}
