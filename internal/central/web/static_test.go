package web

import (
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"os"
	"path"
	"regexp"
	"strings"
	"testing"

	"github.com/zmonitor/firmware/internal/testkit/vendored"
)

func TestVendoredFilesMatchTheirManifest(t *testing.T) {
	// What the app serves, and the decoders the comparison measured it
	// against (BenchmarkQRDecoders).
	for _, root := range []string{"static/vendor", "testdata/decoders"} {
		if err := vendored.Verify(root); err != nil {
			t.Error(err)
		}
	}
}

// vendorRef is a module's reference to a vendored file.
var vendorRef = regexp.MustCompile(`vendor/([^/'"]+@[^/'"]+)/([^'"]+)`)

// TestModulesReferenceVendoredFiles: every vendor/<package>@<version>/<file>
// a module of ours names is embedded, so a refresh to a new version that
// forgets a module fails here rather than in a technician's browser.
func TestModulesReferenceVendoredFiles(t *testing.T) {
	st := Static()
	mods, err := fs.Glob(st, "js/*.js")
	if err != nil || len(mods) == 0 {
		t.Fatalf("no modules in static/js (%v)", err)
	}
	refs := 0
	for _, m := range mods {
		src, err := fs.ReadFile(st, m)
		if err != nil {
			t.Fatal(err)
		}
		for _, ref := range vendorRef.FindAllStringSubmatch(string(src), -1) {
			refs++
			p := path.Join("vendor", ref[1], ref[2])
			if _, err := fs.Stat(st, p); err != nil {
				t.Errorf("%s names %s, which is not embedded: %v (scripts/vendor-web.sh vendors %s?)", m, p, err, ref[1])
			}
		}
	}
	if refs == 0 {
		t.Fatal("no module references a vendored file: the QR decoder is not wired")
	}
}

// TestDecoderGlueMatchesItsWasm: zxing-wasm's JavaScript records the sha256
// of the .wasm it was built with; a refresh that mixed versions would load
// a module whose exports do not match.
func TestDecoderGlueMatchesItsWasm(t *testing.T) {
	m, err := vendored.Load("static/vendor")
	if err != nil {
		t.Fatal(err)
	}
	p, ok := m.Package("zxing-wasm")
	if !ok {
		t.Fatal("zxing-wasm is not vendored")
	}
	wasm, err := os.ReadFile("static/vendor/" + p.Dir + "/reader/zxing_reader.wasm")
	if err != nil {
		t.Fatal(err)
	}
	glue, err := os.ReadFile("static/vendor/" + p.Dir + "/es/reader/index.js")
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(wasm)
	if !strings.Contains(string(glue), `"`+hex.EncodeToString(sum[:])+`"`) {
		t.Fatalf("es/reader/index.js does not name the sha256 of reader/zxing_reader.wasm (%x): glue and wasm come from different builds", sum)
	}
}

// TestStaticServesOnlyTheApp: the modules and the vendored packages are
// there, the manifest is not.
func TestStaticServesOnlyTheApp(t *testing.T) {
	st := Static()
	m, err := vendored.Load("static/vendor")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"js/qrdecode.js"}
	for _, p := range m.Packages {
		for _, f := range p.Files {
			want = append(want, path.Join("vendor", p.Dir, f.Path))
		}
	}
	for _, want := range want {
		if _, err := fs.Stat(st, want); err != nil {
			t.Errorf("%s is not served: %v", want, err)
		}
	}
	if _, err := fs.Stat(st, "vendor/vendor.json"); err == nil {
		t.Error("vendor/vendor.json is served: it is build metadata, not part of the app")
	}
}
