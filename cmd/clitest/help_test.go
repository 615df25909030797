// Package clitest checks that the six commands behave the same on the
// command line (internal/base/cli): help on standard output with exit 0,
// bad usage on standard error with exit 2, every flag in its command's
// help, flags after arguments, a version command. It builds the real
// binaries.
package clitest

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "clitest")
	if err != nil {
		panic(err)
	}
	cmd := exec.Command("go", "build", "-o", dir+"/", "../zmonitor", "../zm-central", "../zm-pair", "../zm-board", "../zm-image", "../zm-demo")
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		panic("build the commands: " + err.Error())
	}
	bin = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type result struct {
	code           int
	stdout, stderr string
}

func runTool(t *testing.T, tool string, args ...string) result {
	t.Helper()
	cmd := exec.Command(filepath.Join(bin, tool), args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr, cmd.Stdin = &o, &e, strings.NewReader("")
	cmd.Env = append(os.Environ(), "ZM_CENTRAL_DIR=", "ZM_CENTRAL_DB=", "ZM_TECH_TOKEN=")
	err := cmd.Run()
	var ee *exec.ExitError
	r := result{stdout: o.String(), stderr: e.String()}
	switch {
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		t.Fatalf("%s %q: %v", tool, args, err)
	}
	return r
}

// tools are the six commands, each with its commands and the flags their
// help must list.
var tools = []struct {
	name     string
	commands map[string][]string // command (words) -> flags
	helpCmd  bool                // "TOOL help COMMAND" works
}{
	{"zmonitor", map[string][]string{
		"run":    {"-board", "-data", "-tpm", "-anchor", "-device-id", "-serial", "-label", "-listen", "-address", "-screen", "-no-console", "-v"},
		"render": {"-state", "-size", "-o"},
	}, false},
	{"zm-central", map[string][]string{
		"init":                {"-dir", "-hosts", "-technician"},
		"serve":               {"-dir", "-db", "-listen", "-monitor-listen", "-server-url", "-est-listen", "-est-url", "-crl-url", "-device-port", "-trust-device-clock", "-batch-concurrency", "-max-in-flight", "-drain", "-clock-offset", "-device-addr", "-ops-listen", "-log-format", "-log-level", "-allow-unmeasured-dev-firmware"},
		"firmware allow":      {"-dir", "-db"},
		"firmware deny":       {"-dir", "-db"},
		"firmware list":       {"-dir", "-db"},
		"devices import":      {"-dir", "-db"},
		"devices list":        {"-dir", "-db", "-json"},
		"devices revoke":      {"-dir", "-db"},
		"devices label":       {"-dir", "-db"},
		"devices replace":     {"-dir", "-db", "-reason"},
		"technicians add":     {"-dir", "-db"},
		"technicians list":    {"-dir", "-db", "-json"},
		"technicians revoke":  {"-dir", "-db"},
		"certificates list":   {"-dir", "-db", "-device", "-state", "-json"},
		"certificates revoke": {"-dir", "-db", "-reason", "-note"},
		"crl":                 {"-dir", "-db", "-out", "-der"},
		"audit export":        {"-dir", "-db"},
		"backup":              {"-dir", "-db"},
		"restore":             {"-dir", "-db", "-force"},
	}, true},
	{"zm-pair", map[string][]string{
		"scan":   {"-central", "-ca", "-token-file", "-label", "-server-name", "-timeout"},
		"code":   {"-central", "-ca", "-token-file", "-label", "-server-name", "-timeout", "-device", "-address", "-code"},
		"decode": nil,
	}, true},
	{"zm-board", map[string][]string{
		"run":        {"-kernel", "-initrd", "-state", "-fwd", "-guestfwd", "-size", "-append", "-kernel-log", "-cpus"},
		"press":      {"-state"},
		"screenshot": {"-state", "-o"},
	}, true},
	{"zm-image", map[string][]string{
		"build":     {"-kernel", "-init", "-board", "-anchor", "-out", "-version", "-board-name", "-kernel-source"},
		"initramfs": {"-init", "-board", "-anchor", "-out"},
		"verify":    nil,
	}, true},
	{"zm-demo", map[string][]string{
		"": {"-bin", "-out", "-device-id", "-label"},
	}, false},
}

func TestEveryToolSameCommandLine(t *testing.T) {
	for _, tool := range tools {
		t.Run(tool.name, func(t *testing.T) {
			for _, h := range []string{"-h", "-help", "--help", "help"} {
				r := runTool(t, tool.name, h)
				if r.code != 0 || !strings.HasPrefix(r.stdout, "usage:") || r.stderr != "" {
					t.Errorf("%s %s: exit %d, stdout %.60q, stderr %q; want the help on stdout, exit 0", tool.name, h, r.code, r.stdout, r.stderr)
				}
			}
			if r := runTool(t, tool.name, "version"); r.code != 0 || !strings.HasPrefix(r.stdout, tool.name+" ") || r.stderr != "" {
				t.Errorf("%s version: exit %d %q %q", tool.name, r.code, r.stdout, r.stderr)
			}
			if r := runTool(t, tool.name, "frobnicate"); r.code != 2 || r.stderr == "" || r.stdout != "" {
				t.Errorf("%s frobnicate: exit %d, stdout %q, stderr %q; want exit 2 with the complaint on stderr only", tool.name, r.code, r.stdout, r.stderr)
			}
			for command, flags := range tool.commands {
				words := strings.Fields(command)
				asks := [][]string{append(append([]string{}, words...), "-h"), append(append([]string{}, words...), "--help")}
				if tool.helpCmd {
					asks = append(asks, append([]string{"help"}, words...))
				}
				for _, args := range asks {
					r := runTool(t, tool.name, args...)
					if r.code != 0 || !strings.HasPrefix(r.stdout, "usage: "+strings.TrimSpace(tool.name+" "+command)) || r.stderr != "" {
						t.Errorf("%s %q: exit %d, stdout %.80q, stderr %q; want the command's help on stdout, exit 0", tool.name, args, r.code, r.stdout, r.stderr)
						continue
					}
					for _, f := range flags {
						if !strings.Contains(r.stdout, "  "+f+" ") && !strings.Contains(r.stdout, "  "+f+"\n") && !strings.Contains(r.stdout, "  "+f+"\t") {
							t.Errorf("%s %q: help does not list %s:\n%s", tool.name, args, f, r.stdout)
						}
					}
				}
				bad := append(append([]string{}, words...), "--no-such-flag")
				if r := runTool(t, tool.name, bad...); r.code != 2 || !strings.Contains(r.stderr, "no-such-flag") || r.stdout != "" {
					t.Errorf("%s %q: exit %d, stdout %q, stderr %q; want exit 2 naming the flag on stderr", tool.name, bad, r.code, r.stdout, r.stderr)
				}
			}
		})
	}
}

// TestFlagsAfterArguments: a flag after a positional argument is a flag,
// not a second argument.
func TestFlagsAfterArguments(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "central")
	if r := runTool(t, "zm-central", "init", "--dir", dir); r.code != 0 {
		t.Fatal(r.stderr)
	}
	if r := runTool(t, "zm-central", "technicians", "add", "bob", "--dir", dir); r.code != 0 || !strings.Contains(r.stdout, "(bob)") {
		t.Errorf("technicians add bob --dir: exit %d %q %q", r.code, r.stdout, r.stderr)
	}
	if r := runTool(t, "zm-central", "devices", "revoke", "ZM-404", "--dir", filepath.Join(t.TempDir(), "none")); r.code != 1 || !strings.Contains(r.stderr, "does not exist") {
		t.Errorf("devices revoke ID --dir elsewhere: exit %d %q (want the missing database, not a usage error)", r.code, r.stderr)
	}
	if r := runTool(t, "zm-image", "verify", t.TempDir(), "--nope"); r.code != 2 || !strings.Contains(r.stderr, "-nope") {
		t.Errorf("zm-image verify DIR --nope: exit %d %q", r.code, r.stderr)
	}
	// --json lists: one object per line.
	for _, list := range [][]string{{"technicians", "list"}, {"devices", "list"}, {"certificates", "list"}} {
		r := runTool(t, "zm-central", append(list, "--json", "--dir", dir)...)
		if r.code != 0 {
			t.Errorf("%v --json: exit %d %q", list, r.code, r.stderr)
			continue
		}
		for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
			if line == "" {
				continue
			}
			var m map[string]any
			if err := json.Unmarshal([]byte(line), &m); err != nil {
				t.Errorf("%v --json: %q is not a JSON object", list, line)
			}
		}
	}
	r := runTool(t, "zm-central", "technicians", "list", "--json", "--dir", dir)
	if n := strings.Count(r.stdout, `"name":`); n != 2 || strings.Contains(r.stdout, "hash") {
		t.Errorf("technicians list --json: %q", r.stdout)
	}
}
