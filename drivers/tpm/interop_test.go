package tpm

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/zmonitor/firmware/internal/proto/enroll"
)

// TestInteropWithTPM2Tools provisions a device on swtpm, writes its
// enrollment record, and has scripts/tpm-interop.sh read the persistent
// public keys with Debian's tpm2-tools from the same state and compare.
func TestInteropWithTPM2Tools(t *testing.T) {
	if _, err := exec.LookPath("tpm2_readpublic"); err != nil {
		t.Skip("tpm2-tools is not installed (Debian: apt-get install tpm2-tools; scripts/install-deps.sh does it): skipping the interop check")
	}
	b := startSwtpm(t, false)
	s, err := New(b.open(t), provision)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := enroll.New(s.Identity().Public(), s.PayloadKey().PublicKey(), "ZM-001", "SN-2024-001234", "1.2.3")
	if err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
	b.stop(t) // the script runs its own swtpm on the state

	good, err := rec.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	swapped := rec
	swapped.IdentityKey, swapped.PayloadKey = rec.PayloadKey, rec.IdentityKey
	bad, _ := swapped.Marshal()

	_, self, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(self), "..", "..", "scripts", "tpm-interop.sh")
	run := func(record []byte) (string, error) {
		p := filepath.Join(t.TempDir(), "record.json")
		if err := os.WriteFile(p, record, 0o600); err != nil {
			t.Fatal(err)
		}
		port := strconv.Itoa(freePortPair(t))
		out, err := exec.Command("bash", script, filepath.Join(b.dir, "state"), p, port).CombinedOutput()
		return string(out), err
	}
	out, err := run(good)
	if err != nil {
		t.Fatalf("interop script: %v\n%s", err, out)
	}
	if strings.Count(out, ": match") != 2 {
		t.Fatalf("interop output:\n%s", out)
	}
	t.Logf("tpm2-tools agrees:\n%s", out)
	out, err = run(bad)
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(out, "MISMATCH") {
		t.Fatalf("swapped record: err %v, output:\n%s", err, out)
	}
}

// freePortPair finds a port p with p+1 free as well (swtpm's control port).
func freePortPair(t testing.TB) int {
	t.Helper()
	for range 20 {
		p := freePort(t)
		if l, err := netListen(p + 1); err == nil {
			_ = l.Close()
			return p
		}
	}
	t.Fatal("no free pair of TCP ports")
	return 0
}
