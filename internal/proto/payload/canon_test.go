package payload

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/gowebpki/jcs"
)

// TestSigningInputMatchesJCS: the signing input is byte for byte what
// github.com/gowebpki/jcs (the canonicalizer used before internal/canonjson)
// produces, so signatures made by either side before the switch still
// verify. Members carry the characters where canonical forms could differ.
func TestSigningInputMatchesJCS(t *testing.T) {
	f := newFixture(t)
	for _, label := range []string{
		"ICU-MON-04",
		"Zimmer 3 — Süd \u00e9\u0301",
		"<b>&amp;</b> / \\ \" \t\n\u0001\u007f\u0080",
		"\ue000\uffff\U0001F602\U0010FFFF",
	} {
		c := f.signed(t, func(c *Config) { c.DeviceLabel = label }, nil)
		var m map[string]any
		if err := json.Unmarshal(must[[]byte](t)(c.Marshal()), &m); err != nil {
			t.Fatal(err)
		}
		pretty := must[[]byte](t)(json.MarshalIndent(m, "", "\t"))
		delete(m, "signature")
		want := must[[]byte](t)(jcs.Transform(must[[]byte](t)(json.Marshal(m))))
		if got := must[[]byte](t)(SigningInput(pretty)); !bytes.Equal(got, want) {
			t.Errorf("label %q: SigningInput\n%s\njcs\n%s", label, got, want)
		}
		if got := must[[]byte](t)(c.CanonicalForSigning()); !bytes.Equal(got, want) {
			t.Errorf("label %q: CanonicalForSigning\n%s\njcs\n%s", label, got, want)
		}
	}
}
