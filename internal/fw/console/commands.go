package console

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/zmonitor/firmware/internal/proto/auditlog"
	"strconv"
	"strings"
	"time"

	"github.com/zmonitor/firmware/internal/fw/conncheck"
	"github.com/zmonitor/firmware/internal/fw/qr"
	"github.com/zmonitor/firmware/internal/proto/failure"
	"github.com/zmonitor/firmware/internal/proto/state"
)

// command is one console command.
type command struct {
	name, args, help string
	run              func(ctx context.Context, args []string) string
}

func (c *Console) commands() []command {
	return []command{
		{"help", "", "list the commands", c.help},
		{"status", "", "provisioning state, session time left, last error", c.status},
		{"qr", "[plain]", "draw the pairing QR (plain: terminal colours)", c.qr},
		{"audit", "[n|export]", fmt.Sprintf("last n audit records (default %d, max %d); export: the whole log for zm-central devices verify-audit", DefaultAudit, MaxAudit), c.audit},
		{"config", "", "provisioning settings (secrets redacted)", c.config},
		{"keys", "", "public key fingerprints (SHA-256 of the SPKI)", c.keys},
		{"enroll", "", "the enrollment record", c.enroll},
		{"net", "", "network interfaces and addresses", c.net},
		{"version", "", "firmware version", c.version},
		{"echo", "on|off", "turn echo of typed characters on or off", c.setEcho},
		{"provision", "", "enter pairing mode (only where the board allows it)", c.provision},
		{"reboot", "", "restart the device", c.reboot},
		{"factory-reset", "", "erase provisioning; confirm with the button", c.factoryReset},
		{"renew", "", "renew the client certificate now (EST; outcome in status and audit)", c.renew},
		{"reprovision", "", "pair again, keeping this provisioning until the new one works; confirm with the button", c.reprovision},
	}
}

// exec runs one command line and returns its output.
func (c *Console) exec(ctx context.Context, line string) string {
	f := strings.Fields(line)
	if len(f) == 0 {
		return ""
	}
	for _, cmd := range c.cmds {
		if cmd.name == f[0] {
			return cmd.run(ctx, f[1:])
		}
	}
	name := f[0]
	if len(name) > 32 {
		name = name[:32] + "..."
	}
	return fmt.Sprintf("error: unknown command %q; type help\n", name)
}

func errLine(cmd string, err error) string {
	return fmt.Sprintf("error: %s: %v\n", cmd, err)
}

func noArgs(cmd string, args []string) (string, bool) {
	if len(args) > 0 {
		return fmt.Sprintf("error: %s takes no arguments\n", cmd), false
	}
	return "", true
}

func (c *Console) help(_ context.Context, _ []string) string {
	var b strings.Builder
	for _, cmd := range c.cmds {
		fmt.Fprintf(&b, "  %-22s %s\n", strings.TrimSpace(cmd.name+" "+cmd.args), cmd.help)
	}
	return b.String()
}

func (c *Console) status(_ context.Context, args []string) string {
	if msg, ok := noArgs("status", args); !ok {
		return msg
	}
	s := c.dev.Status()
	var b strings.Builder
	fmt.Fprintf(&b, "state: %s\n", s.State)
	if s.State == state.ReadyToPair {
		fmt.Fprintf(&b, "pairing session: %s left\n", countdown(s.SessionLeft))
	}
	if s.Locked > 0 {
		fmt.Fprintf(&b, "locked: %s left (too many wrong pairing codes)\n", countdown(s.Locked))
	}
	if s.LastError == failure.None {
		b.WriteString("last error: none\n")
	} else {
		fmt.Fprintf(&b, "last error: %s (%s; %s)\n", s.LastError, s.LastError.Title(), s.LastError.UserAction())
	}
	if line := connCheckLine(s.ConnCheck); line != "" {
		b.WriteString(line)
	}
	for _, line := range s.Audit {
		fmt.Fprintf(&b, "audit log: %s\n", line)
	}
	for _, l := range s.Lifecycle {
		b.WriteString(l + "\n")
	}
	return b.String()
}

