package webapp

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxForm bounds a form body: the largest is a QR code's text (at most
// 331 bytes, percent-encoded at worst three times that) and a label.
const maxForm = 4 << 10

// formError is a form the app refuses, with the status to answer and what
// to say.
type formError struct {
	status int
	msg    string
}

func (e *formError) Error() string { return e.msg }

func badForm(format string, args ...any) *formError {
	return &formError{status: http.StatusBadRequest, msg: fmt.Sprintf(format, args...)}
}

// decodeForm reads a POSTed form strictly: the body must be
// application/x-www-form-urlencoded and at most maxForm bytes; every key
// must be one of fields, spelled exactly (a key that matches one only when
// case is folded is named as such), and given once; no query string; every
// value clean UTF-8 without control characters. Absent fields are "".
func decodeForm(w http.ResponseWriter, r *http.Request, fields ...string) (map[string]string, error) {
	return decodeFormMax(w, r, maxForm, "", fields...)
}

// decodeFormMax is decodeForm with a body of at most limit bytes, and
// the field multiline ("" none) allowed line breaks and tabs (the
// inventory import's pasted records).
func decodeFormMax(w http.ResponseWriter, r *http.Request, limit int64, multiline string, fields ...string) (map[string]string, error) {
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return nil, &formError{status: http.StatusUnsupportedMediaType, msg: "the form must be sent as application/x-www-form-urlencoded"}
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return nil, &formError{status: http.StatusUnsupportedMediaType, msg: "the form must be UTF-8"}
	}
	if r.URL.RawQuery != "" {
		return nil, badForm("a form is sent in the body only, not in the address")
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, &formError{status: http.StatusRequestEntityTooLarge, msg: fmt.Sprintf("the form is larger than %d bytes", limit)}
		}
		return nil, badForm("the form could not be read")
	}
	return parseForm(string(body), multiline, fields...)
}

// parseForm is decodeForm's parser of the body.
func parseForm(body, multiline string, fields ...string) (map[string]string, error) {
	allowed := make(map[string]bool, len(fields))
	out := make(map[string]string, len(fields))
	for _, f := range fields {
		allowed[f] = true
		out[f] = ""
	}
	seen := map[string]bool{}
	if body == "" {
		return out, nil
	}
	for _, pair := range strings.Split(body, "&") {
		if pair == "" {
			return nil, badForm("the form has an empty field")
		}
		rawKey, rawValue, _ := strings.Cut(pair, "=")
		key, err1 := url.QueryUnescape(rawKey)
		value, err2 := url.QueryUnescape(rawValue)
		if err1 != nil || err2 != nil {
			return nil, badForm("the form is not well encoded")
		}
		if !allowed[key] {
			for _, f := range fields {
				if strings.EqualFold(f, key) {
					return nil, badForm("the form's field %.40q is spelled %q here: fields are case-sensitive", key, f)
				}
			}
			return nil, badForm("the form has an unknown field %.40q", key)
		}
		if seen[key] {
			return nil, badForm("the form gives the field %q more than once", key)
		}
		seen[key] = true
		if !cleanText(value) && (key != multiline || !cleanText(strings.NewReplacer("\r\n", "", "\n", "", "\t", "").Replace(value))) {
			return nil, badForm("the field %q has characters that are not text (invalid UTF-8 or control characters)", key)
		}
		out[key] = value
	}
	return out, nil
}

// cleanText reports whether s is valid UTF-8 without control characters.
func cleanText(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}
