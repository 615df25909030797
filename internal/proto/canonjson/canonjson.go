package canonjson

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// MaxDepth is the deepest nesting of arrays and objects Canonicalize accepts.
const MaxDepth = 1000

// Reasons for refusal; every error Canonicalize returns wraps exactly one.
var (
	// ErrSyntax: the input is not one RFC 8259 JSON value.
	ErrSyntax = errors.New("not JSON")
	// ErrString: a string holds invalid UTF-8 or an escaped lone surrogate.
	ErrString = errors.New("string is not valid Unicode")
	// ErrDuplicateName: an object has two members with the same name.
	ErrDuplicateName = errors.New("duplicate member name")
	// ErrNumber: a number is out of the range of an IEEE-754 double.
	ErrNumber = errors.New("number out of range of a double")
	// ErrTooDeep: arrays and objects nest deeper than MaxDepth.
	ErrTooDeep = errors.New("nested too deep")
)

// maxQuoted bounds how much of the input an error message quotes.
const maxQuoted = 32

// Canonicalize returns the RFC 8785 canonical form of the JSON value in in.
// Errors are prefixed "canonical JSON:", give the byte offset of the problem
// and wrap one of the Err variables.
func Canonicalize(in []byte) ([]byte, error) {
	p := parser{in: in}
	p.skipSpace()
	v, err := p.value(0)
	if err != nil {
		return nil, err
	}
	p.skipSpace()
	if p.pos < len(p.in) {
		return nil, p.errorf(ErrSyntax, "%s after the value", p.describe())
	}
	out := make([]byte, 0, len(in))
	return v.appendTo(out), nil
}

// kind says which fields of a node hold its value.
type kind uint8

const (
	scalar kind = iota // text
	array              // elems
	object             // members, sorted
)

