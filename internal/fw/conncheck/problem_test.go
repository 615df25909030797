package conncheck

import (
	"bufio"
	"fmt"
	"strings"
	"testing"

	"github.com/zmonitor/firmware/internal/fw/sys/http1"
)

const revokedBody = `{"type":"urn:zmonitor:problem:certificate-revoked","title":"Forbidden","status":403,"detail":"revoked"}`

var revoked403 = fmt.Sprintf("HTTP/1.1 403 Forbidden\r\nContent-Type: application/problem+json\r\nContent-Length: %d\r\n\r\n%s", len(revokedBody), revokedBody)

func problemAnswer(raw string) (bool, error) {
	br := bufio.NewReader(strings.NewReader(raw))
	h, err := http1.ReadResponseHead(br)
	if err != nil {
		return false, err
	}
	return revokedProblem(br, h), nil
}

// Only the revoked problem's type makes a 403 a revocation.
func TestRevokedProblem(t *testing.T) {
	for raw, want := range map[string]bool{
		revoked403: true,
		strings.Replace(revoked403, "certificate-revoked", "device--revoked", 1):           false,
		"HTTP/1.1 403 Forbidden\r\nContent-Length: 9\r\n\r\nforbidden":                     false,
		"HTTP/1.1 403 Forbidden\r\nContent-Length: 99999\r\n\r\n{}":                        false, // larger than maxProblem
		"HTTP/1.1 403 Forbidden\r\nContent-Length: 30\r\n\r\n{\"type\":\"urn:zmonitor:pro": false,
	} {
		if got, err := problemAnswer(raw); err != nil || got != want {
			t.Errorf("%.60q: %v, %v; want %v", raw, got, err, want)
		}
	}
}

// The 403 body comes from the network: any bytes, no panic.
func FuzzRevokedProblem(f *testing.F) {
	f.Add(revoked403)
	f.Add("HTTP/1.1 403 Forbidden\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"a\":\r\n0\r\n\r\n")
	f.Fuzz(func(t *testing.T, raw string) { _, _ = problemAnswer(raw) })
}
