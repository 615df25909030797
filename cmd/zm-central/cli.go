package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/zmonitor/firmware/internal/base/cli"
	"github.com/zmonitor/firmware/internal/base/version"
	"github.com/zmonitor/firmware/internal/central/store"
)

// commands are zm-central's commands in the order the help lists them,
// each with its synopsis (its help adds every flag).
var commands = []struct{ name, synopsis string }{
	{"init", "zm-central init --dir DIR [--hosts h1,h2] [--technician NAME] [--origin URL]\n  create the device CA, provisioning root and signer, the tablet API's certificate,\n  the database and the bootstrap operator: a one-time passkey enrollment link for\n  their tablet, and a token printed once"},
	{"serve", "zm-central serve {--monitor-listen ADDR | --server-url URL} [flags]\n  run the web app and the tablet API (and the stand-in monitoring server, and the\n  ops endpoints); devices are sent --server-url, else the stand-in's URL: one of the\n  two is needed; --origin, --rp-id, --session-idle, --session-max for the web app"},
	{"devices import", "zm-central devices import [flags] FILE...\n  add enrollment records (JSON or CSV) to the inventory"},
	{"devices list", "zm-central devices list [flags]\n  the inventory (--json: one JSON object per line)"},
	{"devices revoke", "zm-central devices revoke [flags] DEVICE-ID\n  refuse every pairing and renewal of the device from now on, and revoke its\n  certificates (the CRL lists them)"},
	{"devices decommission", "zm-central devices decommission [flags] DEVICE-ID\n  take the device out of service: revoke its certificates; at its next EST\n  check-in the device wipes its provisioning (not its identity) and shows\n  Decommissioned; a new pairing brings it back"},
	{"devices label", "zm-central devices label [flags] DEVICE-ID LABEL\n  set the label pushed to the device"},
	{"devices verify-audit", "zm-central devices verify-audit [flags] DEVICE-ID FILE\n  verify a device's exported audit log (its console's `audit export`, captured)\n  against its enrollment record: hashes, chain, gaps and signed checkpoints;\n  audited; exits 1 when it does not verify"},
	{"devices replace", "zm-central devices replace --reason TEXT [flags] FILE\n  give an enrolled device the keys of its new enrollment record (TPM or board\n  replaced); the old keys are kept and refused from then on; audited"},
	{"technicians add", "zm-central technicians add [--role technician|operator] [--enroll [--origin URL]] [flags] NAME\n  add a technician: a token printed once, or with --enroll a one-time passkey\n  enrollment link (15 minutes) and its QR code"},
	{"technicians enroll", "zm-central technicians enroll [--origin URL] [flags] TECHNICIAN-ID\n  a new one-time enrollment link (another tablet)"},
	{"technicians list", "zm-central technicians list [flags]\n  the technicians, their roles and passkeys (--json: one JSON object per line)"},
	{"technicians revoke", "zm-central technicians revoke [flags] TECHNICIAN-ID\n  refuse the technician's token and every passkey from now on; their sessions end"},
	{"passkeys list", "zm-central passkeys list [--technician ID] [flags]\n  the passkeys registered on tablets"},
	{"passkeys revoke", "zm-central passkeys revoke [flags] PASSKEY-ID\n  refuse one tablet's passkey from now on; its session ends"},
	{"certificates list", "zm-central certificates list [flags]\n  client certificates issued, with their state and revocation reason\n  (--json: one JSON object per line)"},
	{"certificates revoke", "zm-central certificates revoke --reason REASON [flags] SERIAL\n  revoke a client certificate (key-compromise, cessation-of-operation,\n  affiliation-changed); audited; the CRL lists it"},
	{"firmware allow", "zm-central firmware allow [flags] MANIFEST\n  allow the released image of an image manifest (manifest.json of a UEFI board):\n  devices that attest they booted it may pair; audited"},
	{"firmware deny", "zm-central firmware deny [flags] AUTHENTICODE-SHA256\n  withdraw an allowed image: devices booting it are refused (FIRMWARE_NOT_TRUSTED)"},
	{"firmware list", "zm-central firmware list [flags]\n  the firmware allow-list, denied images included"},
	{"crl", "zm-central crl [flags]\n  the device CA's certificate revocation list (PEM, or --der) on standard output or --out"},
	{"pki status", "zm-central pki status [--json] [flags]\n  the Central Station's own certificates: subject, serial, not-after, days left,\n  a warning within 30 days of expiry"},
	{"pki renew", "zm-central pki renew [--root-key FILE] [--hosts h1,h2] [flags] provisioning-signer|tablet-server\n  re-issue one with a new key (the signer from the provisioning root, the tablet\n  server from the device CA), replaced atomically, audited pki.renewed; the device\n  CA and the provisioning root are not renewable in place (devices hold them)"},
	{"audit export", "zm-central audit export [flags]\n  the audit trail as JSON Lines on standard output"},
	{"backup", "zm-central backup [flags] OUT\n  write a checked copy of the SQLite database to OUT (mode 0600) while serve runs"},
	{"restore", "zm-central restore [flags] BACKUP\n  replace the SQLite database by a checked backup (--force over an existing one)"},
	{"version", "zm-central version\n  the program's version and build time"},
}

