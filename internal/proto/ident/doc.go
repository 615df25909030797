// Package ident is the one rule for the names a Z Monitor carries through
// provisioning: its device ID, its serial, its label and its firmware
// version. The device checks them at manufacturing (first boot), in the
// pairing QR, in the enrollment record, in the pushed payload and in its
// settings; the Central Station checks them when it imports enrollment
// records, labels a device and accepts a tablet's request; the tablet checks
// them before it sends anything. All of them call this package, so a name one
// end accepts is never refused by the other.
//
// # Device ID, serial and firmware version
//
// 1 to 32 bytes of A-Z a-z 0-9 . _ - (a firmware version may also hold +,
// as in semantic versions' build metadata), the first a letter or a digit:
//
//	^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$      device ID, serial
//	^[A-Za-z0-9][A-Za-z0-9._+-]{0,31}$     firmware version
//
// The limits come from the pairing QR: its fixed part takes 248 bytes, so
// the spec's example (ZM-001, SN-2024-001234, 192.168.1.100, 1.2.3; 38
// bytes) is 286 bytes, QR version 12 (287 bytes at level M), as DESIGN.md
// section 4 asks; longer names go to version 13, which still fits a 240 px
// panel, and pairing.MaxQRBytes refuses anything longer. The alphabet needs
// no escaping in JSON, CSV, a URL path, a log line or an X.509 common name,
// and a first letter or digit keeps a name from reading as a command-line
// flag ("-x") or a relative path ("." or ".."). The enrollment record and
// the settings once allowed 64 bytes; no device could ever have used them,
// because the firmware refused such an identity at manufacturing.
//
// # Label
//
// The device label (deviceLabel, "ICU-MON-04") is for people: 0 to 64
// bytes of valid UTF-8 whose every character is printable (unicode.IsPrint:
// letters, marks, numbers, punctuation, symbols and the ASCII space), and
// not U+FFFD, which only ever stands for something lost in transcoding.
// Empty means no label.
//
// No regexp: this package is linked into the firmware, which does without
// package regexp (cmd/zmonitor/deps_test.go).
package ident
