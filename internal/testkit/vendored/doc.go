// Package vendored checks front-end files vendored from the npm registry by
// scripts/vendor-web.sh against the vendor.json the script writes next to
// them: every file is listed with the package, version and licence it came
// from and its sha256, every package carries its licence text, and nothing
// unlisted sits in the tree. Tests of the packages that embed such files
// call Verify, so a hand edit, a half-finished refresh or a stray file fails
// `make test`.
package vendored
