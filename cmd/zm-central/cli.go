package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/zmonitor/firmware/internal/central/store"
)

const usage = `usage: zm-central COMMAND [flags]

  init --dir DIR [--hosts h1,h2] [--technician NAME]
        create the device CA, provisioning root and signer, tablet server
        certificate, database and a first technician (token printed once)
  devices import [--dir DIR] [--db DSN] FILE...   enrollment records (JSON or CSV)
  devices list   [--dir DIR] [--db DSN]
  devices revoke [--dir DIR] [--db DSN] DEVICE-ID
  devices label  [--dir DIR] [--db DSN] DEVICE-ID LABEL
  technicians add    [--dir DIR] [--db DSN] NAME   (token printed once)
  technicians list   [--dir DIR] [--db DSN]
  technicians revoke [--dir DIR] [--db DSN] TECHNICIAN-ID
  certificates list [--dir DIR] [--db DSN] [--device ID] [--state issued|in-use|revoked]
        client certificates issued, with their state and revocation reason
  audit export [--dir DIR] [--db DSN]              JSON Lines to stdout
  serve [--dir DIR] [--db DSN] [--listen 127.0.0.1:8443]
        [--monitor-listen 127.0.0.1:9443] [--server-url URL] ...

--db is sqlite:PATH (default sqlite:DIR/central.db) or postgres://...
`

// errUsage is returned for a malformed command line.
var errUsage = errors.New("bad usage")

// run is main without the process: it returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	err := dispatch(ctx, args, stdout, stderr)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprint(stdout, usage)
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintf(stderr, "zm-central: %v\n\n%s", err, usage)
		return 2
	default:
		fmt.Fprintf(stderr, "zm-central: %v\n", err)
		return 1
	}
}

func dispatch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: no command", errUsage)
	}
	cmd, rest := args[0], args[1:]
	sub := ""
	if len(rest) > 0 {
		sub = rest[0]
	}
	switch cmd {
	case "help", "-h", "--help":
		return flag.ErrHelp
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
		case "label":
			return cmdDevicesLabel(ctx, rest[1:], stdout)
		case "replace":
			return cmdDevicesReplace(ctx, rest[1:], stdout)
		}
	case "technicians":
		switch sub {
		case "add":
			return cmdTechniciansAdd(ctx, rest[1:], stdout)
		case "list":
			return cmdTechniciansList(ctx, rest[1:], stdout)
		case "revoke":
			return cmdTechniciansRevoke(ctx, rest[1:], stdout)
		}
	case "certificates":
		if sub == "list" {
			return cmdCertificatesList(ctx, rest[1:], stdout)
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
		return fmt.Errorf("%w: unknown command %q", errUsage, cmd)
	}
	return fmt.Errorf("%w: unknown %s subcommand %q", errUsage, cmd, sub)
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

func newFlagSet(name string, f *dbFlags) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	dir := os.Getenv(envDir)
	if dir == "" {
		dir = "."
	}
	fs.StringVar(&f.dir, "dir", dir, "Central Station directory (keys, certificates, default database); $"+envDir)
	fs.StringVar(&f.db, "db", os.Getenv(envDB), "database: sqlite:PATH or postgres://... (default sqlite:DIR/central.db); $"+envDB+" (a DSN with a password must come from there, or the password from PGPASSFILE)")
	return fs
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

// parse parses args and checks the number of positional arguments.
func parse(fs *flag.FlagSet, args []string, minArgs, maxArgs int) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %s: %v", errUsage, fs.Name(), err)
	}
	if n := fs.NArg(); n < minArgs || (maxArgs >= 0 && n > maxArgs) {
		return fmt.Errorf("%w: %s: wrong number of arguments", errUsage, fs.Name())
	}
	var pwErr error
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "db" && dsnHasPassword(f.Value.String()) {
			pwErr = fmt.Errorf("%w: %s: --db carries a password, which ps shows to every user of this machine: set $%s instead (or keep the password in PGPASSFILE)", errUsage, fs.Name(), envDB)
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

// withStore parses a command's database flags and arguments, opens the store
// and runs fn with it, closing it afterwards.
func withStore(ctx context.Context, name string, args []string, minArgs, maxArgs int, fn func(st store.Store, fs *flag.FlagSet) error) error {
	var f dbFlags
	fs := newFlagSet(name, &f)
	if err := parse(fs, args, minArgs, maxArgs); err != nil {
		return err
	}
	st, err := f.open(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	return fn(st, fs)
}
