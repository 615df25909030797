package fault

import "fmt"

// Fault is a start-up failure the device cannot provision through. The
// zero value means "no fault".
type Fault int

// Faults. Codes are F-<part>-<number>; a code, once shipped, keeps its
// meaning.
const (
	None            Fault = iota
	Settings              // the settings store cannot be opened or read
	AuditLog              // the security audit log cannot be opened or written
	TPMKeys               // the TPM or the device keys in it cannot be used
	Anchors               // the provisioning trust anchor cannot be read
	Engine                // the provisioning engine could not start
	Console               // the diagnostics console could not start
	Identity              // the device identity on the data partition cannot be read
	IdentityTooLong       // the manufacturing identity does not fit the pairing QR
	count
)

type info struct{ code, text string }

var infos = [count]info{
	None:            {"", ""},
	Settings:        {"F-SET-01", "Settings unreadable"},
	AuditLog:        {"F-AUD-01", "Audit log unavailable"},
	TPMKeys:         {"F-TPM-01", "TPM keys unavailable"},
	Anchors:         {"F-ANC-01", "Provisioning trust anchor unreadable"},
	Engine:          {"F-ENG-01", "Firmware start-up failed"},
	Console:         {"F-CON-01", "Diagnostics console failed to start"},
	Identity:        {"F-IDN-01", "Device identity unreadable"},
	IdentityTooLong: {"F-IDN-02", "Device identity too long for the QR"},
}

func (f Fault) info() info {
	if f < 0 || f >= count {
		return info{fmt.Sprintf("F-UNK-%02d", int(f)), "Unknown device fault"}
	}
	return infos[f]
}

// Code is the stable code to look up, e.g. "F-TPM-01" ("" for None).
func (f Fault) Code() string { return f.info().code }

// String is the short text the panel shows, e.g. "TPM keys unavailable".
func (f Fault) String() string { return f.info().text }

// All returns every fault, in code order of declaration.
func All() []Fault {
	all := make([]Fault, 0, count-1)
	for f := None + 1; f < count; f++ {
		all = append(all, f)
	}
	return all
}

// Error is a fault with its cause, for the log.
type Error struct {
	Fault Fault
	Err   error
}

// Wrap wraps err as fault f.
func Wrap(f Fault, err error) *Error { return &Error{Fault: f, Err: err} }

// Error reads "F-TPM-01 TPM keys unavailable: <cause>".
func (e *Error) Error() string {
	return fmt.Sprintf("%s %s: %v", e.Fault.Code(), e.Fault, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }
