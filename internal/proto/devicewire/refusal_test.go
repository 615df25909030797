package devicewire

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/zmonitor/firmware/internal/proto/failure"
)

func TestRefusalRoundTripAndRefusals(t *testing.T) {
	nonce := bytes.Repeat([]byte{7}, NonceSize)
	b, _ := json.Marshal(NewRefusal(nonce, failure.FirmwareNotTrusted, "image not on the allow-list"))
	r, code, got, err := ParseRefusal(b)
	if err != nil || code != failure.FirmwareNotTrusted || !SameNonce(got, nonce) || r.Reason != "image not on the allow-list" {
		t.Fatalf("ParseRefusal = %+v %v %x %v", r, code, got, err)
	}
	for name, body := range map[string]string{
		"another code":  strings.Replace(string(b), "FIRMWARE_NOT_TRUSTED", "CONNECTION_FAILED", 1),
		"unknown code":  strings.Replace(string(b), "FIRMWARE_NOT_TRUSTED", "NOPE", 1),
		"another type":  strings.Replace(string(b), RefusalType, "zmonitor-refusal-v2", 1),
		"short nonce":   `{"type":"zmonitor-refusal-v1","sessionNonce":"AAAA","code":"FIRMWARE_NOT_TRUSTED"}`,
		"unknown field": strings.Replace(string(b), `"code"`, `"x":1,"code"`, 1),
		"case-folded":   strings.Replace(string(b), `"code"`, `"Code"`, 1),
		"too long":      `{"type":"zmonitor-refusal-v1","reason":"` + strings.Repeat("x", MaxRefusal) + `"}`,
		"not JSON":      "\x00",
	} {
		if _, _, _, err := ParseRefusal([]byte(body)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if SameNonce(nonce, nonce[:31]) || SameNonce(nonce, bytes.Repeat([]byte{8}, NonceSize)) {
		t.Error("SameNonce accepts another nonce")
	}
}

func FuzzParseRefusal(f *testing.F) {
	b, _ := json.Marshal(NewRefusal(make([]byte, NonceSize), failure.FirmwareNotTrusted, "x"))
	f.Add(b)
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, code, nonce, err := ParseRefusal(b)
		if err == nil && (code == failure.None || len(nonce) != NonceSize || r.Type != RefusalType) {
			t.Fatalf("accepted %+v %v %d", r, code, len(nonce))
		}
	})
}
