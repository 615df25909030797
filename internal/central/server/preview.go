package server

import (
	"context"
	"time"

	"github.com/zmonitor/firmware/internal/central/store"
	"github.com/zmonitor/firmware/internal/proto/pairing"
	"github.com/zmonitor/firmware/internal/proto/tabletwire"
)

// DevicePreview is what the technician is shown after a scan (or a typed
// code), before choosing to provision: the device as the inventory knows
// it and as its QR code describes it.
type DevicePreview struct {
	DeviceID string
	Serial   string
	Label    string // the label that would be pushed: the request's, else the inventory's
	Firmware string
	// Address is the device's address as the QR or the technician gave it.
	Address string
	// ExpiresAt is the QR's expiry by the device's clock (zero on the
	// typed path).
	ExpiresAt time.Time
	Method    store.Method
}

// Preview runs every check of a pairing request that changes nothing
// (Pair would refuse the same request with the same refusal), and tells
// what device it names. Nothing is claimed or recorded: the technician
// may look, then provision.
func (s *Server) Preview(ctx context.Context, req tabletwire.PairingRequest) (DevicePreview, error) {
	c, _, err := s.check(ctx, req)
	if err != nil {
		return DevicePreview{}, err
	}
	d, err := s.device(ctx, c.job.DeviceID)
	if err != nil {
		return DevicePreview{}, err
	}
	p := DevicePreview{DeviceID: d.ID, Serial: d.Serial, Label: c.job.Label, Firmware: d.FirmwareVersion, Address: req.Address, Method: c.method}
	if c.method == store.MethodQR {
		// check parsed it already: it parses.
		if q, err := pairing.ParseQR([]byte(req.QR)); err == nil {
			p.Address, p.Firmware = q.IPAddress, q.FirmwareVersion
			if exp, err := time.Parse(pairing.TimeLayout, q.ExpiresAt); err == nil {
				p.ExpiresAt = exp
			}
		}
	}
	return p, nil
}
