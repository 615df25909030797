package deptest

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strings"
)

// Graph is the import graph of a package and everything it links: for each
// package, the packages it imports directly.
type Graph struct {
	Root    string
	Imports map[string][]string
}

// Load lists the dependencies of pkg (a pattern go list accepts, such as
// ./cmd/zmonitor) as built for goos/goarch with cgo off and the build tags
// given (the firmware's: zmfirmware). dir is where go list runs (any
// directory of the module). Test files are not included: what is pinned is
// what ships.
func Load(dir, pkg, goos, goarch string, tags ...string) (*Graph, error) {
	args := []string{"list", "-deps", "-f", "{{.ImportPath}} {{join .Imports \" \"}}"}
	if len(tags) > 0 {
		args = append(args, "-tags", strings.Join(tags, ","))
	}
	cmd := exec.Command("go", append(args, pkg)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOOS="+goos, "GOARCH="+goarch, "CGO_ENABLED=0", "GOFLAGS=-mod=mod")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list -deps %s (%s/%s, tags %q): %w: %s", pkg, goos, goarch, tags, err, stderr.String())
	}
	g := &Graph{Imports: map[string][]string{}}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		g.Imports[f[0]] = f[1:]
		g.Root = f[0] // go list -deps prints the root last
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("go list -deps %s: %w", pkg, err)
	}
	if g.Root == "" {
		return nil, fmt.Errorf("go list -deps %s: no packages", pkg)
	}
	return g, nil
}

// Packages returns every package in the graph, sorted.
func (g *Graph) Packages() []string {
	var ps []string
	for p := range g.Imports {
		ps = append(ps, p)
	}
	sort.Strings(ps)
	return ps
}

// Path returns a chain of imports from the root to pkg (root first), or nil
// if pkg is not linked.
func (g *Graph) Path(pkg string) []string {
	prev := map[string]string{g.Root: ""}
	queue := []string{g.Root}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if p == pkg {
			var chain []string
			for q := p; q != ""; q = prev[q] {
				chain = append([]string{q}, chain...)
			}
			return chain
		}
		for _, i := range g.Imports[p] {
			if _, seen := prev[i]; !seen {
				prev[i] = p
				queue = append(queue, i)
			}
		}
	}
	return nil
}

// Rule refuses the packages it matches, for a reason.
type Rule struct {
	// Match reports whether a package path falls under the rule.
	Match func(pkg string) bool
	// Reason says why such a package must not be linked.
	Reason string
}

// Exact matches one package.
func Exact(pkg string) func(string) bool {
	return func(p string) bool { return p == pkg }
}

// Under matches a package and every package below it.
func Under(prefix string) func(string) bool {
	return func(p string) bool { return p == prefix || strings.HasPrefix(p, prefix+"/") }
}

// Violation is a linked package a rule refuses.
type Violation struct {
	Package string
	Reason  string
	Chain   []string // how the root reaches it
}

func (v Violation) String() string {
	return fmt.Sprintf("%s must not be linked: %s (imported via %s)", v.Package, v.Reason, strings.Join(v.Chain, " → "))
}

// Check returns every linked package that a rule refuses (the first
// matching rule gives the reason).
func (g *Graph) Check(rules []Rule) []Violation {
	var vs []Violation
	for _, p := range g.Packages() {
		for _, r := range rules {
			if r.Match(p) {
				vs = append(vs, Violation{Package: p, Reason: r.Reason, Chain: g.Path(p)})
				break
			}
		}
	}
	return vs
}

// Direct lists the direct (non-test) imports of every package matching
// pattern (such as ./...), as built for the host.
func Direct(dir, pattern string) (map[string][]string, error) {
	cmd := exec.Command("go", "list", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", pattern)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list %s: %w: %s", pattern, err, stderr.String())
	}
	m := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			m[f[0]] = f[1:]
		}
	}
	return m, nil
}