func (c *Console) renew(_ context.Context, args []string) string {
	if msg, ok := noArgs("renew", args); !ok {
		return msg
	}
	r, ok := c.dev.(Renewer)
	if !ok {
		return "error: renew: this device cannot renew its certificate\n"
	}
	if err := r.Renew(); err != nil {
		return errLine("renew", err)
	}
	return "renewal started; see status and audit\n"
}

// connCheckLine describes the last connection test ("" when there was
// none): "connection check: PASSED monitoring.example:443 at 2026-12-01T10:00:00Z".
func connCheckLine(c conncheck.Last) string {
	switch c.Verdict {
	case conncheck.NotChecked:
		return ""
	case conncheck.Checking:
		return fmt.Sprintf("connection check: %s %s\n", c.Verdict, c.Server)
	}
	at := c.At.UTC().Format(time.RFC3339)
	if !c.ClockTrusted {
		at += " (clock untrusted)"
	}
	line := fmt.Sprintf("connection check: %s %s at %s", c.Verdict, c.Server, at)
	if c.Detail != "" {
		line += ": " + c.Detail
	}
	return line + "\n"
}

func (c *Console) qr(_ context.Context, args []string) string {
	ansi := true
	switch {
	case len(args) == 1 && args[0] == "plain":
		ansi = false
	case len(args) > 0:
		return "error: usage: qr [plain]\n"
	}
	text := c.dev.QRText()
	if len(text) == 0 {
		return fmt.Sprintf("no pairing QR (state %s); press the Enable Provisioning button\n", c.dev.Status().State)
	}
	m, err := qr.Encode(text)
	if err != nil {
		return errLine("qr", err)
	}
	return HalfBlocks(m, ansi)
}

func (c *Console) audit(_ context.Context, args []string) string {
	n := DefaultAudit
	if len(args) > 1 {
		return "error: usage: audit [n|export]\n"
	}
	if len(args) == 1 && args[0] == "export" {
		return c.auditExport()
	}
	if len(args) == 1 {
		v, err := strconv.Atoi(args[0])
		if err != nil || v < 1 || v > MaxAudit {
			return fmt.Sprintf("error: audit: n must be a number from 1 to %d, or export\n", MaxAudit)
		}
		n = v
	}
	recs, err := c.dev.AuditTail(n)
	if err != nil {
		return errLine("audit", err)
	}
	if len(recs) == 0 {
		return "no audit records\n"
	}
	if len(recs) > n {
		recs = recs[len(recs)-n:]
	}
	return strings.Join(recs, "\n") + "\n"
}

// auditExport prints the whole audit log (every live segment, as stored,
// re-verified on the way) between the markers, for the Central Station to
// verify against the device's enrollment record.
func (c *Console) auditExport() string {
	x, ok := c.dev.(AuditExporter)
	if !ok {
		return "error: audit export: this device cannot export its audit log\n"
	}
	var b strings.Builder
	b.WriteString(auditlog.ExportBegin + "\n")
	if err := x.AuditExport(&b); err != nil {
		// What verified so far is printed; the end marker is not, so
		// the capture is known to be cut short.
		return b.String() + errLine("audit export", err)
	}
	return b.String() + auditlog.ExportEnd + "\n"
}

func (c *Console) config(_ context.Context, args []string) string {
	if msg, ok := noArgs("config", args); !ok {
		return msg
	}
	set, err := c.dev.Config()
	if err != nil {
		return errLine("config", err)
	}
	if len(set) == 0 {
		return "no settings (not provisioned)\n"
	}
	var b strings.Builder
	for _, s := range set {
		v := redactSetting(s.Name, s.Value)
		if strings.ContainsAny(v, "\r\n") {
			v = strconv.Quote(v)
		}
		fmt.Fprintf(&b, "%s = %s\n", s.Name, v)
	}
	return b.String()
}

func (c *Console) keys(_ context.Context, args []string) string {
	if msg, ok := noArgs("keys", args); !ok {
		return msg
	}
	ks, err := c.dev.PublicKeys()
	if err != nil {
		return errLine("keys", err)
	}
	var b strings.Builder
	for _, k := range ks {
		if _, err := x509.ParsePKIXPublicKey(k.SPKI); err != nil {
			fmt.Fprintf(&b, "%-12s error: not a public key (SubjectPublicKeyInfo): %v\n", k.Name, err)
			continue
		}
		sum := sha256.Sum256(k.SPKI)
		fmt.Fprintf(&b, "%-12s SHA256:%s\n", k.Name, hex.EncodeToString(sum[:]))
	}
	if b.Len() == 0 {
		return "no keys\n"
	}
	return b.String()
}

