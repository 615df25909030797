// Package canonjson turns JSON text into its RFC 8785 (JSON Canonicalization
// Scheme, JCS) canonical form: the bytes the provisioning payload signature
// and the signed hello cover (docs/protocol.md sections 3 and 6).
//
// It exists for size. github.com/gowebpki/jcs does the same job but links
// package regexp (about 200 KB of the stripped arm64 firmware) to check numbers;
// this package checks the RFC 8259 grammar by hand. gowebpki/jcs stays in go.mod
// as its test oracle: the tests and FuzzCanonicalizeMatchesJCS check
// that every input accepted here is accepted by jcs with identical output.
//
// Canonicalize implements all of RFC 8785, numbers included: a number is
// parsed as an IEEE-754 double (strconv.ParseFloat) and written the way
// ECMAScript's Number.prototype.toString does, which for a double is the
// shortest decimal that reads back to it (strconv.FormatFloat with precision
// -1), in fixed notation from 1e-6 up to 1e21 and in exponent notation
// ("1e+21", "5e-324") outside that range.
//
// The input must be one JSON value (RFC 8259), optionally surrounded by
// whitespace. Besides malformed JSON, Canonicalize refuses, as RFC 8785
// requires: invalid UTF-8 and escaped lone surrogates in strings (ErrString),
// duplicate member names in an object (ErrDuplicateName), and numbers outside
// the range of a double (ErrNumber). It also refuses nesting deeper than
// MaxDepth (ErrTooDeep), so hostile input cannot exhaust the stack. A byte
// order mark is not JSON and is refused.
//
// The output has no whitespace; object members are sorted by the UTF-16 code
// units of their names; strings are written as ECMAScript's JSON.stringify
// writes them: \b \t \n \f \r \" \\ as two-character escapes, other control
// characters as \u00xx (lowercase hex), everything else (non-ASCII, '/',
// U+007F) as is, in UTF-8.
package canonjson
