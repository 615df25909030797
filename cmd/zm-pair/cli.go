package main

import (
	"bufio"
	"context"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/zmonitor/firmware/internal/base/cli"
	"github.com/zmonitor/firmware/internal/base/clock"
	"github.com/zmonitor/firmware/internal/base/version"
	"github.com/zmonitor/firmware/internal/proto/pairing"
	"github.com/zmonitor/firmware/internal/tablet"
)

// Exit codes.
const (
	exitProvisioned = 0 // the device is provisioned (decode: the QR is a pairing QR)
	exitFailed      = 1 // the device or the Central Station said no, or it could not be reached
	exitUsage       = 2 // bad usage, or input refused by the tablet: nothing was sent
)

// tokenEnv is the environment variable that may carry the technician's
// token (never a command-line argument: ps would show it).
const tokenEnv = "ZM_TECH_TOKEN"

// Synopses of the commands (their help adds every flag).
const (
	scanSynopsis   = "zm-pair scan --central URL --ca FILE [flags] IMAGE\n  read the monitor's pairing QR from a picture and ask the Central Station to provision it"
	codeSynopsis   = "zm-pair code --central URL --ca FILE --device ID --address IP[:PORT] [--code AAA-999-AAA] [flags]\n  pair with the code typed from the monitor's screen (read from standard input without --code)"
	decodeSynopsis = "zm-pair decode IMAGE\n  show what the pairing QR in a picture says (no secrets, no network)"
)

const usage = `usage: zm-pair COMMAND [flags] [arguments]

  ` + scanSynopsis + `
  ` + codeSynopsis + `
  ` + decodeSynopsis + `
  zm-pair version
  the program's version and build time

Flags may follow arguments; 'zm-pair COMMAND -h' (or 'zm-pair help COMMAND')
lists every flag of COMMAND. The technician token comes from --token-file
or $ZM_TECH_TOKEN. Exit status: 0 provisioned, 1 failed or refused, 2 usage
or input refused locally (nothing was sent).
`

// env is what run needs from the process, replaceable in tests.
type env struct {
	getenv func(string) string
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	clock  clock.Clock // nil: the system clock
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return env{getenv: os.Getenv, stdin: os.Stdin, stdout: stdout, stderr: stderr}.run(ctx, args)
}

func usagef(format string, args ...any) error { return cli.Usagef(format, args...) }

func (e env) run(ctx context.Context, args []string) int {
	return e.exit(e.dispatch(ctx, args))
}

func (e env) dispatch(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return usagef("no command")
	}
	switch args[0] {
	case "scan":
		return e.scan(ctx, args[1:])
	case "code":
		return e.code(ctx, args[1:])
	case "decode":
		return e.decode(args[1:])
	case "version", "-version", "--version":
		cli.Version(e.stdout, "zm-pair", version.Version, version.BuildTime)
		return nil
	case "-h", "-help", "--help":
		return flag.ErrHelp
	case "help":
		if len(args) == 1 {
			return flag.ErrHelp
		}
		return e.dispatch(ctx, append(append([]string{}, args[1:]...), "-h"))
	}
	return usagef("unknown command %q", args[0])
}

// outcomeError carries the exit code of a pairing that ended (its outcome
// is already printed).
type outcomeError struct{ code int }

func (outcomeError) Error() string { return "pairing did not succeed" }

func (e env) exit(err error) int {
	var (
		ie *tablet.InputError
		oe outcomeError
	)
	switch {
	case err == nil:
		return exitProvisioned
	case errors.As(err, &oe):
		return oe.code
	case errors.Is(err, flag.ErrHelp), errors.Is(err, cli.ErrUsage):
		return cli.Exit(e.stdout, e.stderr, "zm-pair", func(w io.Writer) { fmt.Fprint(w, usage) }, err)
	case errors.As(err, &ie):
		fmt.Fprintf(e.stderr, "NOT SENT: %s\n  Details: %s\n", ie.Problem.Headline(), ie.Problem.Message)
		return exitUsage
	case errors.Is(err, tablet.ErrNoQR), errors.Is(err, tablet.ErrUnreadableQR), errors.Is(err, tablet.ErrNotPairingQR):
		fmt.Fprintf(e.stderr, "NOT SENT: %v\n  What to do: Re-scan QR code.\n", err)
		return exitUsage
	default:
		fmt.Fprintf(e.stderr, "zm-pair: %v\n", err)
		return exitFailed
	}
}

// common are the flags of scan and code.
type common struct {
	central, ca, tokenFile, label, serverName string
	timeout                                   time.Duration
}

func (c *common) register(fs *flag.FlagSet) {
	fs.StringVar(&c.central, "central", "", "Central Station tablet API, e.g. https://127.0.0.1:8443")
	fs.StringVar(&c.ca, "ca", "", "PEM file of the CA the Central Station's certificate chains to (zm-central's device-ca.pem)")
	fs.StringVar(&c.tokenFile, "token-file", "", "file holding the technician token (default: $"+tokenEnv+")")
	fs.StringVar(&c.label, "label", "", "device label to set (default: the inventory's)")
	fs.StringVar(&c.serverName, "server-name", "", "name to expect in the Central Station's certificate (default: the URL's host)")
	fs.DurationVar(&c.timeout, "timeout", 11*time.Minute, "give up following the pairing after this long")
}

func newFlagSet(name, synopsis string) *cli.Command { return cli.New("zm-pair "+name, synopsis) }

// parse parses args (flags anywhere) with n positional arguments; -h gives
// the command's help.
func parse(c *cli.Command, args []string, n int) error {
	return c.Parse(args, n, n)
}

