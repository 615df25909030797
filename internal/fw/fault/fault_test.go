package fault

import (
	"errors"
	"os"
	"regexp"
	"strings"
	"testing"
)

var codeRE = regexp.MustCompile(`^F-[A-Z]{3}-[0-9]{2}$`)

func TestCodesAreStableAndUnique(t *testing.T) {
	seen := map[string]Fault{}
	for _, f := range All() {
		if !codeRE.MatchString(f.Code()) || f.String() == "" {
			t.Errorf("fault %d: code %q, text %q", int(f), f.Code(), f.String())
		}
		if prev, dup := seen[f.Code()]; dup {
			t.Errorf("%s used by %d and %d", f.Code(), int(prev), int(f))
		}
		seen[f.Code()] = f
	}
	if None.Code() != "" || len(All()) != int(count)-1 {
		t.Errorf("None %q, %d faults", None.Code(), len(All()))
	}
	if got := Fault(99).Code(); got != "F-UNK-99" {
		t.Errorf("unknown fault: %q", got)
	}
	// The codes are a promise to the field: these must not change.
	for f, code := range map[Fault]string{Settings: "F-SET-01", AuditLog: "F-AUD-01", TPMKeys: "F-TPM-01", Anchors: "F-ANC-01", Engine: "F-ENG-01", Console: "F-CON-01", Identity: "F-IDN-01"} {
		if f.Code() != code {
			t.Errorf("%v is %s, was %s", f, f.Code(), code)
		}
	}
}

func TestError(t *testing.T) {
	cause := errors.New("keys: TPM not answering")
	err := error(Wrap(TPMKeys, cause))
	if err.Error() != "F-TPM-01 TPM keys unavailable: keys: TPM not answering" || !errors.Is(err, cause) {
		t.Errorf("%v", err)
	}
	var fe *Error
	if !errors.As(err, &fe) || fe.Fault != TPMKeys {
		t.Errorf("As: %v", fe)
	}
}

// TestDocumented: docs/screens.md lists every code with its text, so a
// technician who reads one on the panel can look it up.
func TestDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../../docs/screens.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range All() {
		row := "| `" + f.Code() + "` | " + f.String() + " |"
		if !strings.Contains(string(doc), row) {
			t.Errorf("docs/screens.md has no row starting %q", row)
		}
	}
}
