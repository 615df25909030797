package screen

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"time"

	"github.com/zmonitor/firmware/internal/fw/fault"
	"github.com/zmonitor/firmware/internal/proto/failure"
	"github.com/zmonitor/firmware/internal/proto/pairing"
	"github.com/zmonitor/firmware/internal/proto/state"
)

// View is everything a screen shows. The engine fills in what the current
// state needs; other fields are ignored.
type View struct {
	State state.State

	DeviceID        string // e.g. "ZM-001"
	DeviceLabel     string // e.g. "ICU-MON-04"; up to 32 characters
	DeviceSerial    string // e.g. "SN-2024-001234"
	FirmwareVersion string // e.g. "1.2.3"

	// QRText is the pairing QR's JSON (READY_TO_PAIR only; required there).
	QRText []byte
	// PairingCode is the code shown next to the QR, "AAA-999-AAA".
	PairingCode string
	// IPAddress is the device's address (UNPROVISIONED, READY_TO_PAIR).
	IPAddress string
	// Remaining is the pairing session's time left (READY_TO_PAIR). A change
	// of Remaining alone redraws only the countdown.
	Remaining time.Duration

	// Progress names the current step of PAIRING_RECEIVED, APPLYING_CONFIG
	// or TESTING_CONNECTION, e.g. "Verifying signature".
	Progress string

	// Failure is why provisioning failed (PROVISIONING_FAILED): the screen
	// shows Failure.Title() and Failure.UserAction().
	Failure failure.Code
	// FailureDetail is optional short, non-secret text for the engineer.
	FailureDetail string
	// ServerHost is the monitoring server (PROVISIONED), e.g.
	// "monitoring.hospital.com".
	ServerHost string
	// Notice is a warning under a PROVISIONED screen's server, in red:
	// what is wrong with the device's working configuration and who to
	// call (its certificate expires soon and renewal keeps failing, it was
	// revoked). Short, non-secret; "" for none.
	Notice string

	// Locked is how long provisioning stays locked after too many wrong
	// pairing codes; 0 when not locked. UNPROVISIONED shows "Provisioning
	// locked: too many wrong codes. Try again in m:ss". PROVISIONING_FAILED
	// with Locked > 0 is the screen of the wrong code that locked the
	// device: "Too many wrong codes. Provisioning locked for m:ss", and when
	// to press, instead of the failure's user action. The engine sets it in
	// both states while the lockout lasts. A change of Locked alone (while it
	// stays non-zero) redraws only the countdown.
	Locked time.Duration

	// SessionExpired (UNPROVISIONED) says the last pairing session ran out
	// before a configuration arrived: the screen says "Pairing code expired"
	// and "Press Enable Provisioning for a new code" instead of the plain
	// prompt. The engine sets it on UNPROVISIONED entered by the session's
	// expiry and clears it when it leaves that state. A lockout (Locked)
	// takes precedence on the screen.
	SessionExpired bool

	// Warning, when not fault.NoWarning, is shown in a red bar across the
	// bottom of every state's screen but the pairing screen (whose room is
	// the QR's) and a fault screen (which says only the fault): the device works, but a technician must call biomedical
	// engineering (the audit log was tampered with, the data disk is
	// full). The engine sets it from what the device reports.
	Warning fault.Warning

	// Fault, when not fault.None, replaces the state's screen with a device
	// fault: the firmware could not start (a TPM, disk or settings failure)
	// and cannot provision. The screen names what failed and shows the
	// fault's code (F-TPM-01 ...), which docs/screens.md explains.
	Fault fault.Fault
}