func synopsis(name string) string {
	for _, c := range commands {
		if c.name == name {
			return c.synopsis
		}
	}
	return "zm-central " + name
}

// usage is the help of zm-central as a whole.
func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: zm-central COMMAND [flags] [arguments]")
	fmt.Fprintln(w, "")
	for _, c := range commands {
		fmt.Fprintf(w, "  %s\n", strings.ReplaceAll(c.synopsis, "\n", "\n  "))
	}
	fmt.Fprintln(w, "")
	fmt.Fprintln(w, "Flags may follow arguments. 'zm-central COMMAND -h' (or 'zm-central help COMMAND')")
	fmt.Fprintln(w, "lists every flag of COMMAND. --db is sqlite:PATH (default sqlite:DIR/central.db) or")
	fmt.Fprintln(w, "postgres://...; $ZM_CENTRAL_DIR and $ZM_CENTRAL_DB stand for --dir and --db.")
	fmt.Fprintln(w, "Exit status: 0 success, 1 failure, 2 bad usage.")
}

// errUsage is wrapped by every bad-usage error (exit 2).
var errUsage = cli.ErrUsage

// run is main without the process: it returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return cli.Exit(stdout, stderr, "zm-central", usage, dispatch(ctx, args, stdout, stderr))
}

func dispatch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return cli.Usagef("no command")
	}
	cmd, rest := args[0], args[1:]
	sub := ""
	if len(rest) > 0 {
		sub = rest[0]
	}
	switch cmd {
	case "-h", "-help", "--help":
		return flag.ErrHelp
	case "help":
		if len(rest) == 0 {
			return flag.ErrHelp
		}
		return dispatch(ctx, append(append([]string{}, rest...), "-h"), stdout, stderr)
	case "version", "-version", "--version":
		cli.Version(stdout, "zm-central", version.Version, version.BuildTime)
		return nil
	case "init":
		return cmdInit(ctx, rest, stdout)
	case "serve":
		return cmdServe(ctx, rest, stdout, stderr, nil)
	case "devices":
		switch sub {
		case "import":
			return cmdDevicesImport(ctx, rest[1:], stdout)
		case "list":
			return cmdDevicesList(ctx, rest[1:], stdout)
		case "revoke":
			return cmdDevicesRevoke(ctx, rest[1:], stdout)
		case "decommission":
			return cmdDevicesDecommission(ctx, rest[1:], stdout)
		case "label":
			return cmdDevicesLabel(ctx, rest[1:], stdout)
		case "replace":
			return cmdDevicesReplace(ctx, rest[1:], stdout)
		case "verify-audit":
			return cmdDevicesVerifyAudit(ctx, rest[1:], stdout)
		}
	case "technicians":
		switch sub {
		case "add":
			return cmdTechniciansAdd(ctx, rest[1:], stdout)
		case "list":
			return cmdTechniciansList(ctx, rest[1:], stdout)
		case "revoke":
			return cmdTechniciansRevoke(ctx, rest[1:], stdout)
		case "enroll":
			return cmdTechniciansEnroll(ctx, rest[1:], stdout)
		}
	case "passkeys":
		switch sub {
		case "list":
			return cmdPasskeysList(ctx, rest[1:], stdout)
		case "revoke":
			return cmdPasskeysRevoke(ctx, rest[1:], stdout)
		}
	case "certificates":
		switch sub {
		case "list":
			return cmdCertificatesList(ctx, rest[1:], stdout)
		case "revoke":
			return cmdCertificatesRevoke(ctx, rest[1:], stdout)
		}
	case "firmware":
		switch sub {
		case "allow":
			return cmdFirmwareAllow(ctx, rest[1:], stdout)
		case "deny":
			return cmdFirmwareDeny(ctx, rest[1:], stdout)
		case "list":
			return cmdFirmwareList(ctx, rest[1:], stdout)
		}
	case "crl":
		return cmdCRL(ctx, rest, stdout)
	case "pki":
		switch sub {
		case "status":
			return cmdPKIStatus(ctx, rest[1:], stdout)
		case "renew":
			return cmdPKIRenew(ctx, rest[1:], stdout)
		}
	case "audit":
		if sub == "export" {
			return cmdAuditExport(ctx, rest[1:], stdout)
		}
	case "backup":
		return cmdBackup(ctx, rest, stdout)
	case "restore":
		return cmdRestore(ctx, rest, stdout)
	default:
		return cli.Usagef("unknown command %q", cmd)
	}
	if sub == "" || cli.IsHelp(sub) {
		return cli.Usagef("%s: give a subcommand (zm-central help)", cmd)
	}
	return cli.Usagef("unknown %s subcommand %q", cmd, sub)
}

