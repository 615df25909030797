package boot

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/zmonitor/firmware/internal/base/version"
	"github.com/zmonitor/firmware/internal/fw/audit"
	"github.com/zmonitor/firmware/internal/fw/console"
	"github.com/zmonitor/firmware/internal/fw/engine"
	"github.com/zmonitor/firmware/internal/fw/fault"
	"github.com/zmonitor/firmware/internal/fw/keys"
)

// consoleDevice is the firmware as the console sees it.
type consoleDevice struct{ d *device }

func (d *consoleDevice) Status() console.Status {
	s := d.d.eng.Status()
	return console.Status{State: s.State, SessionLeft: s.Remaining, Locked: s.Locked, LastError: s.LastError, ConnCheck: s.ConnCheck,
		Audit: auditLines(d.d.alog.Status()), Lifecycle: d.lifecycle(s)}
}

// auditLines describes the audit log's tamper evidence for the console's
// status: the damage found at boot first (it is what a technician must
// see), then the TPM anchor, the background check and the last checkpoint
// (its JSON, for the Central Station to verify with the enrolled identity
// key).
func auditLines(s audit.Status) []string {
	var out []string
	if s.AtOpen != "" {
		out = append(out, "TAMPERED: found at boot: "+s.AtOpen)
	}
	if s.DiskFull != "" {
		out = append(out, "DISK FULL: "+s.DiskFull)
	}
	switch {
	case !s.Anchoring:
		out = append(out, fmt.Sprintf("%d records, not anchored in a TPM", s.Records))
	case s.AnchorErr != nil:
		out = append(out, fmt.Sprintf("%d records, TPM anchor at record %d; the last anchor write failed: %v", s.Records, s.AnchorSeq, s.AnchorErr))
	default:
		out = append(out, fmt.Sprintf("%d records, TPM anchor at record %d (%d writes this boot)", s.Records, s.AnchorSeq, s.AnchorWrites))
	}
	c := s.Check
	switch c.State {
	case audit.CheckPassed:
		out = append(out, fmt.Sprintf("whole-log check PASSED: %d records in %d segments", c.Records, c.Segments))
	case audit.CheckDamage:
		for _, f := range c.Findings {
			out = append(out, "TAMPERED: found by the whole-log check: "+f)
		}
	case audit.CheckFailed:
		out = append(out, fmt.Sprintf("whole-log check FAILED: %v", c.Err))
	default:
		out = append(out, "whole-log check "+c.State.String())
	}
	if s.Checkpoint != nil {
		out = append(out, "checkpoint "+string(s.Checkpoint.Marshal()))
	}
	return out
}

// auditWarning is what the panel must warn of about the audit log (the
// console's status says the same in full, auditLines): damage found at
// boot or by the whole-log check, or a full disk.
func auditWarning(s audit.Status) fault.Warning {
	w := fault.NoWarning
	if s.DiskFull != "" {
		w = fault.DiskFull
	}
	if s.AtOpen != "" || s.Check.State == audit.CheckDamage {
		w = fault.Worst(w, fault.AuditTampered)
	}
	return w
}

// lifecycle describes the committed certificate and its renewal.
func (d *consoleDevice) lifecycle(s engine.Status) []string {
	p, ok := d.d.eng.Current()
	if !ok {
		return nil
	}
	slot, _ := keys.SlotOfRef(p.ClientKeyRef)
	line := "certificate: unreadable"
	if c, err := x509.ParseCertificate(p.ClientCertDER); err == nil {
		line = fmt.Sprintf("certificate: serial %s, key slot %s, valid %s to %s", c.SerialNumber.Text(16), slot,
			c.NotBefore.UTC().Format(time.RFC3339), c.NotAfter.UTC().Format(time.RFC3339))
	}
	out := []string{line}
	r := s.Renewal
	switch {
	case !r.Enabled:
		out = append(out, "renewal: off (the provisioning names no EST server)")
	case r.Running:
		out = append(out, "renewal: running")
	default:
		l := fmt.Sprintf("renewal: due %s, next look %s", r.Due.UTC().Format(time.RFC3339), r.Next.UTC().Format(time.RFC3339))
		if r.Failures > 0 {
			l += fmt.Sprintf(", %d failed attempt(s), last: %s", r.Failures, r.LastErr)
		}
		out = append(out, l)
	}
	wall, trusted := d.d.c.Wall.Now()
	l := "clock: " + wall.UTC().Format(time.RFC3339)
	if !trusted {
		l += " (untrusted)"
	}
	if f := d.d.c.Wall.Floor(); !f.IsZero() {
		l += ", last known good " + f.UTC().Format(time.RFC3339)
	}
	return append(out, l)
}

// Reprovision implements console.Reprovisioner.
func (d *consoleDevice) Reprovision(ctx context.Context) error { return d.d.eng.Reprovision(ctx) }

