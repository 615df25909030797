package canonjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/gowebpki/jcs"
)

// same checks that Canonicalize(in) gives want and that gowebpki/jcs, the
// oracle, agrees.
func same(t *testing.T, in, want string) {
	t.Helper()
	got, err := Canonicalize([]byte(in))
	if err != nil {
		t.Fatalf("Canonicalize(%q): %v", in, err)
	}
	if string(got) != want {
		t.Errorf("Canonicalize(%q)\n got %q\nwant %q", in, got, want)
	}
	oracle, err := jcs.Transform([]byte(in))
	if err != nil {
		t.Fatalf("jcs.Transform(%q): %v", in, err)
	}
	if string(oracle) != want {
		t.Errorf("jcs.Transform(%q) = %q, the test expects %q", in, oracle, want)
	}
}

// TestRFC8785Examples: the examples of RFC 8785 (section 3.2.2 values,
// section 3.2.3 sorting) and the reference implementation's test data
// (github.com/cyberphone/json-canonicalization testdata, shipped with
// gowebpki/jcs).
func TestRFC8785Examples(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"arrays", "[\n  56,\n  {\n    \"d\": true,\n    \"10\": null,\n    \"1\": [ ]\n  }\n]",
			`[56,{"1":[],"10":null,"d":true}]`},
		{"false", `false`, `false`},
		{"true", `true`, `true`},
		{"null", `null`, `null`},
		{"french", "{\n  \"peach\": \"This sorting order\",\n  \"péché\": \"is wrong according to French\",\n  \"pêche\": \"but canonicalization MUST\",\n  \"sin\":   \"ignore locale\"\n}",
			`{"peach":"This sorting order","péché":"is wrong according to French","pêche":"but canonicalization MUST","sin":"ignore locale"}`},
		{"simpleString", `    "this is a test string 1235"`, `"this is a test string 1235"`},
		{"structures", "{\n  \"1\": {\"f\": {\"f\": \"hi\",\"F\": 5} ,\"\\n\": 56.0},\n  \"10\": { },\n  \"\": \"empty\",\n  \"a\": { },\n  \"111\": [ {\"e\": \"yes\",\"E\": \"no\" } ],\n  \"A\": { }\n}",
			`{"":"empty","1":{"\n":56,"f":{"F":5,"f":"hi"}},"10":{},"111":[{"E":"no","e":"yes"}],"A":{},"a":{}}`},
		{"unicode", "{\n  \"Unnormalized Unicode\":\"A\\u030a\"\n}", "{\"Unnormalized Unicode\":\"A\u030a\"}"},
		{"values (RFC 8785 3.2.2)", "{\n  \"numbers\": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],\n  \"string\": \"\\u20ac$\\u000F\\u000aA'\\u0042\\u0022\\u005c\\\\\\\"\\/\",\n  \"literals\": [null, true, false]\n}",
			`{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}`},
		{"weird (RFC 8785 3.2.3)", "{\n  \"\\u20ac\": \"Euro Sign\",\n  \"\\r\": \"Carriage Return\",\n  \"\\u000a\": \"Newline\",\n  \"1\": \"One\",\n  \"\\u0080\": \"Control\\u007f\",\n  \"\\ud83d\\ude02\": \"Smiley\",\n  \"\\u00f6\": \"Latin Small Letter O With Diaeresis\",\n  \"\\ufb33\": \"Hebrew Letter Dalet With Dagesh\",\n  \"</script>\": \"Browser Challenge\"\n}",
			"{\"\\n\":\"Newline\",\"\\r\":\"Carriage Return\",\"1\":\"One\",\"</script>\":\"Browser Challenge\",\"\u0080\":\"Control\u007f\",\"ö\":\"Latin Small Letter O With Diaeresis\",\"€\":\"Euro Sign\",\"😂\":\"Smiley\",\"\ufb33\":\"Hebrew Letter Dalet With Dagesh\"}"},
	} {
		t.Run(tc.name, func(t *testing.T) { same(t, tc.in, tc.want) })
	}
}