// String names the kind, for messages and tests.
func (k kind) String() string {
	switch k {
	case scalar:
		return "scalar"
	case array:
		return "array"
	case object:
		return "object"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// node is one parsed value. Parsing builds the tree and appendTo writes it
// once, so every output byte is copied once whatever the nesting.
type node struct {
	kind    kind
	text    string // scalar: its canonical text
	elems   []node
	members []member
}

// member is one object member: its name decoded, its value.
type member struct {
	name  string
	value node
}

func (n *node) appendTo(b []byte) []byte {
	switch n.kind {
	case array:
		b = append(b, '[')
		for i := range n.elems {
			if i > 0 {
				b = append(b, ',')
			}
			b = n.elems[i].appendTo(b)
		}
		return append(b, ']')
	case object:
		b = append(b, '{')
		for i := range n.members {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, n.members[i].name)
			b = append(b, ':')
			b = n.members[i].value.appendTo(b)
		}
		return append(b, '}')
	}
	return append(b, n.text...)
}

type parser struct {
	in  []byte
	pos int
}

func (p *parser) errorf(reason error, format string, args ...any) error {
	return errorAt(p.pos, reason, format, args...)
}

func errorAt(pos int, reason error, format string, args ...any) error {
	return fmt.Errorf("canonical JSON: at byte %d: %w: %s", pos, reason, fmt.Sprintf(format, args...))
}

// describe names what is at p.pos for an error message.
func (p *parser) describe() string {
	if p.pos >= len(p.in) {
		return "end of input"
	}
	return fmt.Sprintf("%q", p.in[p.pos])
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func (p *parser) skipSpace() {
	for p.pos < len(p.in) && isSpace(p.in[p.pos]) {
		p.pos++
	}
}

// value parses the value at p.pos (whitespace already skipped).
func (p *parser) value(depth int) (node, error) {
	if p.pos >= len(p.in) {
		return node{}, p.errorf(ErrSyntax, "end of input where a value was expected")
	}
	switch c := p.in[p.pos]; {
	case c == '{':
		return p.object(depth + 1)
	case c == '[':
		return p.array(depth + 1)
	case c == '"':
		s, err := p.str()
		if err != nil {
			return node{}, err
		}
		return node{text: string(appendString(nil, s))}, nil
	case c == '-' || ('0' <= c && c <= '9'):
		return p.number()
	}
	for _, lit := range [...]string{"true", "false", "null"} {
		if bytes.HasPrefix(p.in[p.pos:], []byte(lit)) {
			p.pos += len(lit)
			return node{text: lit}, nil
		}
	}
	return node{}, p.errorf(ErrSyntax, "%s where a value was expected", p.describe())
}

func (p *parser) array(depth int) (node, error) {
	if depth > MaxDepth {
		return node{}, p.errorf(ErrTooDeep, "more than %d levels", MaxDepth)
	}
	p.pos++ // '['
	n := node{kind: array}
	p.skipSpace()
	if p.pos < len(p.in) && p.in[p.pos] == ']' {
		p.pos++
		return n, nil
	}
	for {
		p.skipSpace()
		v, err := p.value(depth)
		if err != nil {
			return node{}, err
		}
		n.elems = append(n.elems, v)
		p.skipSpace()
		if p.pos >= len(p.in) {
			return node{}, p.errorf(ErrSyntax, "end of input in an array")
		}
		switch p.in[p.pos] {
		case ',':
			p.pos++
		case ']':
			p.pos++
			return n, nil
		default:
			return node{}, p.errorf(ErrSyntax, "%s where ',' or ']' was expected", p.describe())
		}
	}
}

func (p *parser) object(depth int) (node, error) {
	if depth > MaxDepth {
		return node{}, p.errorf(ErrTooDeep, "more than %d levels", MaxDepth)
	}
	start := p.pos
	p.pos++ // '{'
	n := node{kind: object}
	p.skipSpace()
	if p.pos < len(p.in) && p.in[p.pos] == '}' {
		p.pos++
		return n, nil
	}
	for {
		p.skipSpace()
		if p.pos >= len(p.in) || p.in[p.pos] != '"' {
			return node{}, p.errorf(ErrSyntax, "%s where a member name was expected", p.describe())
		}
		name, err := p.str()
		if err != nil {
			return node{}, err
		}
		p.skipSpace()
		if p.pos >= len(p.in) || p.in[p.pos] != ':' {
			return node{}, p.errorf(ErrSyntax, "%s where ':' was expected", p.describe())
		}
		p.pos++
		p.skipSpace()
		v, err := p.value(depth)
		if err != nil {
			return node{}, err
		}
		n.members = append(n.members, member{name: name, value: v})
		p.skipSpace()
		if p.pos >= len(p.in) {
			return node{}, p.errorf(ErrSyntax, "end of input in an object")
		}
		if c := p.in[p.pos]; c == '}' {
			p.pos++
			break
		} else if c != ',' {
			return node{}, p.errorf(ErrSyntax, "%s where ',' or '}' was expected", p.describe())
		}
		p.pos++
	}
	slices.SortFunc(n.members, func(a, b member) int { return compareUTF16(a.name, b.name) })
	for i := 1; i < len(n.members); i++ {
		if n.members[i-1].name == n.members[i].name {
			return node{}, errorAt(start, ErrDuplicateName, "%s in the object", quote(n.members[i].name))
		}
	}
	return n, nil
}

// quote quotes s for an error message, at most maxQuoted bytes of it.
func quote(s string) string {
	if len(s) > maxQuoted {
		return fmt.Sprintf("%q (first %d of %d bytes)", s[:maxQuoted], maxQuoted, len(s))
	}
	return strconv.Quote(s)
}

// compareUTF16 orders valid UTF-8 strings by their UTF-16 code units, as
// RFC 8785 section 3.2.3 sorts member names. It differs from byte order
// only between U+E000..U+FFFF and supplementary characters, whose UTF-16
// form starts with a high surrogate (0xD800..0xDBFF).
func compareUTF16(a, b string) int {
	for a != "" && b != "" {
		ra, na := utf8.DecodeRuneInString(a)
		rb, nb := utf8.DecodeRuneInString(b)
		if ra != rb {
			if (ra < 0x10000) != (rb < 0x10000) {
				// One is in the BMP (never a surrogate: the input is valid
				// UTF-8), the other starts with a high surrogate.
				ra, rb = firstUnit(ra), firstUnit(rb)
			}
			// Otherwise code point order is code unit order.
			return int(ra) - int(rb)
		}
		a, b = a[na:], b[nb:]
	}
	return len(a) - len(b)
}

// firstUnit is the first UTF-16 code unit of r.
func firstUnit(r rune) rune {
	if r < 0x10000 {
		return r
	}
	return 0xD800 + (r-0x10000)>>10
}

// str parses the string at p.pos (its opening quote) and returns it decoded.
func (p *parser) str() (string, error) {
	p.pos++ // '"'
	var b []byte
	for {
		// Copy a run of bytes that need no decoding.
		start := p.pos
		for p.pos < len(p.in) {
			c := p.in[p.pos]
			if c == '"' || c == '\\' || c < 0x20 || c >= utf8.RuneSelf {
				break
			}
			p.pos++
		}
		b = append(b, p.in[start:p.pos]...)
		if p.pos >= len(p.in) {
			return "", p.errorf(ErrSyntax, "end of input in a string")
		}
		switch c := p.in[p.pos]; {
		case c == '"':
			p.pos++
			return string(b), nil
		case c < 0x20:
			return "", p.errorf(ErrSyntax, "control character 0x%02x in a string", c)
		case c >= utf8.RuneSelf:
			r, size := utf8.DecodeRune(p.in[p.pos:])
			if r == utf8.RuneError && size == 1 {
				return "", p.errorf(ErrString, "invalid UTF-8 byte 0x%02x", c)
			}
			b = append(b, p.in[p.pos:p.pos+size]...)
			p.pos += size
		default: // '\\'
			var err error
			if b, err = p.escape(b); err != nil {
				return "", err
			}
		}
	}
}

// escape decodes the escape sequence at p.pos (its backslash) onto b.
func (p *parser) escape(b []byte) ([]byte, error) {
	if p.pos+1 >= len(p.in) {
		p.pos++
		return nil, p.errorf(ErrSyntax, "end of input in an escape")
	}
	c := p.in[p.pos+1]
	if c != 'u' {
		var d byte
		switch c {
		case '"', '\\', '/':
			d = c
		case 'b':
			d = '\b'
		case 'f':
			d = '\f'
		case 'n':
			d = '\n'
		case 'r':
			d = '\r'
		case 't':
			d = '\t'
		default:
			return nil, p.errorf(ErrSyntax, "unknown escape \\%c", c)
		}
		p.pos += 2
		return append(b, d), nil
	}
	r, err := p.hex4()
	if err != nil {
		return nil, err
	}
	switch {
	case 0xDC00 <= r && r <= 0xDFFF:
		return nil, p.errorf(ErrString, "lone low surrogate \\u%04x", r)
	case 0xD800 <= r && r <= 0xDBFF:
		if p.pos+1 >= len(p.in) || p.in[p.pos] != '\\' || p.in[p.pos+1] != 'u' {
			return nil, p.errorf(ErrString, "high surrogate \\u%04x not followed by a low surrogate", r)
		}
		lo, err := p.hex4()
		if err != nil {
			return nil, err
		}
		if lo < 0xDC00 || lo > 0xDFFF {
			return nil, p.errorf(ErrString, "high surrogate \\u%04x followed by \\u%04x", r, lo)
		}
		r = 0x10000 + (r-0xD800)<<10 + (lo - 0xDC00)
	}
	return utf8.AppendRune(b, r), nil
}

// hex4 decodes \uXXXX at p.pos.
func (p *parser) hex4() (rune, error) {
	if p.pos+6 > len(p.in) {
		return 0, p.errorf(ErrSyntax, "end of input in a \\u escape")
	}
	var r rune
	for _, c := range p.in[p.pos+2 : p.pos+6] {
		var d byte
		switch {
		case '0' <= c && c <= '9':
			d = c - '0'
		case 'a' <= c && c <= 'f':
			d = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			d = c - 'A' + 10
		default:
			return 0, p.errorf(ErrSyntax, "%q in a \\u escape", c)
		}
		r = r<<4 | rune(d)
	}
	p.pos += 6
	return r, nil
}

// appendString appends s (valid UTF-8) quoted as RFC 8785 section 3.2.2.2
// (ECMAScript JSON.stringify) writes strings.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\b':
			b = append(b, '\\', 'b')
		case '\t':
			b = append(b, '\\', 't')
		case '\n':
			b = append(b, '\\', 'n')
		case '\f':
			b = append(b, '\\', 'f')
		case '\r':
			b = append(b, '\\', 'r')
		default:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// number parses the number at p.pos by the RFC 8259 section 6 grammar
//
//	number = [ "-" ] int [ frac ] [ exp ]
//	int    = "0" / ( digit1-9 *DIGIT )
//	frac   = "." 1*DIGIT
//	exp    = ("e" / "E") [ "-" / "+" ] 1*DIGIT
//
// (strconv.ParseFloat alone would take more: hex, '+', '_', "Inf") and
// returns it in ECMAScript form.
func (p *parser) number() (node, error) {
	start := p.pos
	digits := func() int {
		n := 0
		for p.pos < len(p.in) && '0' <= p.in[p.pos] && p.in[p.pos] <= '9' {
			p.pos++
			n++
		}
		return n
	}
	if p.in[p.pos] == '-' {
		p.pos++
	}
	switch {
	case p.pos < len(p.in) && p.in[p.pos] == '0':
		p.pos++
	case digits() == 0:
		return node{}, p.errorf(ErrSyntax, "%s where a digit was expected", p.describe())
	}
	if p.pos < len(p.in) && p.in[p.pos] == '.' {
		p.pos++
		if digits() == 0 {
			return node{}, p.errorf(ErrSyntax, "%s where a fraction digit was expected", p.describe())
		}
	}
	if p.pos < len(p.in) && (p.in[p.pos] == 'e' || p.in[p.pos] == 'E') {
		p.pos++
		if p.pos < len(p.in) && (p.in[p.pos] == '+' || p.in[p.pos] == '-') {
			p.pos++
		}
		if digits() == 0 {
			return node{}, p.errorf(ErrSyntax, "%s where an exponent digit was expected", p.describe())
		}
	}
	tok := string(p.in[start:p.pos])
	f, err := strconv.ParseFloat(tok, 64)
	if err != nil {
		// Only a range error can reach here; its text would quote tok whole.
		return node{}, errorAt(start, ErrNumber, "%s", quote(tok))
	}
	return node{text: formatNumber(f)}, nil
}

// formatNumber writes f as ECMAScript's Number.prototype.toString does
// (RFC 8785 section 3.2.2.3), which is the canonical form of a JSON number.
// NaN and infinities, which JSON cannot carry, come out as "null", as in
// JSON.stringify; Canonicalize never produces them.
func formatNumber(f float64) string {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return "null"
	}
	if f == 0 { // and -0
		return "0"
	}
	abs := math.Abs(f)
	if abs >= 1e-6 && abs < 1e21 {
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	// Shortest digits in exponent form; ECMAScript writes the exponent
	// without leading zeros ("1e-7", Go writes "1e-07").
	s := strconv.FormatFloat(f, 'e', -1, 64)
	i := strings.IndexByte(s, 'e')
	if i > 0 && i+2 < len(s) && s[i+2] == '0' {
		s = s[:i+2] + s[i+3:]
	}
	return s
}
