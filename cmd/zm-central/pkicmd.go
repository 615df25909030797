package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/zmonitor/firmware/internal/central/store"
)

// The Central Station's own certificates: zm-central pki status and
// pki renew.

// ExpiryWarning: a Central Station certificate that ends within this is
// warned about (the log, pki status, the operator's status panel).
const expiryWarning = 30 * 24 * time.Hour

// ownCert is one of the Central Station's certificates kept in its
// directory.
type ownCert struct {
	name     string // the pki command's name for it
	title    string // what the status panel and the log call it
	certFile string
	keyFile  string
	// renewable: pki renew re-issues it; else why not.
	notRenewable string
}

// ownCerts are the certificates of a Central Station directory.
var ownCerts = []ownCert{
	{name: "device-ca", title: "device CA", certFile: deviceCACert, keyFile: deviceCAKey,
		notRenewable: "every provisioned device holds this CA certificate (the payload's caCertificate) and every tablet trusts it: a new one means re-provisioning every device; it is valid 10 years from init"},
	{name: "provisioning-root", title: "provisioning root", certFile: provRootCert, keyFile: provRootKey,
		notRenewable: "device images trust it (built in): a new one means new firmware images; it is valid 10 years from init"},
	{name: "provisioning-signer", title: "provisioning signer", certFile: provSignerCert, keyFile: provSignerKey},
	{name: "tablet-server", title: "tablet server", certFile: tabletCert, keyFile: tabletKey},
}

func findOwnCert(name string) (ownCert, bool) {
	for _, c := range ownCerts {
		if c.name == name {
			return c, true
		}
	}
	return ownCert{}, false
}

// certStatus is one line of pki status.
type certStatus struct {
	Name     string    `json:"name"`
	Subject  string    `json:"subject"`
	Serial   string    `json:"serial"`
	NotAfter time.Time `json:"notAfter"`
	DaysLeft int       `json:"daysLeft"`
	Warning  string    `json:"warning,omitempty"`
	Renew    string    `json:"renew"`
}

func statusOf(c ownCert, cert *x509.Certificate, now time.Time) certStatus {
	left := cert.NotAfter.Sub(now)
	s := certStatus{Name: c.name, Subject: cert.Subject.CommonName, Serial: store.CertificateSerial(cert), NotAfter: cert.NotAfter.UTC(),
		DaysLeft: int(left.Hours() / 24)}
	switch {
	case left <= 0:
		s.Warning = "EXPIRED"
	case left < expiryWarning:
		s.Warning = "expires within 30 days"
	}
	if c.notRenewable != "" {
		s.Renew = "not renewable: " + c.notRenewable
	} else {
		s.Renew = "zm-central pki renew " + c.name
	}
	return s
}

