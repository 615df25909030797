package settings_test

import (
	"testing"

	"github.com/zmonitor/firmware/internal/fw/settings"
)

// TestServerHost: the host the PROVISIONED screen and the audit trail
// show, port included, never the path or anything that would not parse.
func TestServerHost(t *testing.T) {
	for url, want := range map[string]string{
		"https://monitoring.hospital.test:8443/api": "monitoring.hospital.test:8443",
		"https://10.0.0.5":                          "10.0.0.5",
		"https://[fd00::1]:8443":                    "[fd00::1]:8443",
		"https://cs.example:port":                   "", // does not parse
		"":                                          "",
	} {
		if got := (settings.Provisioning{ServerURL: url}).ServerHost(); got != want {
			t.Errorf("ServerHost(%q) = %q, want %q", url, got, want)
		}
	}
}