// appendixB is RFC 8785 Appendix B: IEEE-754 bits and their canonical text
// ("" for NaN and Infinity, which JSON cannot carry).
var appendixB = []struct {
	bits uint64
	want string
}{
	{0x0000000000000000, "0"},
	{0x8000000000000000, "0"},
	{0x0000000000000001, "5e-324"},
	{0x8000000000000001, "-5e-324"},
	{0x7fefffffffffffff, "1.7976931348623157e+308"},
	{0xffefffffffffffff, "-1.7976931348623157e+308"},
	{0x4340000000000000, "9007199254740992"},
	{0xc340000000000000, "-9007199254740992"},
	{0x4430000000000000, "295147905179352830000"},
	{0x7fffffffffffffff, ""},
	{0x7ff0000000000000, ""},
	{0x44b52d02c7e14af5, "9.999999999999997e+22"},
	{0x44b52d02c7e14af6, "1e+23"},
	{0x44b52d02c7e14af7, "1.0000000000000001e+23"},
	{0x444b1ae4d6e2ef4e, "999999999999999700000"},
	{0x444b1ae4d6e2ef4f, "999999999999999900000"},
	{0x444b1ae4d6e2ef50, "1e+21"},
	{0x3eb0c6f7a0b5ed8c, "9.999999999999997e-7"},
	{0x3eb0c6f7a0b5ed8d, "0.000001"},
	{0x41b3de4355555553, "333333333.3333332"},
	{0x41b3de4355555554, "333333333.33333325"},
	{0x41b3de4355555555, "333333333.3333333"},
	{0x41b3de4355555556, "333333333.3333334"},
	{0x41b3de4355555557, "333333333.33333343"},
	{0xbecbf647612f3696, "-0.0000033333333333333333"},
	{0x43143ff3c1cb0959, "1424953923781206.2"},
}

func TestAppendixBNumbers(t *testing.T) {
	for _, tc := range appendixB {
		f := math.Float64frombits(tc.bits)
		if tc.want == "" {
			if got := formatNumber(f); got != "null" {
				t.Errorf("formatNumber(%x) = %q, want null", tc.bits, got)
			}
			continue
		}
		if got := formatNumber(f); got != tc.want {
			t.Errorf("formatNumber(%#016x) = %q, want %q", tc.bits, got, tc.want)
		}
		// Through the parser, from Go's and from the canonical spelling.
		same(t, "["+strconv.FormatFloat(f, 'g', -1, 64)+"]", "["+tc.want+"]")
		same(t, "["+tc.want+"]", "["+tc.want+"]")
	}
}

// TestNumberSpellings: the same double written many ways.
func TestNumberSpellings(t *testing.T) {
	for in, want := range map[string]string{
		"0": "0", "-0": "0", "-0.0": "0", "0e5": "0", "0E-5": "0", "1e-400": "0", "-1e-400": "0",
		"1": "1", "1.0": "1", "1.50": "1.5", "15e-1": "1.5", "1E+2": "100", "1e2": "100",
		"9007199254740993": "9007199254740992", "-9007199254740991": "-9007199254740991",
		"1e21": "1e+21", "1e20": "100000000000000000000", "123456789012345678901234567890": "1.2345678901234568e+29",
		"0.000001": "0.000001", "0.0000001": "1e-7", "1.5e-7": "1.5e-7", "-1.5e-7": "-1.5e-7",
		"4.9406564584124654e-324": "5e-324", "2.2250738585072014e-308": "2.2250738585072014e-308",
		"0." + strings.Repeat("0", 400) + "1e401": "1",
	} {
		same(t, in, want)
	}
}

