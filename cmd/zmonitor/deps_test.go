package main

import (
	"os"
	"regexp"
	"testing"

	"github.com/zmonitor/firmware/internal/testkit/deptest"
)

const module = "github.com/zmonitor/firmware"

// firmwareTag is the build tag of the firmware (scripts/build-firmware.sh):
// it leaves host mode out of /init.
const firmwareTag = "zmfirmware"

// firmwareRules are what /init must never link, each with the reason.
var firmwareRules = []deptest.Rule{
	{Match: deptest.Under(module + "/internal/central"), Reason: "Central Station code belongs to the host"},
	{Match: deptest.Under(module + "/internal/tablet"), Reason: "the technician's tablet client belongs to the host"},
	{Match: deptest.Under(module + "/internal/testkit"), Reason: "test support is never shipped"},
	{Match: deptest.Under(module + "/image"), Reason: "image building runs on the build host"},
	{Match: deptest.Under(module + "/qemu"), Reason: "the QEMU board is a test rig"},
	{Match: deptest.Exact("net/http"), Reason: "the device speaks HTTP/1.1 through internal/fw/sys/http1; net/http would be ~2.8 MB of firmware and a large parser exposed to the ward network"},
	{Match: deptest.Exact("regexp"), Reason: "validators and canonjson are written without it; it is large and never needed on the device"},
	{Match: deptest.Exact("database/sql"), Reason: "the device keeps its settings in bbolt; SQL databases are the Central Station's"},
	{Match: deptest.Under("modernc.org"), Reason: "SQLite is the Central Station's (+4 MB)"},
	{Match: deptest.Under("github.com/jackc/pgx"), Reason: "PostgreSQL is the Central Station's"},
	{Match: deptest.Exact("testing"), Reason: "test code is never shipped"},
	{Match: deptest.Exact("html/template"), Reason: "web pages are the Central Station's"},
	{Match: deptest.Under("github.com/makiuchi-d/gozxing"), Reason: "the QR decoder is for tests and the tablet"},
	{Match: deptest.Under("github.com/google/go-tpm-tools"), Reason: "the TPM simulator is cgo and test-only; the firmware is CGO_ENABLED=0 and talks to /dev/tpmrm0 with go-tpm"},
	{Match: deptest.Under("github.com/chromedp"), Reason: "browser automation is for tests"},
	{Match: deptest.Under("github.com/go-webauthn"), Reason: "passkeys are the Central Station's web app"},
	{Match: deptest.Under("github.com/prometheus"), Reason: "metrics are the Central Station's"},
	{Match: deptest.Under(module + "/internal/fw/keys/softkeys"), Reason: "in-memory keys are for development hosts only (zmonitor run -tpm soft): the device's keys never leave the TPM. Host mode is built only without -tags " + firmwareTag},
}

// TestFirmwareLinksOnlyFirmware pins what the shipped /init links
// (linux/arm64, cgo off, the firmware's build tag).
func TestFirmwareLinksOnlyFirmware(t *testing.T) {
	g, err := deptest.Load(".", ".", "linux", "arm64", firmwareTag)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range g.Check(firmwareRules) {
		t.Error(v)
	}
	// Every package of the module it links is on the firmware's side or
	// the protocol both ends speak.
	allowed := []func(string) bool{
		deptest.Exact(module + "/cmd/zmonitor"),
		deptest.Under(module + "/internal/fw"), deptest.Under(module + "/internal/proto"), deptest.Under(module + "/internal/base"),
		deptest.Under(module + "/drivers"), deptest.Under(module + "/board"),
	}
	for _, p := range g.Packages() {
		if !deptest.Under(module)(p) {
			continue
		}
		ok := false
		for _, a := range allowed {
			ok = ok || a(p)
		}
		if !ok {
			t.Errorf("%s is linked into /init but is not firmware, protocol or base code (via %v)", p, g.Path(p))
		}
	}
	// The check must see the firmware's real dependencies, or it checks nothing.
	for _, must := range []string{module + "/internal/fw/engine", "github.com/google/go-tpm/tpm2", "crypto/tls"} {
		if g.Path(must) == nil {
			t.Errorf("%s is not among /init's dependencies: the graph is wrong", must)
		}
	}
}

// The firmware rules hold only for the build that ships: the script that
// makes it must use the tag they are checked with.
func TestBuildScriptBuildsWithTheFirmwareTag(t *testing.T) {
	b, err := os.ReadFile("../../scripts/build-firmware.sh")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^tags=`+firmwareTag+`$`).Match(b) || !regexp.MustCompile(`(?m) build .*-tags "\$tags"`).Match(b) {
		t.Errorf("scripts/build-firmware.sh does not build with -tags %s (tags=%s, go build -tags \"$tags\")", firmwareTag, firmwareTag)
	}
}

// Without the firmware's tag, cmd/zmonitor is the development build with
// host mode: the soft key store rule must catch it, or it checks nothing.
func TestSoftKeysRuleCatchesHostMode(t *testing.T) {
	g, err := deptest.Load(".", ".", "linux", "arm64")
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, v := range g.Check(firmwareRules) {
		found = found || v.Package == module+"/internal/fw/keys/softkeys"
	}
	if !found {
		t.Error("the development build links softkeys, and the firmware rules did not say so")
	}
}
