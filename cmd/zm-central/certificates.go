package main

import (
	"context"
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
	fs := newFlagSet("certificates list", &f)
	fs.StringVar(&device, "device", "", "only the certificates of this device")
	fs.StringVar(&stateName, "state", "", "only the certificates in this state: issued, in-use or revoked")
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
	fmt.Fprintln(tw, "SERIAL\tDEVICE\tSTATE\tREASON\tNOT-BEFORE\tNOT-AFTER\tISSUED\tPAIRING")
	for _, c := range cs {
		if want != 0 && c.State != want {
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
