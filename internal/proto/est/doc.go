// Package est is the part of EST (Enrollment over Secure Transport, RFC
// 7030) both ends speak: the paths, the media types and the bodies of
// simple re-enrollment (§4.2.2) and of the CA certificates request
// (§4.1), so that a monitor can renew its client certificate at the
// Central Station or at any EST server a hospital runs.
//
// Bodies are base64 (RFC 7030 §4: Content-Transfer-Encoding base64; line
// breaks allowed) of DER: a PKCS#10 certification request going in, a
// PKCS#7 (CMS) SignedData with certificates only ("certs-only", RFC 5751
// §3.6) coming back. The PKCS#7 structure is read and written by
// github.com/smallstep/pkcs7, not by hand.
//
// The decoders take bytes from the network: each has a size limit, refuses
// trailing data and answers with an error, never a panic (FuzzDecodeCerts,
// FuzzDecodeCSR).
package est
