package payload

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"
)

// ErrMalformed is wrapped by every error about the syntax of a payload or an
// envelope.
var ErrMalformed = errors.New("malformed")

// strictObject splits b, which must be exactly one JSON object and valid
// UTF-8, into its members. It refuses member names not in known (matched
// exactly: encoding/json would fold case), duplicate members (encoding/json
// would silently keep the last one, which lets a signer and a verifier see
// different values), null values and trailing data. The walk uses
// json.Decoder tokens, so a name written with escapes ("device\u0049d") is
// compared after unescaping.
func strictObject(b []byte, limit int, known map[string]bool) (map[string]json.RawMessage, error) {
	if len(b) > limit {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrMalformed, len(b), limit)
	}
	if !utf8.Valid(b) {
		return nil, fmt.Errorf("%w: not valid UTF-8", ErrMalformed)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil || tok != json.Delim('{') {
		return nil, fmt.Errorf("%w: not a JSON object", ErrMalformed)
	}
	out := make(map[string]json.RawMessage, len(known))
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
		}
		name, ok := tok.(string)
		if !ok {
			return nil, fmt.Errorf("%w: member name expected", ErrMalformed)
		}
		if !known[name] {
			return nil, fmt.Errorf("%w: unknown member %q", ErrMalformed, name)
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("%w: member %q appears twice", ErrMalformed, name)
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, fmt.Errorf("%w: member %q: %v", ErrMalformed, name, err)
		}
		if string(raw) == "null" {
			return nil, fmt.Errorf("%w: member %q is null", ErrMalformed, name)
		}
		out[name] = raw
	}
	if _, err := dec.Token(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: trailing data after the object", ErrMalformed)
	}
	return out, nil
}

// nameSet is a set of member names.
func nameSet(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}
