package strictjson

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"sync"
	"unicode/utf8"
)

// ErrMalformed is wrapped by every error about the input.
var ErrMalformed = errors.New("malformed JSON")

// maxDepth bounds the nesting of objects and arrays.
const maxDepth = 64

// Decode decodes b, exactly one JSON value, into v (a non-nil pointer).
func Decode(b []byte, v any) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return errors.New("strictjson: Decode needs a non-nil pointer")
	}
	if !utf8.Valid(b) {
		i := invalidUTF8At(b)
		return fmt.Errorf("%w: byte %d is not UTF-8", ErrMalformed, i+1)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	w := walker{dec: dec}
	if err := w.value(rv.Type().Elem(), "", 0); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("%w: data after the JSON value", ErrMalformed)
	}
	// The walk checked every name against the target; encoding/json now
	// fills it (and checks the types).
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return nil
}

// DecodeReader reads at most limit bytes from r and decodes them as Decode
// does; more than limit bytes is an error.
func DecodeReader(r io.Reader, limit int64, v any) error {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return fmt.Errorf("read: %w", err)
	}
	if int64(len(b)) > limit {
		return fmt.Errorf("%w: larger than %d bytes", ErrMalformed, limit)
	}
	return Decode(b, v)
}

func invalidUTF8At(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n == 1 {
			return i
		}
		i += n
	}
	return len(b)
}

// walker checks the token stream against the target type.
type walker struct{ dec *json.Decoder }

var (
	rawType         = reflect.TypeFor[json.RawMessage]()
	unmarshalerType = reflect.TypeFor[json.Unmarshaler]()
	textType        = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// free reports whether t decodes any JSON itself (names are not checked
// against it; duplicates and nulls still are).
func free(t reflect.Type) bool {
	if t == nil || t == rawType || t.Kind() == reflect.Interface {
		return true
	}
	pt := reflect.PointerTo(t)
	return pt.Implements(unmarshalerType) && !pt.Implements(textType)
}

// value checks one JSON value for target type t (nil: any). at names it
// in errors ("items[3].qr").
func (w *walker) value(t reflect.Type, at string, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("%w: nested deeper than %d", ErrMalformed, maxDepth)
	}
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t != nil && free(t) {
		t = nil
	}
	tok, err := w.dec.Token()
	if err != nil {
		return fmt.Errorf("%w: %s%v", ErrMalformed, where(at), err)
	}
	switch tok {
	case nil:
		return fmt.Errorf("%w: %snull is not allowed", ErrMalformed, where(at))
	case json.Delim('{'):
		return w.object(t, at, depth)
	case json.Delim('['):
		var elem reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			elem = t.Elem()
		}
		for i := 0; w.dec.More(); i++ {
			if err := w.value(elem, fmt.Sprintf("%s[%d]", at, i), depth+1); err != nil {
				return err
			}
		}
		return w.end(at)
	}
	return nil
}

func (w *walker) object(t reflect.Type, at string, depth int) error {
	var fields map[string]reflect.Type
	var elem reflect.Type
	checkNames := false
	if t != nil {
		switch t.Kind() {
		case reflect.Struct:
			fields, checkNames = fieldsOf(t), true
		case reflect.Map:
			elem = t.Elem()
		}
	}
	seen := map[string]bool{}
	for w.dec.More() {
		tok, err := w.dec.Token()
		if err != nil {
			return fmt.Errorf("%w: %s%v", ErrMalformed, where(at), err)
		}
		name, _ := tok.(string)
		member := name
		if at != "" {
			member = at + "." + name
		}
		if seen[name] {
			return fmt.Errorf("%w: member %.64q appears twice", ErrMalformed, member)
		}
		seen[name] = true
		vt := elem
		if checkNames {
			ft, ok := fields[name]
			if !ok {
				if want := foldMatch(fields, name); want != "" {
					return fmt.Errorf("%w: unknown member %.64q (the name is %q: case matters)", ErrMalformed, member, want)
				}
				return fmt.Errorf("%w: unknown member %.64q", ErrMalformed, member)
			}
			vt = ft
		}
		if err := w.value(vt, member, depth+1); err != nil {
			return err
		}
	}
	return w.end(at)
}

// end reads the closing delimiter of an object or array.
func (w *walker) end(at string) error {
	if _, err := w.dec.Token(); err != nil {
		return fmt.Errorf("%w: %s%v", ErrMalformed, where(at), err)
	}
	return nil
}

func where(at string) string {
	if at == "" {
		return ""
	}
	return at + ": "
}

func foldMatch(fields map[string]reflect.Type, name string) string {
	for f := range fields {
		if strings.EqualFold(f, name) {
			return f
		}
	}
	return ""
}

var fieldCache sync.Map // reflect.Type -> map[string]reflect.Type

// fieldsOf maps the JSON names of t's fields, as encoding/json names them
// (tag name, else the field name; embedded structs without a tag name are
// flattened), to their types.
func fieldsOf(t reflect.Type) map[string]reflect.Type {
	if m, ok := fieldCache.Load(t); ok {
		return m.(map[string]reflect.Type)
	}
	m := map[string]reflect.Type{}
	addFields(t, m, 0)
	fieldCache.Store(t, m)
	return m
}

func addFields(t reflect.Type, m map[string]reflect.Type, depth int) {
	if depth > 8 {
		return
	}
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				addFields(ft, m, depth+1)
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		if _, dup := m[name]; !dup {
			m[name] = f.Type
		}
	}
}