// TestRandomNumbers compares with jcs on random doubles, in the ranges
// where the notation changes and over all bit patterns.
func TestRandomNumbers(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	n := 200000
	if testing.Short() {
		n = 20000
	}
	var in bytes.Buffer
	in.WriteByte('[')
	for i := 0; i < n; i++ {
		var f float64
		switch i % 4 {
		case 0:
			f = math.Float64frombits(r.Uint64())
		case 1:
			f = r.Float64() * math.Pow(10, float64(r.IntN(50)-25))
		case 2:
			f = float64(r.Int64N(1<<53)) - 1<<52
		case 3:
			f = math.Nextafter(math.Pow(10, float64(r.IntN(40)-20)), math.Inf(r.IntN(2)*2-1))
		}
		if math.IsNaN(f) || math.IsInf(f, 0) {
			continue
		}
		want, err := jcs.NumberToJSON(f)
		if err != nil {
			t.Fatal(err)
		}
		if got := formatNumber(f); got != want {
			t.Fatalf("formatNumber(%#016x) = %q, jcs %q", math.Float64bits(f), got, want)
		}
		if in.Len() > 1 {
			in.WriteByte(',')
		}
		in.WriteString(strconv.FormatFloat(f, 'g', -1, 64))
	}
	in.WriteByte(']')
	got, err := Canonicalize(in.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	want, err := jcs.Transform(in.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("canonical arrays of random numbers differ from jcs")
	}
}

// TestStringEscapes: every ASCII character, given raw where JSON allows
// and escaped always, comes out as JSON.stringify writes it.
func TestStringEscapes(t *testing.T) {
	short := map[byte]string{'\b': `\b`, '\t': `\t`, '\n': `\n`, '\f': `\f`, '\r': `\r`, '"': `\"`, '\\': `\\`}
	for c := 0; c < 0x80; c++ {
		want, ok := short[byte(c)]
		switch {
		case ok:
		case c < 0x20:
			want = `\u00` + strconv.FormatUint(uint64(c)>>4, 16) + strconv.FormatUint(uint64(c)&15, 16)
		default:
			want = string(rune(c))
		}
		esc := `\u` + strings.ToUpper(strconv.FormatUint(uint64(c)|0x10000, 16)[1:])
		same(t, `"`+esc+`"`, `"`+want+`"`)
		same(t, `{"`+esc+`":0}`, `{"`+want+`":0}`)
		if c >= 0x20 && c != '"' && c != '\\' {
			same(t, `"`+string(rune(c))+`"`, `"`+want+`"`)
		}
	}
	same(t, `"\/\"\\\b\f\n\r\t"`, `"/\"\\\b\f\n\r\t"`)
	same(t, `"\u00e9\u00E9é\u20ac\ud83d\ude02\uD83D\uDE02😂\uffff\ufffd`+"\uFFFD"+`"`, `"ééé€😂😂😂`+"\uffff\ufffd\ufffd"+`"`)
	same(t, `"a\u0000b"`, `"a\u0000b"`)
}

// TestSortByUTF16: names straddling the range where UTF-16 order and code
// point (UTF-8 byte) order differ, in every order of input.
func TestSortByUTF16(t *testing.T) {
	names := []string{"", "a", "aa", "b", "\u007f", "\u0080", "\ud7ff", "\ue000", "\uffff", "\U00010000", "\U0001F602", "\U0010FFFF", "a\U00010000", "a\uffff", "A", "Z", "é", "e\u0301"}
	ref := slices.Clone(names)
	key := func(s string) []uint16 { return utf16.Encode([]rune(s)) }
	slices.SortFunc(ref, func(a, b string) int { return slices.Compare(key(a), key(b)) })
	var want bytes.Buffer
	want.WriteByte('{')
	for i, n := range ref {
		if i > 0 {
			want.WriteByte(',')
		}
		want.WriteString(jsonQuote(n) + ":" + strconv.Itoa(i))
	}
	want.WriteByte('}')
	r := rand.New(rand.NewPCG(3, 4))
	for range 50 {
		r.Shuffle(len(names), func(i, j int) { names[i], names[j] = names[j], names[i] })
		var in bytes.Buffer
		in.WriteString("{ ")
		for i, n := range names {
			if i > 0 {
				in.WriteString(" , ")
			}
			in.WriteString(jsonQuote(n) + " : " + strconv.Itoa(slices.Index(ref, n)))
		}
		in.WriteString(" }")
		same(t, in.String(), want.String())
	}
	for _, tc := range []struct {
		a, b string
		sign int
	}{
		{"\uffff", "\U00010000", 1},
		{"\ue000", "\U0010ffff", 1},
		{"\ud7ff", "\U00010000", -1},
		{"\U00010000", "\U0010ffff", -1},
		{"a", "a\U00010000", -1},
		{"\U0001F602", "\U0001F602", 0},
	} {
		if got := compareUTF16(tc.a, tc.b); got != 0 && (got > 0) != (tc.sign > 0) || (got == 0) != (tc.sign == 0) {
			t.Errorf("compareUTF16(%q, %q) = %d, want the sign of %d", tc.a, tc.b, got, tc.sign)
		}
	}
}

func jsonQuote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func TestWhitespace(t *testing.T) {
	same(t, " \t\r\n{ \"a\" :\n[ 1 ,\t2 ] , \"b\":{ } }\r\n ", `{"a":[1,2],"b":{}}`)
	same(t, "\n42\n", "42")
	same(t, `[[],{},[{}],""]`, `[[],{},[{}],""]`)
}

// TestRefusals: each malformed input is refused with its reason, and jcs
// refuses it too (so refusing cannot break compatibility).
func TestRefusals(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want error
	}{
		{``, ErrSyntax},
		{` `, ErrSyntax},
		{"\xef\xbb\xbf{}", ErrSyntax},
		{`{}{}`, ErrSyntax},
		{`{} x`, ErrSyntax},
		{`[1,]`, ErrSyntax},
		{`[,1]`, ErrSyntax},
		{`[1 2]`, ErrSyntax},
		{`[`, ErrSyntax},
		{`{`, ErrSyntax},
		{`{"a"}`, ErrSyntax},
		{`{"a":}`, ErrSyntax},
		{`{"a" 1}`, ErrSyntax},
		{`{"a":1,}`, ErrSyntax},
		{`{,}`, ErrSyntax},
		{`{a:1}`, ErrSyntax},
		{`{"a":1 "b":2}`, ErrSyntax},
		{`[tru]`, ErrSyntax},
		{`[truex]`, ErrSyntax},
		{`[nul]`, ErrSyntax},
		{`[True]`, ErrSyntax},
		{`[NaN]`, ErrSyntax},
		{`[Infinity]`, ErrSyntax},
		{`[-Infinity]`, ErrSyntax},
		{`[01]`, ErrSyntax},
		{`[-01]`, ErrSyntax},
		{`[+1]`, ErrSyntax},
		{`[.5]`, ErrSyntax},
		{`[1.]`, ErrSyntax},
		{`[1.e5]`, ErrSyntax},
		{`[1e]`, ErrSyntax},
		{`[1e+]`, ErrSyntax},
		{`[-]`, ErrSyntax},
		{`[0x10]`, ErrSyntax},
		{`[0x1p5]`, ErrSyntax},
		{`[1_000]`, ErrSyntax},
		{`[1.5.3]`, ErrSyntax},
		{`'a'`, ErrSyntax},
		{`"abc`, ErrSyntax},
		{`"abc\`, ErrSyntax},
		{"\"a\x01b\"", ErrSyntax},
		{"\"a\nb\"", ErrSyntax},
		{`"\x"`, ErrSyntax},
		{`"\U0041"`, ErrSyntax},
		{`"\u00g0"`, ErrSyntax},
		{`"\u00"`, ErrSyntax},
		{`"\u+041"`, ErrSyntax},
		{"[1]\x00", ErrSyntax},
		{"\"\xff\"", ErrString},
		{"\"\xc0\x80\"", ErrString},
		{"\"\xed\xa0\x80\"", ErrString},
		{"\"\xe2\x82\"", ErrString},
		{"{\"\xfe\":1}", ErrString},
		{`"\ud83d"`, ErrString},
		{`"\ud83dx"`, ErrString},
		{`"\ud83d\u0041"`, ErrString},
		{`"\ud83d\ud83d"`, ErrString},
		{`"\ude02"`, ErrString},
		{`"\ude02\ud83d"`, ErrString},
		{`{"a":1,"a":2}`, ErrDuplicateName},
		{`{"a":1,"\u0061":2}`, ErrDuplicateName},
		{`{"b":{"x":1,"y":2,"x":3}}`, ErrDuplicateName},
		{`{"😂":1,"\ud83d\ude02":2}`, ErrDuplicateName},
		{`[1e400]`, ErrNumber},
		{`[-1e400]`, ErrNumber},
		{`[1.8e308]`, ErrNumber},
		{`[1e99999999999999999999]`, ErrNumber},
	} {
		got, err := Canonicalize([]byte(tc.in))
		if !errors.Is(err, tc.want) {
			t.Errorf("Canonicalize(%q) = %q, %v; want %v", tc.in, got, err, tc.want)
		} else if !strings.HasPrefix(err.Error(), "canonical JSON: at byte ") {
			t.Errorf("Canonicalize(%q): error %q lacks the prefix", tc.in, err)
		}
		if out, err := jcs.Transform([]byte(tc.in)); err == nil {
			t.Errorf("jcs accepts %q (%q): the test is wrong", tc.in, out)
		}
	}
}

func TestDepth(t *testing.T) {
	for _, open := range []string{"[", `{"a":`} {
		closer := map[string]string{"[": "]", `{"a":`: "}"}[open]
		ok := strings.Repeat(open, MaxDepth) + "0" + strings.Repeat(closer, MaxDepth)
		same(t, ok, strings.ReplaceAll(ok, " ", ""))
		deep := strings.Repeat(open, MaxDepth+1) + "0" + strings.Repeat(closer, MaxDepth+1)
		if _, err := Canonicalize([]byte(deep)); !errors.Is(err, ErrTooDeep) {
			t.Errorf("%d levels: %v, want ErrTooDeep", MaxDepth+1, err)
		}
		// Far deeper than any stack should hold, and unterminated.
		if _, err := Canonicalize([]byte(strings.Repeat(open, 1<<20))); !errors.Is(err, ErrTooDeep) {
			t.Errorf("2^20 levels: %v, want ErrTooDeep", err)
		}
	}
}

// TestErrorsAreBounded: an error quotes at most a few bytes of the input,
// which may be a secret-bearing payload, and says where the problem is.
func TestErrorsAreBounded(t *testing.T) {
	long := strings.Repeat("s", 1000)
	for _, in := range []string{
		`{"` + long + `":1,"` + long + `":2}`,
		`[1` + strings.Repeat("0", 1000) + `e400]`,
		`{"secret":"` + long + "\x01\"}",
	} {
		_, err := Canonicalize([]byte(in))
		if err == nil {
			t.Fatalf("%.40q accepted", in)
		}
		if len(err.Error()) > 160 || strings.Contains(err.Error(), long[:40]) {
			t.Errorf("error too long or quoting the input: %q", err)
		}
	}
	_, err := Canonicalize([]byte(`{"a":1,"b":[1,2,}`))
	if err == nil || !strings.Contains(err.Error(), "at byte 16:") {
		t.Errorf("error %v, want the offset 16", err)
	}
}

// TestPayloadShape: a document shaped like the provisioning payload.
func TestPayloadShape(t *testing.T) {
	in := samplePayload()
	got, err := Canonicalize(in)
	if err != nil {
		t.Fatal(err)
	}
	want, err := jcs.Transform(in)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

func samplePayload() []byte {
	m := map[string]any{
		"version":      1,
		"serverUrl":    "https://monitoring.hospital.example:8443/zm?site=4",
		"deviceLabel":  "ICU-MON-04 Zimmer 3 — Süd",
		"timestamp":    "2026-01-02T03:04:05Z",
		"nonce":        strings.Repeat("Qk", 22),
		"clientCert":   strings.Repeat("MIIB", 200),
		"signerChain":  []string{strings.Repeat("MIIC", 300), strings.Repeat("MIID", 300)},
		"caBundle":     []string{strings.Repeat("MIIE", 300)},
		"wifi":         map[string]any{"ssid": "ICU\t\"net\"", "channels": []int{1, 6, 11}},
		"pairingCheck": "0123456789abcdef",
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		panic(err)
	}
	return b
}

// FuzzCanonicalizeMatchesJCS: whatever Canonicalize accepts, jcs accepts
// with identical output; the output is valid UTF-8 JSON and canonical (a
// fixed point). Inputs jcs accepts and Canonicalize refuses are allowed
// only for nesting beyond MaxDepth.
func FuzzCanonicalizeMatchesJCS(f *testing.F) {
	for _, s := range []string{
		`{}`, `[]`, `null`, `true`, `false`, `0`, `-0`, `-1.5e-7`, `1E+30`, `0.000001`, `1e21`,
		`{"a":1,"b":[1,2,3]}`, `["😀"]`, `{"\u0000":"\u001f"}`, `[1e21,1e-6,5e-324,1.7976931348623157e308]`,
		`{"b":{"a":[{},[]]}}`, "[\"caf\xc3\xa9\"]", `  {"a" : 1}  `, `{"a":1,"a":2}`,
		`{"\uffff":1,"\ud83d\ude02":2,"\ue000":3}`, `"\ud83d"`, "\"\xed\xa0\x80\"", `[01]`, `[1.]`,
		`{"version":1,"serverUrl":"https:\/\/x","nonce":"AAAA","n":[9007199254740991,-9007199254740991]}`,
		`"\b\f\n\r\t\"\\\/\u007f\u0080"`, `[1e400]`, `[[[[[[[[]]]]]]]]`,
	} {
		f.Add([]byte(s))
	}
	f.Add(samplePayload())
	f.Fuzz(func(t *testing.T, in []byte) {
		got, err := Canonicalize(in)
		want, oracleErr := jcs.Transform(in)
		if err != nil {
			if oracleErr == nil && !errors.Is(err, ErrTooDeep) {
				t.Fatalf("refused %q (%v), jcs accepts it as %q", in, err, want)
			}
			return
		}
		if oracleErr != nil {
			t.Fatalf("accepted %q as %q, jcs refuses it: %v", in, got, oracleErr)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("input %q\n got %q\n jcs %q", in, got, want)
		}
		if !utf8.Valid(got) || !json.Valid(got) {
			t.Fatalf("output %q is not valid UTF-8 JSON", got)
		}
		again, err := Canonicalize(got)
		if err != nil || !bytes.Equal(again, got) {
			t.Fatalf("not a fixed point: %q -> %q, %v", got, again, err)
		}
	})
}

func BenchmarkCanonicalize(b *testing.B) {
	in := samplePayload()
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Canonicalize(in); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkJCS(b *testing.B) {
	in := samplePayload()
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := jcs.Transform(in); err != nil {
			b.Fatal(err)
		}
	}
}
