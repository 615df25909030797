package estclient

import (
	"bufio"
	"strings"
	"testing"

	"github.com/zmonitor/firmware/internal/fw/sys/http1"
)

// The EST server's refusal body comes from the network: any bytes, no
// panic, and never more than 200 bytes of text kept.
func FuzzProblemOf(f *testing.F) {
	f.Add("HTTP/1.1 403 Forbidden\r\nContent-Type: application/problem+json\r\n\r\n", `{"type":"urn:zmonitor:problem:certificate-revoked","title":"Forbidden","status":403,"detail":"certificate revoked"}`)
	f.Add("HTTP/1.1 400 Bad Request\r\nContent-Type: application/problem+json; charset=utf-8\r\n\r\n", `{"title":"`+strings.Repeat("x", 300)+`"}`)
	f.Fuzz(func(t *testing.T, head, body string) {
		h, err := http1.ReadResponseHead(bufio.NewReader(strings.NewReader(head)))
		if err != nil {
			return
		}
		typ, detail := problemOf(h, []byte(body))
		if len(typ) > 200 || len(detail) > 200 {
			t.Fatalf("kept %d and %d bytes", len(typ), len(detail))
		}
	})
}
