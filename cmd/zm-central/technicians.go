package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/zmonitor/firmware/internal/central/store"
)

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

func cmdTechniciansAdd(ctx context.Context, args []string, stdout io.Writer) error {
	var f dbFlags
	fs := newCommand("technicians add", &f)
	return withStore(ctx, fs, &f, args, 1, 1, func(st store.Store) error {
		tok, err := addTechnician(ctx, st, fs.Arg(0))
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "technician %s (%s) token, shown once:\n%s\n", tok.ID, fs.Arg(0), tok.Token)
		return nil
	})
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
		if *asJSON {
			enc := json.NewEncoder(stdout)
			for _, t := range ts {
				r := technicianRecord{ID: t.ID, Name: t.Name, CreatedAt: t.CreatedAt}
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
		fmt.Fprintln(tw, "ID\tNAME\tSTATUS\tCREATED")
		for _, t := range ts {
			status := "active"
			if t.Revoked() {
				status = "revoked " + t.RevokedAt.Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", t.ID, t.Name, status, t.CreatedAt.Format(time.RFC3339))
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
		if err := st.Audit(ctx, store.AuditRecord{Actor: cliActor, Event: "technician.revoke", Detail: fs.Arg(0)}); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "technician %s revoked\n", fs.Arg(0))
		return nil
	})
}

// technicianRecord is one line of technicians list --json (never the token
// or its hash).
type technicianRecord struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	CreatedAt time.Time  `json:"createdAt"`
	RevokedAt *time.Time `json:"revokedAt,omitempty"`
}
