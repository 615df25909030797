package manifest

import (
	"encoding/json"
	"testing"
)

// encodeUnchecked encodes m without validating it.
func encodeUnchecked(t *testing.T, m Manifest) string {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
