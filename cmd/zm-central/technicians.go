package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	qrcode "github.com/skip2/go-qrcode"

	"github.com/zmonitor/firmware/internal/base/cli"
	"github.com/zmonitor/firmware/internal/central/store"
	"github.com/zmonitor/firmware/internal/central/webapp"
)

// defaultOrigin is the web app's origin when none is given: what serve
// answers by default (--listen 127.0.0.1:8443, opened as localhost).
const defaultOrigin = "https://localhost:8443"

// addTechnician creates a technician and returns the token (to show once).
func addTechnician(ctx context.Context, st store.Store, name string) (store.TechnicianToken, error) {
	tok, err := store.NewTechnicianToken(nil)
	if err != nil {
		return tok, err
	}
	if _, err := st.AddTechnician(ctx, tok.ID, name, tok.Hash); err != nil {
		return tok, err
	}
	if err := st.Audit(ctx, store.AuditRecord{Actor: cliActor, Event: "technician.add", Detail: tok.ID + " " + name}); err != nil {
		return tok, err
	}
	return tok, nil
}

// enrollOpts are the flags of the commands that make an enrollment link.
type enrollOpts struct {
	origin string
	noQR   bool
}

func (o *enrollOpts) flags(fs *flag.FlagSet) {
	fs.StringVar(&o.origin, "origin", defaultOrigin, "the web app's origin as tablets open it (zm-central serve --origin)")
	fs.BoolVar(&o.noQR, "no-qr", false, "do not draw the link's QR code on the terminal")
}

// printEnrollment makes a one-time enrollment link for tech, prints it,
// draws its QR code on the terminal (unless noQR) and writes it as a PNG
// (mode 0600) in dir for the operator to show on a screen.
func printEnrollment(ctx context.Context, st store.Store, tech store.Technician, dir string, o enrollOpts, stdout io.Writer) error {
	l, err := webapp.CreateEnrollmentLink(ctx, st, tech.ID, cliActor, o.origin, time.Now(), nil)
	if err != nil {
		return err
	}
	q, err := qrcode.New(l.URL, qrcode.Medium)
	if err != nil {
		return fmt.Errorf("enrollment QR code: %w", err)
	}
	png, err := q.PNG(512)
	if err != nil {
		return fmt.Errorf("enrollment QR code: %w", err)
	}
	pngPath := filepath.Join(dir, "enroll-"+tech.ID+".png")
	if err := os.WriteFile(pngPath, png, keyFileMode); err != nil {
		return fmt.Errorf("enrollment QR code: %w", err)
	}
	fmt.Fprintf(stdout, "enrollment link for %s (%s, %s), one use, until %s; open it on the technician's tablet:\n%s\n",
		tech.ID, tech.Name, tech.Role, l.ExpiresAt.Format(time.RFC3339), l.URL)
	fmt.Fprintf(stdout, "  its QR code: %s\n", pngPath)
	if !o.noQR {
		fmt.Fprint(stdout, q.ToSmallString(false))
	}
	return nil
}

