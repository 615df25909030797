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

// cmdCertificatesList prints the client certificates the Central Station
// issued, with their state: issued (pairing not ended, or interrupted),
// in-use, or revoked with the time and reason.
func cmdCertificatesList(ctx context.Context, args []string, stdout io.Writer) error {
	var f dbFlags
	var device, stateName string
	fs := newCommand("certificates list", &f)
	fs.StringVar(&device, "device", "", "only the certificates of this device")
	fs.StringVar(&stateName, "state", "", "only the certificates in this state: issued, in-use or revoked")
	asJSON := fs.Bool("json", false, "one JSON object per line instead of a table")
	if err := parse(fs, args, 0, 0); err != nil {
		return err
	}
	var want store.CertificateState
	if stateName != "" {
		s, err := store.ParseCertificateState(stateName)
		if err != nil {
			return fmt.Errorf("%w: certificates list: --state: %v", errUsage, err)
		}
		want = s
	}
	st, err := f.open(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	var cs []store.IssuedCertificate
	if device != "" {
		cs, err = st.Certificates(ctx, device)
	} else {
		cs, err = st.AllCertificates(ctx)
	}
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	enc := json.NewEncoder(stdout)
	if !*asJSON {
		fmt.Fprintln(tw, "SERIAL\tDEVICE\tSTATE\tREASON\tNOT-BEFORE\tNOT-AFTER\tISSUED\tPAIRING")
	}
	for _, c := range cs {
		if want != 0 && c.State != want {
			continue
		}
		if *asJSON {
			if err := enc.Encode(certificateJSON(c)); err != nil {
				return err
			}
			continue
		}
		state, reason := c.State.String(), "-"
		if c.State == store.CertificateRevoked {
			state += " " + c.RevokedAt.Format(time.RFC3339)
			reason = c.Reason.String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.Serial, c.DeviceID, state, reason,
			c.NotBefore.Format(time.RFC3339), c.NotAfter.Format(time.RFC3339), c.IssuedAt.Format(time.RFC3339), c.PairingID)
	}
	return tw.Flush()
}

// certificateRecord is one line of certificates list --json.
type certificateRecord struct {
	Serial    string     `json:"serial"`
	DeviceID  string     `json:"deviceId"`
	PairingID string     `json:"pairingId"`
	State     string     `json:"state"`
	RevokedAt *time.Time `json:"revokedAt,omitempty"`
	Reason    string     `json:"reason,omitempty"`
	NotBefore time.Time  `json:"notBefore"`
	NotAfter  time.Time  `json:"notAfter"`
	IssuedAt  time.Time  `json:"issuedAt"`
}

func certificateJSON(c store.IssuedCertificate) certificateRecord {
	r := certificateRecord{Serial: c.Serial, DeviceID: c.DeviceID, PairingID: c.PairingID, State: c.State.String(),
		NotBefore: c.NotBefore, NotAfter: c.NotAfter, IssuedAt: c.IssuedAt}
	if c.State == store.CertificateRevoked {
		t := c.RevokedAt
		r.RevokedAt, r.Reason = &t, c.Reason.String()
	}
	return r
}
