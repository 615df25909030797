package fault

import "fmt"

// Warning is a condition the device works through but a technician must
// see on the panel: unlike a Fault it does not stop provisioning. The zero
// value means "no warning". Codes are W-<part>-<number>; a code, once
// shipped, keeps its meaning.
type Warning int

// Warnings, most severe last (Worst picks the last one that applies).
const (
	NoWarning Warning = iota
	// DiskFull: the data partition filled up; the audit log went on in its
	// reserve, or has none left and records are being lost.
	DiskFull
	// AuditTampered: the audit log did not match its TPM anchor or its
	// chain (records deleted, changed or added); the damaged part was kept
	// aside and a new segment says what was found.
	AuditTampered
	warningCount
)

var warningInfos = [warningCount]info{
	NoWarning:     {"", ""},
	DiskFull:      {"W-DSK-01", "Data disk full"},
	AuditTampered: {"W-AUD-01", "Audit log tampered"},
}

func (w Warning) info() info {
	if w < 0 || w >= warningCount {
		return info{fmt.Sprintf("W-UNK-%02d", int(w)), "Unknown device warning"}
	}
	return warningInfos[w]
}

// Code is the stable code to look up, e.g. "W-AUD-01" ("" for NoWarning).
func (w Warning) Code() string { return w.info().code }

// String is the short text the panel shows, e.g. "Audit log tampered".
func (w Warning) String() string { return w.info().text }

// Panel is the line the panel shows under a state's screen, e.g. "Audit
// log tampered (W-AUD-01): contact biomedical engineering" ("" for
// NoWarning).
func (w Warning) Panel() string {
	if w == NoWarning {
		return ""
	}
	return w.String() + " (" + w.Code() + "): contact biomedical engineering"
}

// AllWarnings returns every warning, in order of declaration.
func AllWarnings() []Warning {
	all := make([]Warning, 0, warningCount-1)
	for w := NoWarning + 1; w < warningCount; w++ {
		all = append(all, w)
	}
	return all
}

// Worst returns the most severe of ws (NoWarning for none).
func Worst(ws ...Warning) Warning {
	worst := NoWarning
	for _, w := range ws {
		if w > worst {
			worst = w
		}
	}
	return worst
}
