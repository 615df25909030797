// Package web holds what the Central Station's web app serves as files: its
// ES modules (static/js) and the front-end packages vendored from the npm
// registry (static/vendor, written by scripts/vendor-web.sh with a
// vendor.json of versions, licences and checksums). Everything is embedded
// in zm-central; nothing is fetched from elsewhere at build or run time,
// the QR decoder's WebAssembly included.
//
// Static returns the files to serve; ContentSecurityPolicy is the policy
// they are tested under. See docs/web-app.md.
package web
