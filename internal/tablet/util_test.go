package tablet

import (
	"encoding/json"
	"testing"
)

func json2(t testing.TB, b []byte, v any) error {
	t.Helper()
	return json.Unmarshal(b, v)
}
