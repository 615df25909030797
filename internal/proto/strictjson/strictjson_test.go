package strictjson

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

type item struct {
	QR    string `json:"qr,omitempty"`
	Label string `json:"label,omitempty"`
	N     int    `json:"n,omitempty"`
}

type batch struct {
	Items []item            `json:"items"`
	Tags  map[string]string `json:"tags,omitempty"`
	Extra json.RawMessage   `json:"extra,omitempty"`
	Inner *item             `json:"inner,omitempty"`
}

func TestDecodeRefuses(t *testing.T) {
	for _, tc := range []struct {
		in, why string
	}{
		{`{"QR":"x"}`, `unknown member "QR" (the name is "qr": case matters)`},
		{`{"qr":"x","qr":"y"}`, `member "qr" appears twice`},
		{`{"qr":"x","q\u0072":"y"}`, `member "qr" appears twice`},
		{`{"qr":null}`, `qr: null is not allowed`},
		{`{"qr":"x"} {}`, `data after the JSON value`},
		{`{"qr":"x"}x`, `data after the JSON value`},
		{"{\"qr\":\"\xff\"}", `byte 8 is not UTF-8`},
		{`{"other":1}`, `unknown member "other"`},
		{`{"qr":1}`, `cannot unmarshal number`},
		{`{"qr":"x"`, `malformed JSON`},
		{``, `EOF`},
		{`null`, `null is not allowed`},
		{`{"items":[{"qr":"a"},{"Label":"b"}]}`, `unknown member "items[1].Label"`},
		{`{"items":[{"qr":"a","qr":"a"}]}`, `member "items[0].qr" appears twice`},
		{`{"items":[null]}`, `items[0]: null is not allowed`},
		{`{"items":[],"tags":{"a":"1","a":"2"}}`, `member "tags.a" appears twice`},
		{`{"items":[],"extra":{"x":1,"x":2}}`, `member "extra.x" appears twice`},
		{`{"items":[],"extra":{"x":null}}`, `extra.x: null is not allowed`},
		{`{"items":[],"inner":{"QR":""}}`, `unknown member "inner.QR"`},
		{`{"items":[],"ITEMS":[]}`, `unknown member "ITEMS"`},
		{`{"items":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}`, `nested deeper`},
	} {
		var b batch
		var it item
		var v any = &b
		if !strings.Contains(tc.in, "items") && !strings.Contains(tc.in, "ITEMS") {
			v = &it
		}
		err := Decode([]byte(tc.in), v)
		if err == nil || !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tc.why) {
			t.Errorf("Decode(%q) = %v, want an error with %q", tc.in, err, tc.why)
		}
	}
}

func TestDecodeAccepts(t *testing.T) {
	var b batch
	in := `{"items":[{"qr":"a\u00e9","n":3},{"label":"ICU"}],"tags":{"A":"1","a":"2"},"extra":{"any":[1,"x"]},"inner":{"qr":"z"}}`
	if err := Decode([]byte(in), &b); err != nil {
		t.Fatal(err)
	}
	if len(b.Items) != 2 || b.Items[0].QR != "aé" || b.Items[0].N != 3 || b.Items[1].Label != "ICU" ||
		b.Tags["A"] != "1" || b.Tags["a"] != "2" || string(b.Extra) != `{"any":[1,"x"]}` || b.Inner.QR != "z" {
		t.Errorf("decoded %+v", b)
	}
	var raws []json.RawMessage
	if err := Decode([]byte(` [ {"a":1}, {"A":2} ] `), &raws); err != nil || len(raws) != 2 {
		t.Errorf("array of raw objects: %v %v", raws, err)
	}
}

func TestDecodeReaderLimit(t *testing.T) {
	var it item
	if err := DecodeReader(strings.NewReader(`{"qr":"0123456789"}`), 10, &it); err == nil || !strings.Contains(err.Error(), "larger than 10 bytes") {
		t.Errorf("over the limit: %v", err)
	}
	if err := DecodeReader(strings.NewReader(`{"qr":"1"}`), 10, &it); err != nil || it.QR != "1" {
		t.Errorf("at the limit: %v %+v", err, it)
	}
}

// FuzzDecode: Decode never panics, and whatever it accepts encoding/json
// reads the same way, with no member name it had to fold or choose between.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{`{"items":[{"qr":"a"}]}`, `{"QR":"x"}`, `{"qr":"x","qr":"y"}`, `{"items":[],"tags":{"a":"1"}}`, "{\"qr\":\"\xff\"}", `[]`, `{"items":[{"n":1e400}]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var b batch
		if err := Decode(in, &b); err != nil {
			return
		}
		var loose batch
		if err := json.Unmarshal(in, &loose); err != nil {
			t.Fatalf("strict accepted what encoding/json refuses: %q: %v", in, err)
		}
		x, _ := json.Marshal(b)
		y, _ := json.Marshal(loose)
		if string(x) != string(y) {
			t.Fatalf("strict and loose read %q differently: %s vs %s", in, x, y)
		}
		// No accepted name differs from the field's only by case.
		var generic map[string]json.RawMessage
		if json.Unmarshal(in, &generic) == nil {
			for k := range generic {
				if k != "items" && k != "tags" && k != "extra" && k != "inner" {
					t.Fatalf("accepted member %q", k)
				}
			}
		}
	})
}

// BenchmarkDecode compares Decode with encoding/json on a pairing
// request's size (a QR of ~290 bytes and a label).
func BenchmarkDecode(b *testing.B) {
	in := []byte(`{"items":[{"qr":"` + strings.Repeat("x", 290) + `","label":"ICU-MON-04"}]}`)
	b.Run("strictjson", func(b *testing.B) {
		for b.Loop() {
			var v batch
			if err := Decode(in, &v); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		for b.Loop() {
			var v batch
			if err := json.Unmarshal(in, &v); err != nil {
				b.Fatal(err)
			}
		}
	})
}
