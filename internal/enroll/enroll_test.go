package enroll

import (
	"crypto/rand"
	"strings"
	"testing"

	"github.com/zmonitor/firmware/internal/keys/softkeys"
)

func TestRoundTrip(t *testing.T) {
	ks, err := softkeys.New(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	r, err := New(ks, "ZM-001", "SN-1", "1.2.3")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := r.Marshal()
	back, err := Parse(b)
	if err != nil || back != r {
		t.Fatalf("round trip: %+v, %v", back, err)
	}
	id, pk, err := back.Keys()
	if err != nil {
		t.Fatal(err)
	}
	if !id.Equal(ks.Identity().Public()) || !pk.Equal(ks.PayloadKey().PublicKey()) {
		t.Error("keys differ from the store's")
	}
}

func TestParseRefuses(t *testing.T) {
	ks, _ := softkeys.New(rand.Reader)
	r, _ := New(ks, "ZM-001", "SN-1", "1.2.3")
	good, _ := r.Marshal()
	s := string(good)
	for name, b := range map[string]string{
		"unknown field":  strings.Replace(s, "{", `{"x":1,`, 1),
		"trailing":       s + "{}",
		"no device":      strings.Replace(s, `"ZM-001"`, `""`, 1),
		"swapped keys":   strings.Replace(strings.Replace(s, r.IdentityKey, "X", 1), r.PayloadKey, r.IdentityKey, 1),
		"garbage key":    strings.Replace(s, r.PayloadKey, "AAAA", 1),
		"not base64 key": strings.Replace(s, r.PayloadKey, "!!", 1),
		"not json":       "zz",
	} {
		if _, err := Parse([]byte(b)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func FuzzParse(f *testing.F) {
	ks, _ := softkeys.New(rand.Reader)
	r, _ := New(ks, "ZM-001", "SN-1", "1.2.3")
	good, _ := r.Marshal()
	f.Add(good)
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := Parse(b)
		if err == nil {
			if _, _, err := r.Keys(); err != nil {
				t.Fatalf("accepted a record whose keys do not parse: %v", err)
			}
		}
	})
}
