package identity

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/zmonitor/firmware/internal/proto/ident"
	"github.com/zmonitor/firmware/internal/proto/pairing"
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

// ErrTooLongForQR is wrapped by Load's error on a first boot whose identity
// the pairing QR cannot carry (pairing.CheckQRFits).
var ErrTooLongForQR = errors.New("device identity too long for the pairing QR")

// Load returns the identity kept in dataDir, or, on the first boot, stores
// the one given (manufacturing) and reports firstBoot. A stored identity is
// never replaced: later boots keep it whatever given says.
//
// On the first boot the given identity must also fit the pairing QR with
// firmwareVersion at the longest IPv4 address (pairing.CheckQRFits): a
// device that could be set up but never pair is refused at manufacturing,
// where the line can still change its names, and nothing is stored. Later
// boots do not check it: a provisioned monitor keeps working whatever a
// firmware update made of its QR.
func Load(dataDir string, given Identity, firmwareVersion string) (id Identity, firstBoot bool, err error) {
	path := filepath.Join(dataDir, FileName)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		if err := given.Validate(); err != nil {
			return Identity{}, false, fmt.Errorf("first boot: %w", err)
		}
		if err := pairing.CheckQRFits(given.DeviceID, given.DeviceSerial, firmwareVersion); err != nil {
			return Identity{}, false, fmt.Errorf("first boot: %w: %w", ErrTooLongForQR, err)
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