// cmdPKIStatus prints the Central Station's own certificates.
func cmdPKIStatus(ctx context.Context, args []string, stdout io.Writer) error {
	var f dbFlags
	fs := newCommand("pki status", &f)
	asJSON := fs.Bool("json", false, "one JSON object per line instead of a table")
	if err := parse(fs, args, 0, 0); err != nil {
		return err
	}
	if err := completeRenewals(f.dir); err != nil {
		return fmt.Errorf("pki status: %w", err)
	}
	now := time.Now()
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	enc := json.NewEncoder(stdout)
	if !*asJSON {
		fmt.Fprintln(tw, "NAME\tSUBJECT\tSERIAL\tNOT-AFTER\tDAYS-LEFT\tWARNING")
	}
	var failed []string
	for _, c := range ownCerts {
		cert, err := loadCert(f.dir, c.certFile)
		if err != nil {
			failed = append(failed, fmt.Sprintf("%s: %v", c.name, err))
			continue
		}
		s := statusOf(c, cert, now)
		if *asJSON {
			if err := enc.Encode(s); err != nil {
				return err
			}
			continue
		}
		w := s.Warning
		if w == "" {
			w = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", s.Name, s.Subject, s.Serial, s.NotAfter.Format(time.RFC3339), s.DaysLeft, w)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if !*asJSON {
		fmt.Fprintln(stdout, "monitoring-server, est-server: issued from the device CA at each start of serve (397 days, key in memory only): a restart renews them")
		fmt.Fprintln(stdout, "device-ca, provisioning-root: not renewable in place (see zm-central help pki renew)")
	}
	if len(failed) > 0 {
		return fmt.Errorf("pki status: %s", strings.Join(failed, "; "))
	}
	_ = ctx
	return nil
}

// cmdPKIRenew re-issues one of the Central Station's certificates with a
// new key, atomically, and audits it.
func cmdPKIRenew(ctx context.Context, args []string, stdout io.Writer) error {
	var f dbFlags
	fs := newCommand("pki renew", &f)
	rootKey := fs.String("root-key", "", "provisioning-signer: the provisioning root's key file (kept offline after init; default DIR/"+provRootKey+")")
	hosts := fs.String("hosts", "", "tablet-server: comma-separated names and IPs (default: those of the current certificate)")
	if err := parse(fs, args, 1, 1); err != nil {
		return err
	}
	c, ok := findOwnCert(fs.Arg(0))
	if !ok {
		names := make([]string, len(ownCerts))
		for i, o := range ownCerts {
			names[i] = o.name
		}
		return fmt.Errorf("%w: pki renew: %q: one of %s", errUsage, fs.Arg(0), strings.Join(names, ", "))
	}
	if c.notRenewable != "" {
		return fmt.Errorf("pki renew %s: not renewable in place: %s", c.name, c.notRenewable)
	}
	if *rootKey != "" && c.name != "provisioning-signer" {
		return fmt.Errorf("%w: pki renew: --root-key is for provisioning-signer", errUsage)
	}
	if *hosts != "" && c.name != "tablet-server" {
		return fmt.Errorf("%w: pki renew: --hosts is for tablet-server", errUsage)
	}
	var names []string
	if *hosts != "" {
		var err error
		if names, err = parseHosts(*hosts); err != nil {
			return fmt.Errorf("%w: pki renew: --hosts: %v", errUsage, err)
		}
	}
	st, err := f.open(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := completeRenewals(f.dir); err != nil {
		return fmt.Errorf("pki renew: %w", err)
	}
	old, err := loadPair(f.dir, c.certFile, c.keyFile)
	if err != nil {
		return fmt.Errorf("pki renew %s: %w", c.name, err)
	}
	now := time.Now()
	var tmpl *x509.Certificate
	var parent pair
	switch c.name {
	case "provisioning-signer":
		tmpl = signerTemplate(now)
		rootCert, err := loadCert(f.dir, provRootCert)
		if err != nil {
			return fmt.Errorf("pki renew %s: %w", c.name, err)
		}
		keyDir, keyName := f.dir, provRootKey
		if *rootKey != "" {
			keyDir, keyName = filepath.Split(*rootKey)
		}
		k, err := loadKey(keyDir, keyName)
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("pki renew %s: the provisioning root's key is not in %s: give it with --root-key FILE (from where it is kept offline)", c.name, filepath.Join(keyDir, keyName))
		} else if err != nil {
			return fmt.Errorf("pki renew %s: provisioning root key: %w", c.name, err)
		}
		if !k.PublicKey.Equal(rootCert.PublicKey) {
			return fmt.Errorf("pki renew %s: %s is not the key of %s", c.name, filepath.Join(keyDir, keyName), provRootCert)
		}
		parent = pair{rootCert, k}
	case "tablet-server":
		if names == nil {
			names = old.cert.DNSNames
			for _, ip := range old.cert.IPAddresses {
				names = append(names, ip.String())
			}
		}
		tmpl = serverTemplate(old.cert.Subject.CommonName, names, now)
		if parent, err = loadPair(f.dir, deviceCACert, deviceCAKey); err != nil {
			return fmt.Errorf("pki renew %s: device CA: %w", c.name, err)
		}
	}
	tmpl.Subject = old.cert.Subject
	key, err := newKey()
	if err != nil {
		return fmt.Errorf("pki renew %s: %w", c.name, err)
	}
	cert, err := issue(tmpl, &key.PublicKey, parent.cert, parent.key)
	if err != nil {
		return fmt.Errorf("pki renew %s: %w", c.name, err)
	}
	if err := replacePair(f.dir, c.certFile, c.keyFile, cert, key); err != nil {
		return fmt.Errorf("pki renew %s: %w", c.name, err)
	}
	detail := fmt.Sprintf("%s: serial %s -> %s, not after %s -> %s, new key", c.name, store.CertificateSerial(old.cert), store.CertificateSerial(cert),
		old.cert.NotAfter.UTC().Format(time.RFC3339), cert.NotAfter.UTC().Format(time.RFC3339))
	if err := st.Audit(ctx, store.AuditRecord{Actor: cliActor, Event: "pki.renewed", Detail: detail}); err != nil {
		return fmt.Errorf("pki renew %s: renewed but NOT audited (%s): %w", c.name, detail, err)
	}
	fmt.Fprintf(stdout, "%s renewed: serial %s, valid until %s, new key; restart zm-central serve to use it\n", c.name, store.CertificateSerial(cert), cert.NotAfter.UTC().Format(time.RFC3339))
	return nil
}

// Replacing a certificate and its key: two files, so two renames. The
// new pair is first written beside the old as NAME.new (key first, both
// synced, the directory synced); then the key is renamed into place, then
// the certificate, and the directory synced. completeRenewals, run by
// every pki command and by serve before they read a pair, finishes or
// undoes a replacement a crash interrupted:
//
//   - the certificate's .new without the key's: the key was renamed, so
//     the certificate follows (roll forward);
//   - both .new files, or the key's alone: nothing was renamed, the old
//     pair is whole: remove them (roll back).
//
// So a crash at any point leaves the old pair or the new one, never a key
// with another's certificate.

const newSuffix = ".new"

func replacePair(dir, certName, keyName string, cert *x509.Certificate, key *ecdsa.PrivateKey) error {
	for _, n := range []string{keyName, certName} {
		if err := os.Remove(filepath.Join(dir, n+newSuffix)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	if err := writeKey(dir, keyName+newSuffix, key); err != nil {
		return err
	}
	if err := writeCert(dir, certName+newSuffix, cert); err != nil {
		return err
	}
	if err := syncDir(dir); err != nil {
		return err
	}
	if err := os.Rename(filepath.Join(dir, keyName+newSuffix), filepath.Join(dir, keyName)); err != nil {
		return err
	}
	if err := os.Rename(filepath.Join(dir, certName+newSuffix), filepath.Join(dir, certName)); err != nil {
		return err
	}
	return syncDir(dir)
}

// completeRenewals finishes or undoes the replacements a crash
// interrupted in dir (see replacePair).
func completeRenewals(dir string) error {
	for _, c := range ownCerts {
		if err := completeRenewal(dir, c.certFile, c.keyFile); err != nil {
			return err
		}
	}
	return nil
}

func completeRenewal(dir, certName, keyName string) error {
	certNew, keyNew := filepath.Join(dir, certName+newSuffix), filepath.Join(dir, keyName+newSuffix)
	_, certErr := os.Stat(certNew)
	_, keyErr := os.Stat(keyNew)
	switch {
	case certErr == nil && errors.Is(keyErr, os.ErrNotExist):
		// Roll forward, if the certificate is the key's.
		c, err := loadCert(dir, certName+newSuffix)
		if err != nil {
			return fmt.Errorf("interrupted renewal of %s: %w", certName, err)
		}
		k, err := loadKey(dir, keyName)
		if err != nil {
			return fmt.Errorf("interrupted renewal of %s: %w", certName, err)
		}
		if !k.PublicKey.Equal(c.PublicKey) {
			return fmt.Errorf("interrupted renewal of %s: %s is not the key of %s: restore the directory from a backup", certName, keyName, certName+newSuffix)
		}
		if err := os.Rename(certNew, filepath.Join(dir, certName)); err != nil {
			return err
		}
		return syncDir(dir)
	case certErr == nil || keyErr == nil:
		for _, p := range []string{certNew, keyNew} {
			if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
		}
		return syncDir(dir)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
