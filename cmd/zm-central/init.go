package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/zmonitor/firmware/internal/central/store"
	"github.com/zmonitor/firmware/internal/central/webapp"
)

// cmdInit creates a Central Station directory.
func cmdInit(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newCommand("init", nil)
	dir := fs.String("dir", os.Getenv(envDir), "`directory` to create (must not exist, or be empty); $"+envDir)
	hosts := fs.String("hosts", "localhost,127.0.0.1", "comma-separated names and IPs of the tablet API server certificate")
	tech := fs.String("technician", "admin", "name of the bootstrap operator")
	origin := fs.String("origin", "", "the web app's `origin` for the operator's passkey enrollment link (default https://FIRST-DNS-NAME-OF-HOSTS:8443)")
	if err := parse(fs, args, 0, 0); err != nil {
		return err
	}
	if *dir == "" {
		return fmt.Errorf("%w: init: --dir is required", errUsage)
	}
	names, err := parseHosts(*hosts)
	if err != nil {
		return fmt.Errorf("%w: init: --hosts: %v", errUsage, err)
	}
	if strings.TrimSpace(*tech) == "" {
		return fmt.Errorf("%w: init: --technician: a name is required", errUsage)
	}
	if *origin == "" {
		*origin = originForHosts(names)
	}
	if *origin != "" {
		if _, err := webapp.ParseOrigin(*origin); err != nil {
			return fmt.Errorf("%w: init: --origin: %v", errUsage, err)
		}
	}
	return initDir(ctx, *dir, names, *tech, *origin, time.Now(), stdout)
}

// parseHosts reads --hosts: the names and IP addresses the tablet API's
// certificate is for. A certificate with no name would be refused by every
// tablet, so at least one is required, and each must be an IP address or
// a DNS name.
func parseHosts(s string) ([]string, error) {
	if strings.TrimSpace(s) == "" {
		return nil, errors.New("give at least one name or IP address the tablets use to reach the Central Station (e.g. central.hospital.example,10.0.0.2)")
	}
	var out []string
	for _, h := range strings.Split(s, ",") {
		h = strings.TrimSpace(h)
		switch {
		case h == "":
			return nil, fmt.Errorf("empty name in %q", s)
		case net.ParseIP(h) != nil:
		case !validDNSName(h):
			return nil, fmt.Errorf("%q is neither an IP address nor a DNS name", h)
		}
		out = append(out, h)
	}
	return out, nil
}

// validDNSName accepts host names (letters, digits, hyphens, dots; labels
// of 1-63 characters), and a leading "*." wildcard.
func validDNSName(h string) bool {
	h = strings.TrimPrefix(h, "*.")
	if h == "" || len(h) > 253 {
		return false
	}
	for _, l := range strings.Split(h, ".") {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for _, c := range []byte(l) {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// initDir creates dir with the CA, the provisioning root and signer, the
// tablet server certificate, the database and a first technician. Nothing
// secret is printed but the technician's token, once.
func initDir(ctx context.Context, dir string, hosts []string, techName, origin string, now time.Time, stdout io.Writer) error {
	if err := os.Mkdir(dir, centralDirMode); err != nil {
		if !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("init: %w", err)
		}
		entries, err := os.ReadDir(dir)
		if err != nil {
			return fmt.Errorf("init: %w", err)
		}
		if len(entries) > 0 {
			return fmt.Errorf("init: %s: %w", dir, errDirNotEmpty)
		}
		// An empty directory made beforehand keeps whatever mode it had:
		// it is about to hold the CA and signer keys.
		if err := os.Chmod(dir, centralDirMode); err != nil {
			return fmt.Errorf("init: %w", err)
		}
	}
	deviceCA, err := newPair(caTemplate("Z Monitor device CA", now), pair{})
	if err == nil {
		err = writePair(dir, deviceCACert, deviceCAKey, deviceCA)
	}
	if err != nil {
		return fmt.Errorf("init: device CA: %w", err)
	}
	root, err := newPair(caTemplate("Z Monitor provisioning root", now), pair{})
	if err == nil {
		err = writePair(dir, provRootCert, provRootKey, root)
	}
	if err != nil {
		return fmt.Errorf("init: provisioning root: %w", err)
	}
	signer, err := newPair(signerTemplate(now), root)
	if err == nil {
		err = writePair(dir, provSignerCert, provSignerKey, signer)
	}
	if err != nil {
		return fmt.Errorf("init: provisioning signer: %w", err)
	}
	tablet, err := newPair(serverTemplate("Z Monitor Central Station", hosts, now), deviceCA)
	if err == nil {
		err = writePair(dir, tabletCert, tabletKey, tablet)
	}
	if err != nil {
		return fmt.Errorf("init: tablet server certificate: %w", err)
	}
	st, err := store.Open(ctx, "sqlite:"+filepath.Join(dir, dbFile), nil)
	if err != nil {
		return fmt.Errorf("init: %w", err)
	}
	defer st.Close()
	if err := st.Audit(ctx, store.AuditRecord{Actor: cliActor, Event: "central.init", Detail: "device CA, provisioning root and signer created"}); err != nil {
		return fmt.Errorf("init: %w", err)
	}
	tok, err := addTechnician(ctx, st, techName)
	if err != nil {
		return fmt.Errorf("init: %w", err)
	}
	if err := st.SetTechnicianRole(ctx, tok.ID, store.RoleOperator); err != nil {
		return fmt.Errorf("init: %w", err)
	}
	fmt.Fprintf(stdout, "Central Station created in %s\n", dir)
	fmt.Fprintf(stdout, "  devices must trust: %s\n", filepath.Join(dir, provRootCert))
	fmt.Fprintf(stdout, "  tablets must trust: %s\n", filepath.Join(dir, deviceCACert))
	op, err := st.Technician(ctx, tok.ID)
	if err != nil {
		return fmt.Errorf("init: %w", err)
	}
	if origin == "" {
		fmt.Fprintf(stdout, "no enrollment link: --hosts names no DNS name, and passkeys need one (zm-central technicians enroll --origin https://NAME:PORT %s)\n", tok.ID)
	} else if err := printEnrollment(ctx, st, op, dir, enrollOpts{origin: origin, noQR: true}, stdout); err != nil {
		return fmt.Errorf("init: %w", err)
	}
	fmt.Fprintf(stdout, "operator %s (%s) token, shown once:\n%s\n", tok.ID, techName, tok.Token)
	return nil
}

func writePair(dir, certName, keyName string, p pair) error {
	if err := writeKey(dir, keyName, p.key); err != nil {
		return err
	}
	return writeCert(dir, certName, p.cert)
}

// newPair makes a key and a certificate from tmpl, signed by parent (self-
// signed when parent is empty).
func newPair(tmpl *x509.Certificate, parent pair) (pair, error) {
	k, err := newKey()
	if err != nil {
		return pair{}, err
	}
	signer := parent.key
	if parent.cert == nil {
		signer = k
	}
	c, err := issue(tmpl, &k.PublicKey, parent.cert, signer)
	if err != nil {
		return pair{}, err
	}
	return pair{c, k}, nil
}