// client builds the tablet client from the flags.
func (e env) client(c *common) (*tablet.Client, error) {
	if c.central == "" {
		return nil, usagef("--central is required")
	}
	if c.ca == "" {
		return nil, usagef("--ca is required (the Central Station's CA, PEM)")
	}
	pool, err := readCA(c.ca)
	if err != nil {
		return nil, err
	}
	tok, err := e.token(c.tokenFile)
	if err != nil {
		return nil, err
	}
	cl, err := tablet.New(c.central, tok, &tablet.Opts{RootCAs: pool, ServerName: c.serverName, Clock: e.clock})
	if err != nil {
		return nil, usagef("%v", err)
	}
	return cl, nil
}

// readCA reads a PEM file of certificates.
func readCA(path string) (*x509.CertPool, error) {
	b, err := readSmall(path, 1<<20)
	if err != nil {
		return nil, fmt.Errorf("--ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, usagef("--ca %s: no PEM certificate in it", path)
	}
	return pool, nil
}

// token reads the technician token from the file, else the environment.
// It is never printed.
func (e env) token(file string) (string, error) {
	var tok string
	switch {
	case file != "":
		if fi, err := os.Stat(file); err == nil && fi.Mode().Perm()&0o077 != 0 {
			fmt.Fprintf(e.stderr, "zm-pair: warning: %s is readable by others (mode %s): chmod 600 it\n", file, fi.Mode().Perm())
		}
		b, err := readSmall(file, 4096)
		if err != nil {
			return "", fmt.Errorf("--token-file: %w", err)
		}
		tok = strings.TrimSpace(string(b))
	case e.getenv(tokenEnv) != "":
		tok = strings.TrimSpace(e.getenv(tokenEnv))
	default:
		return "", usagef("no technician token: give --token-file FILE or set $%s", tokenEnv)
	}
	if tok == "" {
		return "", usagef("the technician token is empty")
	}
	return tok, nil
}

func readSmall(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, limit)
	}
	return b, nil
}

// scanFile reads a picture and returns the pairing QR's text.
func scanFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, usagef("picture: %v", err)
	}
	defer f.Close()
	img, err := tablet.ReadImage(f)
	if err != nil {
		return nil, usagef("%s: %v", path, err)
	}
	return tablet.ScanImage(img)
}

func (e env) now() time.Time {
	if e.clock != nil {
		return e.clock.Now()
	}
	return time.Now()
}

func (e env) decode(args []string) error {
	fs := newFlagSet("decode", decodeSynopsis)
	if err := parse(fs, args, 1); err != nil {
		return err
	}
	text, err := scanFile(fs.Arg(0))
	if err != nil {
		return err
	}
	q, err := pairing.ParseQR(text)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "Z Monitor pairing QR: %s\n", tablet.Summary(q, e.now()))
	return nil
}

func (e env) scan(ctx context.Context, args []string) error {
	var c common
	fs := newFlagSet("scan", scanSynopsis)
	c.register(fs.FlagSet)
	if err := parse(fs, args, 1); err != nil {
		return err
	}
	cl, err := e.client(&c)
	if err != nil {
		return err
	}
	text, err := scanFile(fs.Arg(0))
	if err != nil {
		return err
	}
	q, err := pairing.ParseQR(text)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "Scanned %s\n", tablet.Summary(q, e.now()))
	return e.pair(ctx, cl, &c, tablet.Request{QR: text, Label: c.label})
}

func (e env) code(ctx context.Context, args []string) error {
	var c common
	var device, address, code string
	fs := newFlagSet("code", codeSynopsis)
	c.register(fs.FlagSet)
	fs.StringVar(&device, "device", "", "device ID shown on the monitor, e.g. ZM-001")
	fs.StringVar(&address, "address", "", "device address shown on the monitor, IP or IP:PORT")
	fs.StringVar(&code, "code", "", "pairing code shown on the monitor (default: read from standard input)")
	if err := parse(fs, args, 0); err != nil {
		return err
	}
	if device == "" || address == "" {
		return usagef("code: --device and --address are required")
	}
	if code == "" {
		fmt.Fprint(e.stderr, "Pairing code: ")
		line, err := bufio.NewReader(io.LimitReader(e.stdin, 256)).ReadString('\n')
		if err != nil && line == "" {
			return usagef("code: no pairing code given (--code, or one line on standard input)")
		}
		code = strings.TrimSpace(line)
	}
	req := tablet.Request{DeviceID: device, Address: address, PairingCode: code, Label: c.label}
	// The code's syntax first, before anything else can fail: a typo is
	// explained at once and costs the device no attempt.
	if err := req.Check(); err != nil {
		return err
	}
	cl, err := e.client(&c)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "Pairing %s at %s with the typed code\n", device, address)
	return e.pair(ctx, cl, &c, req)
}

// pair runs the pairing, printing the timeline and the outcome.
func (e env) pair(ctx context.Context, cl *tablet.Client, c *common, req tablet.Request) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req.Progress = func(ev tablet.Event) { fmt.Fprintln(e.stdout, tablet.FormatEvent(ev)) }
	res, err := cl.Pair(ctx, req)
	var ae *tablet.APIError
	switch {
	case errors.As(err, &ae):
		fmt.Fprint(e.stdout, tablet.Outcome(res, c.label))
		return outcomeError{exitFailed}
	case err != nil:
		return err
	}
	fmt.Fprint(e.stdout, tablet.Outcome(res, c.label))
	if !res.Provisioned() {
		return outcomeError{exitFailed}
	}
	return nil
}
