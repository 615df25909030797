package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/zmonitor/firmware/internal/central/job"
	"github.com/zmonitor/firmware/internal/central/store"
	"github.com/zmonitor/firmware/internal/proto/ident"
	"github.com/zmonitor/firmware/internal/proto/pairing"
	"github.com/zmonitor/firmware/internal/proto/tabletwire"
)

// checked is a request that passed every check that changes nothing.
type checked struct {
	job    job.Job
	method store.Method
	nonce  []byte // QR path
}

// check validates req without claiming anything. deviceID is the device the
// request names, as far as it could be read (for the record).
func (s *Server) check(ctx context.Context, req tabletwire.PairingRequest) (c checked, deviceID string, err error) {
	if err := ident.CheckLabel(req.Label); err != nil {
		return c, "", refuse(BadRequest, "label: %v", err)
	}
	if req.QR != "" {
		if req.DeviceID != "" || req.Address != "" || req.PairingCode != "" {
			return c, "", refuse(BadRequest, "give either qr, or deviceId, address and pairingCode")
		}
		return s.checkQR(ctx, req)
	}
	if req.DeviceID == "" || req.Address == "" || req.PairingCode == "" {
		return c, req.DeviceID, refuse(BadRequest, "give either qr, or deviceId, address and pairingCode")
	}
	return s.checkManual(ctx, req)
}

func (s *Server) device(ctx context.Context, id string) (store.Device, error) {
	d, err := s.st.Device(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return d, refuse(DeviceUnknown, "device %s is not in the inventory", id)
	case err != nil:
		return d, fmt.Errorf("look up device: %w", err)
	case d.Revoked():
		return d, refuse(DeviceRevoked, "device %s was revoked on %s", id, d.RevokedAt.Format(time.RFC3339))
	}
	return d, nil
}

func (s *Server) checkQR(ctx context.Context, req tabletwire.PairingRequest) (checked, string, error) {
	q, err := pairing.ParseQR([]byte(req.QR))
	if err != nil {
		if errors.Is(err, pairing.ErrTokenMalformed) {
			return checked{}, q.DeviceID, refuse(TokenMalformed, "%v", err)
		}
		return checked{}, "", refuse(QRInvalid, "%v", err)
	}
	d, err := s.device(ctx, q.DeviceID)
	if err != nil {
		return checked{}, q.DeviceID, err
	}
	if q.DeviceSerial != d.Serial {
		return checked{}, q.DeviceID, refuse(QRInvalid, "the QR's serial %s is not the inventory's %s for device %s", q.DeviceSerial, d.Serial, d.ID)
	}
	idKey, err := d.IdentityKey()
	if err != nil {
		return checked{}, q.DeviceID, fmt.Errorf("inventory identity key of %s: %w", d.ID, err)
	}
	nonce, err := pairing.VerifyToken(idKey, q)
	switch {
	case errors.Is(err, pairing.ErrTokenSignature):
		return checked{}, q.DeviceID, refuse(TokenSignatureInvalid, "the pairing token is not signed by the identity key enrolled for %s", d.ID)
	case err != nil:
		return checked{}, q.DeviceID, refuse(TokenMalformed, "%v", err)
	}
	if s.cfg.TrustDeviceClock {
		exp, err := time.Parse(pairing.TimeLayout, q.ExpiresAt)
		if err != nil {
			return checked{}, q.DeviceID, refuse(QRInvalid, "expiresAt: %v", err)
		}
		if now := s.cfg.Clock.Now(); !now.Before(exp) {
			return checked{}, q.DeviceID, refuse(QRExpired, "the QR expired at %s (now %s)", q.ExpiresAt, now.UTC().Format(pairing.TimeLayout))
		}
	}
	label := req.Label
	if label == "" {
		label = d.Label
	}
	// The QR's expiry says why a closed port is closed (session expired),
	// whether or not it is binding here.
	expires, _ := time.Parse(pairing.TimeLayout, q.ExpiresAt)
	return checked{
		job: job.Job{
			DeviceID:    d.ID,
			ExpiresAt:   expires,
			Address:     s.cfg.DeviceAddr(d.ID, q.IPAddress),
			IdentityKey: idKey,
			Token:       q.PairingToken,
			PairingCode: q.PairingCode,
			Label:       label,
		},
		method: store.MethodQR,
		nonce:  nonce[:],
	}, d.ID, nil
}

func (s *Server) checkManual(ctx context.Context, req tabletwire.PairingRequest) (checked, string, error) {
	if err := ident.CheckDeviceID(req.DeviceID); err != nil {
		return checked{}, "", refuse(DeviceUnknown, "not a device ID: %v", err)
	}
	// The code's syntax first: a typo must not cost the device an attempt.
	code, err := pairing.ParseCode(req.PairingCode)
	if err != nil {
		return checked{}, req.DeviceID, refuse(CodeInvalid, "%s", codeProblem(err))
	}
	addr, err := deviceAddress(req.Address, s.cfg.DevicePort)
	if err != nil {
		return checked{}, req.DeviceID, refuse(AddressInvalid, "%v", err)
	}
	d, err := s.device(ctx, req.DeviceID)
	if err != nil {
		return checked{}, req.DeviceID, err
	}
	idKey, err := d.IdentityKey()
	if err != nil {
		return checked{}, d.ID, fmt.Errorf("inventory identity key of %s: %w", d.ID, err)
	}
	label := req.Label
	if label == "" {
		label = d.Label
	}
	return checked{
		job: job.Job{
			DeviceID:    d.ID,
			Address:     addr,
			IdentityKey: idKey,
			PairingCode: code.Display(),
			Label:       label,
		},
		method: store.MethodManual,
	}, d.ID, nil
}

// codeProblem explains a pairing code syntax error without repeating any of
// the code.
func codeProblem(err error) string {
	switch {
	case errors.Is(err, pairing.ErrCodeLength):
		return "a pairing code has 9 symbols, like ABC-123-DEF"
	case errors.Is(err, pairing.ErrCodeLookAlike):
		return "the letters I, O, Q and Z never appear in a pairing code"
	case errors.Is(err, pairing.ErrCodeCheck):
		return "typo: the last letter does not match the others"
	default:
		return "letters, digits and letters, like ABC-123-DEF"
	}
}

// deviceAddress turns what the technician typed (an IP address, host:port,
// or a host name) into "host:port".
func deviceAddress(s string, defaultPort int) (string, error) {
	if len(s) > 260 {
		return "", errors.New("address too long")
	}
	if a, err := netip.ParseAddr(s); err == nil {
		if a.Zone() != "" || a.IsUnspecified() {
			return "", errors.New("not a device address")
		}
		return net.JoinHostPort(a.String(), strconv.Itoa(defaultPort)), nil
	}
	host, port := s, strconv.Itoa(defaultPort)
	if h, p, err := net.SplitHostPort(s); err == nil {
		host, port = h, p
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || port != strconv.Itoa(n) {
		return "", fmt.Errorf("port %.8q is not a number in 1-65535", port)
	}
	if a, err := netip.ParseAddr(host); err == nil {
		if a.Zone() != "" || a.IsUnspecified() {
			return "", errors.New("not a device address")
		}
		return net.JoinHostPort(a.String(), port), nil
	}
	if !validHostname(host) {
		return "", errors.New("not an IP address or host name")
	}
	return net.JoinHostPort(host, port), nil
}

func validHostname(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			b := label[i]
			if !(b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '-') {
				return false
			}
		}
	}
	return true
}