func cmdTechniciansAdd(ctx context.Context, args []string, stdout io.Writer) error {
	var f dbFlags
	var eo enrollOpts
	fs := newCommand("technicians add", &f)
	role := fs.String("role", "technician", "technician (pairs devices, sees their own pairings) or operator (everything)")
	enroll := fs.Bool("enroll", false, "make a one-time passkey enrollment link (15 minutes) for the technician's tablet, instead of a bearer token")
	token := fs.Bool("token", false, "with --enroll, print a bearer token (for zm-pair) as well")
	eo.flags(fs.FlagSet)
	if err := parse(fs, args, 1, 1); err != nil {
		return err
	}
	r, err := store.ParseRole(*role)
	if err != nil {
		return cli.Usagef("technicians add: --role: %v", err)
	}
	if *enroll {
		if _, err := webapp.ParseOrigin(eo.origin); err != nil {
			return cli.Usagef("technicians add: --origin: %v", err)
		}
	}
	st, err := f.open(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	tok, err := addTechnician(ctx, st, fs.Arg(0))
	if err != nil {
		return err
	}
	if r != store.RoleTechnician {
		if err := st.SetTechnicianRole(ctx, tok.ID, r); err != nil {
			return err
		}
		if err := st.Audit(ctx, store.AuditRecord{Actor: cliActor, Event: "technician.role", Detail: tok.ID + " " + r.String()}); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "technician %s (%s, %s) added\n", tok.ID, fs.Arg(0), r)
	if *enroll {
		t, err := st.Technician(ctx, tok.ID)
		if err != nil {
			return err
		}
		if err := printEnrollment(ctx, st, t, f.dir, eo, stdout); err != nil {
			return err
		}
		if !*token {
			return nil
		}
	}
	fmt.Fprintf(stdout, "technician %s (%s) token, shown once:\n%s\n", tok.ID, fs.Arg(0), tok.Token)
	return nil
}

// cmdTechniciansEnroll makes a new enrollment link for a technician (a new
// tablet, a lost link).
func cmdTechniciansEnroll(ctx context.Context, args []string, stdout io.Writer) error {
	var f dbFlags
	var eo enrollOpts
	fs := newCommand("technicians enroll", &f)
	eo.flags(fs.FlagSet)
	if err := parse(fs, args, 1, 1); err != nil {
		return err
	}
	if _, err := webapp.ParseOrigin(eo.origin); err != nil {
		return cli.Usagef("technicians enroll: --origin: %v", err)
	}
	st, err := f.open(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	t, err := st.Technician(ctx, fs.Arg(0))
	if err != nil {
		return err
	}
	return printEnrollment(ctx, st, t, f.dir, eo, stdout)
}

func cmdTechniciansList(ctx context.Context, args []string, stdout io.Writer) error {
	var f dbFlags
	c := newCommand("technicians list", &f)
	asJSON := c.Bool("json", false, "one JSON object per line instead of a table")
	return withStore(ctx, c, &f, args, 0, 0, func(st store.Store) error {
		ts, err := st.Technicians(ctx)
		if err != nil {
			return err
		}
		keys, err := st.Passkeys(ctx, "")
		if err != nil {
			return err
		}
		live := map[string]int{}
		for _, k := range keys {
			if !k.Revoked() {
				live[k.TechnicianID]++
			}
		}
		if *asJSON {
			enc := json.NewEncoder(stdout)
			for _, t := range ts {
				r := technicianRecord{ID: t.ID, Name: t.Name, Role: t.Role.String(), Passkeys: live[t.ID], CreatedAt: t.CreatedAt}
				if t.Revoked() {
					at := t.RevokedAt
					r.RevokedAt = &at
				}
				if err := enc.Encode(r); err != nil {
					return err
				}
			}
			return nil
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tROLE\tPASSKEYS\tSTATUS\tCREATED")
		for _, t := range ts {
			status := "active"
			if t.Revoked() {
				status = "revoked " + t.RevokedAt.Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", t.ID, t.Name, t.Role, live[t.ID], status, t.CreatedAt.Format(time.RFC3339))
		}
		return tw.Flush()
	})
}

func cmdTechniciansRevoke(ctx context.Context, args []string, stdout io.Writer) error {
	var f dbFlags
	fs := newCommand("technicians revoke", &f)
	return withStore(ctx, fs, &f, args, 1, 1, func(st store.Store) error {
		if err := st.RevokeTechnician(ctx, fs.Arg(0)); err != nil {
			return err
		}
		if err := st.Audit(ctx, store.AuditRecord{Actor: cliActor, Event: "technician.revoke", Detail: fs.Arg(0) + ": token, passkeys and sessions"}); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "technician %s revoked: token and every passkey, browser sessions ended\n", fs.Arg(0))
		return nil
	})
}

// technicianRecord is one line of technicians list --json (never the token
// or its hash).
type technicianRecord struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	Role      string     `json:"role"`
	Passkeys  int        `json:"passkeys"` // not revoked
	CreatedAt time.Time  `json:"createdAt"`
	RevokedAt *time.Time `json:"revokedAt,omitempty"`
}

func cmdPasskeysList(ctx context.Context, args []string, stdout io.Writer) error {
	var f dbFlags
	c := newCommand("passkeys list", &f)
	tech := c.String("technician", "", "only this technician's passkeys")
	return withStore(ctx, c, &f, args, 0, 0, func(st store.Store) error {
		keys, err := st.Passkeys(ctx, *tech)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tTECHNICIAN\tNAME\tSTATUS\tCREATED\tLAST-USED")
		for _, k := range keys {
			status, used := "active", "-"
			if k.Revoked() {
				status = "revoked " + k.RevokedAt.Format(time.RFC3339)
			}
			if !k.LastUsedAt.IsZero() {
				used = k.LastUsedAt.Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.TechnicianID, k.Name, status, k.CreatedAt.Format(time.RFC3339), used)
		}
		return tw.Flush()
	})
}

func cmdPasskeysRevoke(ctx context.Context, args []string, stdout io.Writer) error {
	var f dbFlags
	c := newCommand("passkeys revoke", &f)
	return withStore(ctx, c, &f, args, 1, 1, func(st store.Store) error {
		k, err := st.Passkey(ctx, c.Arg(0))
		if err != nil {
			return err
		}
		if err := st.RevokePasskey(ctx, k.ID); err != nil {
			return err
		}
		if err := st.Audit(ctx, store.AuditRecord{Actor: cliActor, Event: "passkey.revoked", Detail: fmt.Sprintf("passkey=%s technician=%s name=%q", k.ID, k.TechnicianID, k.Name)}); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "passkey %s of %s (%s) revoked; the tablet's browser session ended\n", k.ID, k.TechnicianID, k.Name)
		return nil
	})
}

// originForHosts is the web app's default origin for a certificate's
// hosts: the first DNS name, port 8443. WebAuthn needs a DNS name; "" when
// hosts has none.
func originForHosts(hosts []string) string {
	for _, h := range hosts {
		h = strings.TrimSpace(h)
		if _, err := netip.ParseAddr(h); err == nil || h == "" {
			continue
		}
		return "https://" + net.JoinHostPort(h, "8443")
	}
	return ""
}
