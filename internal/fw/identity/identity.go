package identity

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/zmonitor/firmware/internal/proto/ident"
)

// FileName is the identity's file in the data directory.
const FileName = "identity.json"

// Identity is who the device is: set at manufacturing (first boot) and kept
// on the data partition.
type Identity struct {
	DeviceID     string `json:"deviceId"`
	DeviceSerial string `json:"deviceSerial"`
}

// validID reports whether s is a valid device ID or serial: the rule of
// internal/proto/ident (1-32 of A-Z a-z 0-9 . _ -, starting with a letter
// or digit).
func validID(s string) bool {
	return ident.CheckDeviceID(s) == nil
}

// Validate checks both fields against the device-ID rule.
func (i Identity) Validate() error {
	if !validID(i.DeviceID) || !validID(i.DeviceSerial) {
		return fmt.Errorf("device identity: deviceId %q and deviceSerial %q must be 1-32 of A-Z a-z 0-9 . _ -", i.DeviceID, i.DeviceSerial)
	}
	return nil
}

// Load returns the identity kept in dataDir, or, on the first boot, stores
// the one given (manufacturing) and reports firstBoot. A stored identity is
// never replaced: later boots keep it whatever given says.
func Load(dataDir string, given Identity) (id Identity, firstBoot bool, err error) {
	path := filepath.Join(dataDir, FileName)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		if err := given.Validate(); err != nil {
			return Identity{}, false, fmt.Errorf("first boot: %w", err)
		}
		raw, _ := json.Marshal(given) // two strings: cannot fail
		if err := writeFileSync(path, raw); err != nil {
			return Identity{}, false, fmt.Errorf("first boot: store identity: %w", err)
		}
		return given, true, nil
	}
	if err != nil {
		return Identity{}, false, fmt.Errorf("read identity: %w", err)
	}
	if err := json.Unmarshal(b, &id); err != nil {
		return Identity{}, false, fmt.Errorf("read identity %s: %w", path, err)
	}
	if err := id.Validate(); err != nil {
		return Identity{}, false, fmt.Errorf("read identity %s: %w", path, err)
	}
	return id, false, nil
}
