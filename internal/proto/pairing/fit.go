package pairing

import (
	"errors"
	"fmt"
	"strings"
)

// LongestIPv4 is the longest address a device on IPv4 can put in its QR:
// 15 bytes. CheckQRFits measures an identity against it.
const LongestIPv4 = "255.255.255.255"

// ErrQRTooLong is wrapped by CheckQRFits' error.
var ErrQRTooLong = errors.New("pairing QR too long")

// CheckQRFits reports whether a device with this ID, serial and firmware
// version can show its pairing QR wherever an IPv4 network puts it: the QR
// content with the longest IPv4 address (LongestIPv4) and the fixed-length
// fields (code, token, expiresAt) must be at most MaxQRBytes. Each name may
// be 32 bytes on its own (internal/proto/ident), but the three together
// with the address have only MaxQRBytes minus the fixed part: an identity
// that fails here could be set up, and could never pair. The firmware
// refuses it at manufacturing (first boot).
func CheckQRFits(deviceID, deviceSerial, firmwareVersion string) error {
	q := QRContent{
		DeviceID:        deviceID,
		DeviceSerial:    deviceSerial,
		IPAddress:       LongestIPv4,
		PairingCode:     "AAA-000-AAA",
		PairingToken:    strings.Repeat("A", TokenChars),
		ExpiresAt:       TimeLayout,
		FirmwareVersion: firmwareVersion,
	}
	n := len(q.Marshal())
	if n <= MaxQRBytes {
		return nil
	}
	names := len(deviceID) + len(deviceSerial) + len(firmwareVersion)
	return fmt.Errorf("%w: deviceId (%d bytes), deviceSerial (%d) and firmwareVersion (%d) make a %d-byte QR at the longest IPv4 address (%s), over the %d bytes a 240 px panel can show; the three may take at most %d bytes together",
		ErrQRTooLong, len(deviceID), len(deviceSerial), len(firmwareVersion), n, LongestIPv4, MaxQRBytes, names-(n-MaxQRBytes))
}
