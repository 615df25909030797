package browser

import (
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"path"
	"strings"

	"github.com/chromedp/chromedp"
)

// vendorFS holds axe-core as scripts/vendor-web.sh vendored it (see
// vendor/vendor.json).
//
//go:embed vendor
var vendorFS embed.FS

// axeSource returns axe.min.js from the vendored tree, wherever the
// manifest says its version lives.
func axeSource() (string, error) {
	b, err := vendorFS.ReadFile("vendor/vendor.json")
	if err != nil {
		return "", fmt.Errorf("axe: %w", err)
	}
	var m struct {
		Packages []struct{ Name, Dir string }
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return "", fmt.Errorf("axe: vendor.json: %w", err)
	}
	for _, p := range m.Packages {
		if p.Name == "axe-core" {
			src, err := vendorFS.ReadFile(path.Join("vendor", p.Dir, "axe.min.js"))
			if err != nil {
				return "", fmt.Errorf("axe: %w", err)
			}
			return string(src), nil
		}
	}
	return "", fmt.Errorf("axe: axe-core is not in vendor/vendor.json (scripts/vendor-web.sh)")
}

// AxeViolation is a rule axe-core found broken, with the elements that
// break it.
type AxeViolation struct {
	ID      string    `json:"id"`
	Impact  string    `json:"impact"` // minor, moderate, serious, critical
	Help    string    `json:"help"`
	HelpURL string    `json:"helpUrl"`
	Nodes   []AxeNode `json:"nodes"`
}

// AxeNode is one element that breaks a rule.
type AxeNode struct {
	Target  string `json:"target"`  // CSS selector
	Summary string `json:"summary"` // what to fix
}

func (v AxeViolation) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s (%s): %s", v.ID, v.Impact, v.Help)
	for _, n := range v.Nodes {
		fmt.Fprintf(&b, "\n\t%s: %s", n.Target, strings.ReplaceAll(n.Summary, "\n", " "))
	}
	return b.String()
}

// axeRun runs every axe-core rule on the document and keeps the serious
// and critical violations.
const axeRun = `axe.run(document, {resultTypes: ['violations']}).then(r => r.violations
	.filter(v => v.impact === 'serious' || v.impact === 'critical')
	.map(v => ({id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl,
		nodes: v.nodes.map(n => ({target: n.target.join(' '), summary: n.failureSummary || ''}))})))`

// Axe runs axe-core (vendored) on the page open in ctx and returns its
// serious and critical violations: none means the page passes. The script
// is injected through DevTools, so the page's Content-Security-Policy does
// not have to allow it.
func Axe(ctx context.Context) ([]AxeViolation, error) {
	loaded, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`typeof window.axe === 'object'`))
	if err != nil {
		return nil, fmt.Errorf("axe: %w", err)
	}
	if !loaded {
		src, err := axeSource()
		if err != nil {
			return nil, err
		}
		if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](src)); err != nil {
			return nil, fmt.Errorf("axe: inject: %w", err)
		}
	}
	vs, err := chromedp.Run(ctx, chromedp.Evaluate[[]AxeViolation](axeRun, chromedp.EvalAwaitPromise))
	if err != nil {
		return nil, fmt.Errorf("axe: run: %w", err)
	}
	return vs, nil
}