// sameScreen reports whether a and b draw the same screen apart from the
// countdown text.
func sameScreen(a, b View) bool {
	return a.State == b.State && a.DeviceID == b.DeviceID && a.DeviceLabel == b.DeviceLabel &&
		a.DeviceSerial == b.DeviceSerial && a.FirmwareVersion == b.FirmwareVersion &&
		bytes.Equal(a.QRText, b.QRText) && a.PairingCode == b.PairingCode && a.IPAddress == b.IPAddress &&
		a.Progress == b.Progress && a.Failure == b.Failure && a.FailureDetail == b.FailureDetail &&
		a.ServerHost == b.ServerHost && (a.Locked > 0) == (b.Locked > 0) && a.Fault == b.Fault &&
		a.SessionExpired == b.SessionExpired && a.Notice == b.Notice &&
		a.Warning == b.Warning
}

// timerText is the countdown the view shows ("" when the state shows none).
func (v View) timerText() string {
	switch {
	case v.Fault != fault.None:
		return ""
	case v.State == state.ReadyToPair:
		return FormatCountdown(v.Remaining)
	case (v.State == state.Unprovisioned || v.State == state.Decommissioned || v.State == state.ProvisioningFailed) && v.Locked > 0:
		return FormatCountdown(v.Locked)
	}
	return ""
}

// FormatCountdown formats d as m:ss, rounding up to the next second so that
// "0:00" shows only when the time is really over. It never shows more than
// 99:59 and never less than 0:00.
func FormatCountdown(d time.Duration) string {
	s := int64((d + time.Second - 1) / time.Second)
	s = max(0, min(s, 99*60+59))
	return fmt.Sprintf("%d:%02d", s/60, s%60)
}

// timerTemplate is the widest countdown text; its box is reserved so that a
// tick never needs more room than the first frame had.
const timerTemplate = "88:88"

// SampleView returns a realistic view of state s, for `zmonitor render`, the
// documentation and the tests: the spec's example device, a pairing code with
// a valid check letter and a QR JSON of the real shape (the token has the
// real length but is not a real signature).
func SampleView(s state.State) View {
	v := View{
		State:           s,
		DeviceID:        "ZM-001",
		DeviceLabel:     "ICU-MON-04",
		DeviceSerial:    "SN-2024-001234",
		FirmwareVersion: "1.2.3",
		IPAddress:       "192.168.1.100",
	}
	switch s {
	case state.ReadyToPair:
		code, err := pairing.NewCode(&sampleRand{})
		if err != nil {
			code = "ABC-123-XYW"
		}
		v.PairingCode = code.Display()
		v.QRText = pairing.QRContent{
			DeviceID:        v.DeviceID,
			DeviceSerial:    v.DeviceSerial,
			IPAddress:       v.IPAddress,
			PairingCode:     v.PairingCode,
			PairingToken:    sampleToken(),
			ExpiresAt:       "2024-11-25T14:30:00Z",
			FirmwareVersion: v.FirmwareVersion,
		}.Marshal()
		v.Remaining = 9*time.Minute + 59*time.Second
	case state.PairingReceived:
		v.Progress = "Verifying signature"
	case state.ApplyingConfig:
		v.Progress = "Installing certificates"
	case state.TestingConnection:
		v.Progress = "Contacting server"
	case state.Provisioned:
		v.ServerHost = "monitoring.hospital.com"
	case state.ProvisioningFailed:
		v.Failure = failure.ConnectionFailed
		v.FailureDetail = "TLS handshake timed out"
	}
	return v
}

// sampleToken has the shape of a real pairing token: base64url without
// padding of a nonce and a 64-byte signature (pairing.TokenChars long).
func sampleToken() string {
	var b []byte
	for i := byte(0); len(b) < pairing.TokenBytes; i++ {
		h := sha256.Sum256([]byte{'z', 'm', i})
		b = append(b, h[:]...)
	}
	return base64.RawURLEncoding.EncodeToString(b[:pairing.TokenBytes])
}

// sampleRand is a deterministic byte source for the sample pairing code.
type sampleRand struct{ n byte }

func (r *sampleRand) Read(p []byte) (int, error) {
	for i := range p {
		h := sha256.Sum256([]byte{'c', r.n})
		p[i] = h[0]
		r.n++
	}
	return len(p), nil
}