// Renew implements console.Renewer.
func (d *consoleDevice) Renew() error { return d.d.eng.RenewNow("console") }

func (d *consoleDevice) QRText() []byte { return d.d.eng.QRText() }

// AuditExport implements console.AuditExporter.
func (d *consoleDevice) AuditExport(w io.Writer) error { return d.d.alog.Export(w) }

func (d *consoleDevice) AuditTail(n int) ([]string, error) {
	recs, err := d.d.alog.Tail(n)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(recs))
	for _, r := range recs {
		line := fmt.Sprintf("%d %s %s", r.Seq, r.WallTime.Format(time.RFC3339), r.Event.Event)
		if !r.ClockTrusted {
			line += " (clock untrusted)"
		}
		if r.From != "" || r.To != "" {
			line += fmt.Sprintf(" %s->%s", r.From, r.To)
		}
		if r.Code != "" {
			line += " code=" + r.Code
		}
		if r.Actor != "" {
			line += " actor=" + r.Actor
		}
		if r.Reason != "" {
			line += " reason=" + r.Reason
		}
		out = append(out, line)
	}
	return out, nil
}

func (d *consoleDevice) Config() ([]console.Setting, error) {
	p, ok, err := d.d.set.Current()
	if err != nil {
		return nil, err
	}
	s := []console.Setting{{Name: "deviceId", Value: d.d.id.DeviceID}, {Name: "deviceSerial", Value: d.d.id.DeviceSerial}}
	if !ok {
		return append(s, console.Setting{Name: "provisioned", Value: "no"}), nil
	}
	s = append(s,
		console.Setting{Name: "provisioned", Value: "yes"},
		console.Setting{Name: "deviceLabel", Value: p.DeviceLabel},
		console.Setting{Name: "serverUrl", Value: p.ServerURL},
		console.Setting{Name: "configVersion", Value: fmt.Sprint(p.ConfigVersion)},
		console.Setting{Name: "provisionedAt", Value: p.ProvisionedAt.Format(time.RFC3339)},
		console.Setting{Name: "caCertificate", Value: certSummary(p.CACertDER)},
		console.Setting{Name: "clientCertificate", Value: certSummary(p.ClientCertDER)},
		// The key's slot is in status ("key slot B"): a setting named
		// for a key would be redacted.
		console.Setting{Name: "estUrl", Value: p.ESTURL},
	)
	return s, nil
}

func certSummary(der []byte) string {
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return "unreadable"
	}
	sum := sha256.Sum256(der)
	return fmt.Sprintf("%s, until %s, sha256 %s", c.Subject.CommonName, c.NotAfter.Format("2006-01-02"), hex.EncodeToString(sum[:8]))
}

func (d *consoleDevice) PublicKeys() ([]console.PublicKey, error) {
	var out []console.PublicKey
	add := func(name string, pub any) error {
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			return fmt.Errorf("%s key: %w", name, err)
		}
		out = append(out, console.PublicKey{Name: name, SPKI: der})
		return nil
	}
	if err := add("identity", d.d.ks.Identity().Public()); err != nil {
		return nil, err
	}
	if err := add("payload", d.d.ks.PayloadKey().PublicKey()); err != nil {
		return nil, err
	}
	if p, ok := d.d.eng.Current(); ok {
		if slot, err := keys.SlotOfRef(p.ClientKeyRef); err == nil {
			if k, err := d.d.ks.ClientKeyAt(slot); err == nil {
				if err := add("client", k.Public()); err != nil {
					return nil, err
				}
			}
		}
	}
	return out, nil
}

func (d *consoleDevice) Enrollment() ([]byte, error) {
	if len(d.d.enrollment) == 0 {
		return nil, errors.New("no enrollment record")
	}
	return d.d.enrollment, nil
}

func (d *consoleDevice) Net() ([]string, error) {
	if d.d.c.NetLines == nil {
		return []string{"address " + d.d.address()}, nil
	}
	return d.d.c.NetLines(), nil
}

func (d *consoleDevice) Version() string {
	return fmt.Sprintf("zmonitor %s (built %s), board %s", version.Version, version.BuildTime, d.d.c.Profile.Name)
}

func (d *consoleDevice) Provision() error {
	_ = d.d.alog.Record(audit.Event{Event: "CONSOLE_PROVISION", Actor: "console"})
	return d.d.eng.ConsoleProvision()
}

func (d *consoleDevice) Reboot() error {
	_ = d.d.alog.Record(audit.Event{Event: "REBOOT_REQUESTED", Actor: "console"})
	if d.d.c.Reboot == nil {
		return errors.New("reboot is not available")
	}
	return d.d.c.Reboot()
}

func (d *consoleDevice) FactoryReset(ctx context.Context) error { return d.d.eng.FactoryReset(ctx) }
