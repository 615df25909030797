package web

import (
	"embed"
	"io/fs"
)

// files: the web app's modules and the vendored packages (each in a
// name@version directory; the manifest, vendor.json, is not served).
//
//go:embed static/css static/js static/vendor/*@*
var files embed.FS

// Static returns the files the web app serves, rooted at static/: js/...
// and vendor/<package>@<version>/... . Vendored paths carry their version,
// so they can be served with a long cache lifetime.
func Static() fs.FS {
	sub, err := fs.Sub(files, "static")
	if err != nil {
		panic(err) // "static" is a valid path: fs.Sub fails only on invalid ones
	}
	return sub
}

// ContentSecurityPolicy is the policy the web app's pages are served with,
// and under which its static files are tested: no inline script or style,
// nothing from another origin. 'wasm-unsafe-eval' lets the page compile the
// QR decoder's WebAssembly (it allows WebAssembly compilation, not eval).
const ContentSecurityPolicy = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; img-src 'self'; connect-src 'self'; worker-src 'none'; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
