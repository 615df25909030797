package fault

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

var warningRE = regexp.MustCompile(`^W-[A-Z]{3}-[0-9]{2}$`)

func TestWarningCodesAreStableAndUnique(t *testing.T) {
	seen := map[string]Warning{}
	for _, w := range AllWarnings() {
		if !warningRE.MatchString(w.Code()) || w.String() == "" {
			t.Errorf("warning %d: code %q, text %q", int(w), w.Code(), w.String())
		}
		if prev, dup := seen[w.Code()]; dup {
			t.Errorf("%s used by %d and %d", w.Code(), int(prev), int(w))
		}
		seen[w.Code()] = w
	}
	for w, code := range map[Warning]string{DiskFull: "W-DSK-01", AuditTampered: "W-AUD-01"} {
		if w.Code() != code {
			t.Errorf("%v is %s, was %s", w, w.Code(), code)
		}
	}
	if NoWarning.Panel() != "" || Warning(42).Code() != "W-UNK-42" {
		t.Errorf("NoWarning panel %q, unknown %q", NoWarning.Panel(), Warning(42).Code())
	}
	if got := AuditTampered.Panel(); got != "Audit log tampered (W-AUD-01): contact biomedical engineering" {
		t.Errorf("panel line %q", got)
	}
}

func TestWorstWarning(t *testing.T) {
	if got := Worst(); got != NoWarning {
		t.Errorf("Worst() = %v", got)
	}
	if got := Worst(AuditTampered, DiskFull, NoWarning); got != AuditTampered {
		t.Errorf("Worst(tampered, disk full) = %v", got)
	}
	if got := Worst(NoWarning, DiskFull); got != DiskFull {
		t.Errorf("Worst(none, disk full) = %v", got)
	}
}

// TestWarningsDocumented: docs/screens.md lists every warning's code.
func TestWarningsDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../../docs/screens.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range AllWarnings() {
		row := "| `" + w.Code() + "` | " + w.String() + " |"
		if !strings.Contains(string(doc), row) {
			t.Errorf("docs/screens.md has no row starting %q", row)
		}
	}
}