func (c *Console) enroll(_ context.Context, args []string) string {
	if msg, ok := noArgs("enroll", args); !ok {
		return msg
	}
	rec, err := c.dev.Enrollment()
	if err != nil {
		return errLine("enroll", err)
	}
	var out bytes.Buffer
	if err := json.Indent(&out, rec, "", "  "); err != nil {
		return errLine("enroll", fmt.Errorf("record is not valid JSON: %w", err))
	}
	return out.String() + "\n"
}

func (c *Console) net(_ context.Context, args []string) string {
	if msg, ok := noArgs("net", args); !ok {
		return msg
	}
	lines, err := c.dev.Net()
	if err != nil {
		return errLine("net", err)
	}
	if len(lines) == 0 {
		return "no network interfaces\n"
	}
	return strings.Join(lines, "\n") + "\n"
}

func (c *Console) version(_ context.Context, args []string) string {
	if msg, ok := noArgs("version", args); !ok {
		return msg
	}
	return c.dev.Version() + "\n"
}

func (c *Console) setEcho(_ context.Context, args []string) string {
	if len(args) != 1 || (args[0] != "on" && args[0] != "off") {
		return "error: usage: echo on|off\n"
	}
	c.echo = args[0] == "on"
	return "echo " + args[0] + "\n"
}

func (c *Console) provision(_ context.Context, args []string) string {
	if msg, ok := noArgs("provision", args); !ok {
		return msg
	}
	if !c.o.AllowProvision {
		return "provisioning from the console is disabled on this board; press the Enable Provisioning button\n"
	}
	if err := c.dev.Provision(); err != nil {
		return errLine("provision", err)
	}
	return "pairing mode on; type qr to see the code\n"
}

func (c *Console) reboot(_ context.Context, args []string) string {
	if msg, ok := noArgs("reboot", args); !ok {
		return msg
	}
	if err := c.write("rebooting\n"); err != nil {
		return ""
	}
	if err := c.dev.Reboot(); err != nil {
		return errLine("reboot", err)
	}
	return ""
}

func (c *Console) factoryReset(ctx context.Context, args []string) string {
	if msg, ok := noArgs("factory-reset", args); !ok {
		return msg
	}
	return c.confirmed(ctx, "factory-reset", "factory reset", c.dev.FactoryReset, "factory reset done; the device is unprovisioned\n")
}

func (c *Console) reprovision(ctx context.Context, args []string) string {
	if msg, ok := noArgs("reprovision", args); !ok {
		return msg
	}
	r, ok := c.dev.(Reprovisioner)
	if !ok {
		return "error: reprovision: this device cannot be re-provisioned\n"
	}
	return c.confirmed(ctx, "reprovision", "re-provisioning", r.Reprovision,
		"pairing open; the current provisioning stays until the new one passes its connection test\n")
}

// confirmed runs do, which waits for the physical button until its
// context ends (the confirmation timeout), and says how it went.
func (c *Console) confirmed(ctx context.Context, cmd, what string, do func(context.Context) error, done string) string {
	secs := int(c.o.ConfirmTimeout.Round(time.Second) / time.Second)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	t := c.o.Clock.NewTimer(c.o.ConfirmTimeout)
	defer t.Stop()
	if err := c.write(fmt.Sprintf("press the Enable Provisioning button within %d s to confirm\n", secs)); err != nil {
		return ""
	}
	go func() {
		select {
		case <-t.C():
			cancel()
		case <-ctx.Done():
		}
	}()
	err := do(ctx)
	switch {
	case err == nil:
		return done
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		return fmt.Sprintf("%s cancelled: no button press within %d s\n", what, secs)
	}
	return errLine(cmd, err)
}

// countdown formats d as m:ss, rounded up to the second (as on the screen).
func countdown(d time.Duration) string {
	s := int64((d + time.Second - 1) / time.Second)
	s = max(0, s)
	return fmt.Sprintf("%d:%02d", s/60, s%60)
}
