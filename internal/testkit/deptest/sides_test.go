package deptest

import (
	"sort"
	"strings"
	"testing"
)

const module = "github.com/zmonitor/firmware"

// side is a part of the tree and what it must not import.
type side struct {
	name   string
	under  []string // package prefixes (module-relative) that make up the side
	refuse []Rule
}

func rel(p string) string { return strings.TrimPrefix(strings.TrimPrefix(p, module), "/") }

func under(prefixes ...string) func(string) bool {
	return func(p string) bool {
		r := rel(p)
		if r == p { // not a module package
			return false
		}
		for _, pre := range prefixes {
			if r == pre || strings.HasPrefix(r, pre+"/") {
				return true
			}
		}
		return false
	}
}

// hostOnly is what neither the firmware nor the protocol may import.
var hostOnly = []Rule{
	{under("internal/central"), "Central Station code runs on the hospital's servers, not in the device or the shared protocol"},
	{under("internal/tablet"), "the technician's tablet client is host code"},
	{under("internal/testkit"), "test support is never linked into shipped code"},
	{under("image", "qemu", "cmd"), "build tools, the QEMU board and commands are not libraries of the firmware or the protocol"},
}

var sides = []side{
	{
		name:  "firmware (internal/fw, drivers, board)",
		under: []string{"internal/fw", "drivers", "board"},
		refuse: append([]Rule{
			{under("internal/e2e"), "end-to-end tests are not code"},
		}, hostOnly...),
	},
	{
		name:  "protocol (internal/proto)",
		under: []string{"internal/proto"},
		refuse: append([]Rule{
			{under("internal/fw", "drivers", "board"), "the protocol is spoken by both ends: it must not depend on the firmware's side"},
		}, hostOnly...),
	},
	{
		name:  "side-neutral building blocks (internal/base)",
		under: []string{"internal/base"},
		refuse: []Rule{
			{Match: func(p string) bool { return rel(p) != p }, Reason: "internal/base is the bottom of the tree: it imports only the standard library"},
		},
	},
	{
		name:  "Central Station (internal/central)",
		under: []string{"internal/central"},
		refuse: []Rule{
			{under("internal/fw", "drivers", "board"), "the host speaks to a device through internal/proto, never through the firmware's own packages"},
			{under("internal/tablet"), "the Central Station serves the tablet API; it does not use the tablet's client"},
			{under("internal/testkit"), "test support is never linked into shipped code"},
		},
	},
	{
		name:  "tablet client (internal/tablet)",
		under: []string{"internal/tablet"},
		refuse: []Rule{
			{under("internal/fw", "drivers", "board"), "the host speaks to a device through internal/proto, never through the firmware's own packages"},
			{under("internal/central"), "the tablet speaks to the Central Station through internal/proto/tabletwire; zm-pair must not link the server and its databases"},
			{under("internal/testkit"), "test support is never linked into shipped code"},
		},
	},
}

// TestSidesImportOnlyWhatTheyMay checks the direct imports of every
// package in the module against the side it belongs to.
func TestSidesImportOnlyWhatTheyMay(t *testing.T) {
	pkgs, err := Direct(".", module+"/...")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for p := range pkgs {
		names = append(names, p)
	}
	sort.Strings(names)
	checked := map[string]int{}
	for _, s := range sides {
		in := under(s.under...)
		for _, p := range names {
			if !in(p) || isFakePackage(p) {
				continue
			}
			checked[s.name]++
			for _, imp := range pkgs[p] {
				for _, r := range s.refuse {
					if r.Match(imp) {
						t.Errorf("%s (%s) imports %s: %s", rel(p), s.name, rel(imp), r.Reason)
						break
					}
				}
			}
		}
	}
	for _, s := range sides {
		if checked[s.name] == 0 {
			t.Errorf("no package of %s was checked: the layout changed, update the sides", s.name)
		}
	}
}

// isFakePackage reports whether p is a hand-written fake next to the real
// thing (an xxxtest package, such as internal/base/clock/clocktest): those
// serve tests of both sides and may import test support.
func isFakePackage(p string) bool {
	last := p[strings.LastIndex(p, "/")+1:]
	return strings.HasSuffix(last, "test")
}
