package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBadSettingsRefused: settings that would silently mean something else
// (a tablet certificate with no name, a bound of 0 or less that the server
// would replace by its default, a negative drain) are refused as bad usage
// (exit 2) with the flag named, before anything is created.
func TestBadSettingsRefused(t *testing.T) {
	dir, _ := initCentral(t)
	serve := func(extra ...string) []string {
		return append([]string{"serve", "--dir", dir, "--monitor-listen", "127.0.0.1:0", "--listen", "127.0.0.1:0"}, extra...)
	}
	newDir := filepath.Join(t.TempDir(), "new")
	for _, tc := range []struct {
		args []string
		why  string
	}{
		{[]string{"init", "--dir", newDir, "--hosts", ""}, "--hosts: give at least one name"},
		{[]string{"init", "--dir", newDir, "--hosts", "  "}, "--hosts: give at least one name"},
		{[]string{"init", "--dir", newDir, "--hosts", "localhost,,127.0.0.1"}, `--hosts: empty name`},
		{[]string{"init", "--dir", newDir, "--hosts", "central hospital"}, `neither an IP address nor a DNS name`},
		{[]string{"init", "--dir", newDir, "--hosts", "bad_name.example"}, `neither an IP address nor a DNS name`},
		{[]string{"init", "--dir", newDir, "--technician", ""}, "--technician: a name is required"},
		{serve("--max-in-flight", "-1"), "--max-in-flight -1"},
		{serve("--max-in-flight", "0"), "--max-in-flight 0"},
		{serve("--batch-concurrency", "0"), "--batch-concurrency 0"},
		{serve("--batch-concurrency", "-3"), "--batch-concurrency -3"},
		{serve("--batch-concurrency", "8", "--max-in-flight", "4"), "--batch-concurrency 8 is more than --max-in-flight 4"},
		{serve("--drain", "-1s"), "--drain -1s"},
		{serve("--device-port", "0"), "--device-port 0"},
		{serve("--est-renewals-per-hour", "0"), "--est-renewals-per-hour 0"},
		{serve("--device-port", "70000"), "--device-port 70000"},
	} {
		code, out, errOut := runCLI(t, tc.args...)
		if code != 2 || !strings.Contains(errOut, tc.why) {
			t.Errorf("%v: exit %d, stderr %q, stdout %q; want 2 saying %q", tc.args[1:], code, errOut, out, tc.why)
		}
	}
	if _, err := os.Stat(newDir); err == nil {
		t.Error("a refused init created its directory")
	}
	// Good values still work.
	code, out, errOut := runCLI(t, "init", "--dir", newDir, "--hosts", "central.hospital.example, 10.0.0.2,localhost")
	if code != 0 {
		t.Fatalf("init with good hosts: %d %s %s", code, out, errOut)
	}
	c, err := loadCert(newDir, tabletCert)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(c.DNSNames, ",") != "central.hospital.example,localhost" || len(c.IPAddresses) != 1 || c.IPAddresses[0].String() != "10.0.0.2" {
		t.Errorf("tablet certificate names %v %v", c.DNSNames, c.IPAddresses)
	}
}
