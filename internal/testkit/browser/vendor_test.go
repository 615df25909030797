package browser

import (
	"strings"
	"testing"

	"github.com/zmonitor/firmware/internal/testkit/vendored"
)

func TestVendoredAxeMatchesItsManifest(t *testing.T) {
	if err := vendored.Verify("vendor"); err != nil {
		t.Fatal(err)
	}
	src, err := axeSource()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(src[:min(len(src), 200)], "axe") {
		t.Fatalf("axe.min.js does not start like axe-core: %q", src[:min(len(src), 80)])
	}
}