// dbFlags are the flags every database command takes.
type dbFlags struct {
	dir string
	db  string
}

// Environment variables that stand for flags: a DSN with a password must
// not be on the command line, where ps shows it to every user.
const (
	envDir = "ZM_CENTRAL_DIR" // --dir
	envDB  = "ZM_CENTRAL_DB"  // --db
)

// newCommand is a command's flag set, with --dir and --db when f is not
// nil.
func newCommand(name string, f *dbFlags) *cli.Command {
	c := cli.New("zm-central "+name, synopsis(name))
	if f == nil {
		return c
	}
	dir := os.Getenv(envDir)
	if dir == "" {
		dir = "."
	}
	c.StringVar(&f.dir, "dir", dir, "Central Station `directory` (keys, certificates, default database); $"+envDir)
	c.StringVar(&f.db, "db", os.Getenv(envDB), "database `DSN`: sqlite:PATH or postgres://... (default sqlite:DIR/central.db); $"+envDB+" (a DSN with a password must come from there, or the password from PGPASSFILE)")
	return c
}

// dsnHasPassword reports whether a --db value carries a password: a
// postgres:// URL with user:password@, or a key=value string with
// password=.
func dsnHasPassword(dsn string) bool {
	if u, err := url.Parse(dsn); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		if _, set := u.User.Password(); set {
			return true
		}
		if u.Query().Has("password") {
			return true
		}
	}
	return strings.Contains(strings.ToLower(dsn), "password=")
}

// parse parses args (flags anywhere) and checks the number of positional
// arguments; -h gives the command's help.
func parse(c *cli.Command, args []string, minArgs, maxArgs int) error {
	if err := c.Parse(args, minArgs, maxArgs); err != nil {
		return err
	}
	var pwErr error
	c.Visit(func(f *flag.Flag) {
		if f.Name == "db" && dsnHasPassword(f.Value.String()) {
			pwErr = cli.Usagef("%s: --db carries a password, which ps shows to every user of this machine: set $%s instead (or keep the password in PGPASSFILE)", c.Name(), envDB)
		}
	})
	return pwErr
}

func (f dbFlags) dsn() string {
	if f.db != "" {
		return f.db
	}
	return "sqlite:" + filepath.Join(f.dir, dbFile)
}

// open opens the store. An SQLite database must already be a Central
// Station's: a missing, empty, damaged or foreign file is refused, never
// made a new, empty inventory (store.Opts.MustExist).
func (f dbFlags) open(ctx context.Context) (store.Store, error) {
	return store.Open(ctx, f.dsn(), &store.Opts{MustExist: true})
}

// cliActor is the audit actor of command-line operations.
const cliActor = "cli"

// withStore parses a command's arguments, opens the store and runs fn
// with it, closing it afterwards. c has the database flags f.
func withStore(ctx context.Context, c *cli.Command, f *dbFlags, args []string, minArgs, maxArgs int, fn func(st store.Store) error) error {
	if err := parse(c, args, minArgs, maxArgs); err != nil {
		return err
	}
	st, err := f.open(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	return fn(st)
}
