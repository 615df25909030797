package server

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/zmonitor/firmware/internal/central/store"
	"github.com/zmonitor/firmware/internal/proto/tabletwire"
)

// TestBadTextRefusedAndRecorded: a NUL or invalid UTF-8 anywhere in a
// request is refused with its own code, never a 500, on both backends
// (PostgreSQL refuses both in TEXT columns, SQLite keeps them), and the
// refusal is recorded (a refused pairing and its audit record).
func TestBadTextRefusedAndRecorded(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn string) {
		e := newEnvAt(t, dsn, &fakeProv{}, nil)
		d := e.enroll("ZM-001")
		code := d.session(t, t0).Code().Display()
		qr := d.qr(t, t0)
		for _, tc := range []struct {
			name string
			body string
			want Refusal
		}{
			{"NUL in deviceId", `{"deviceId":"ZM-001\u0000","address":"192.0.2.10","pairingCode":"` + code + `"}`, DeviceUnknown},
			{"invalid UTF-8 in deviceId", "{\"deviceId\":\"ZM-\xff\",\"address\":\"192.0.2.10\",\"pairingCode\":\"" + code + "\"}", BadRequest},
			{"NUL in address", `{"deviceId":"ZM-001","address":"192.0.2.10\u0000","pairingCode":"` + code + `"}`, AddressInvalid},
			{"NUL in pairingCode", `{"deviceId":"ZM-001","address":"192.0.2.10","pairingCode":"ABC\u0000123-DEF"}`, CodeInvalid},
			{"NUL in label", `{"qr":` + jsonString(qr) + `,"label":"ICU\u0000"}`, BadRequest},
			{"NUL in the QR", `{"qr":` + jsonString(strings.Replace(qr, `"ZM-001"`, `"ZM-001\u0000"`, 1)) + `}`, QRInvalid},
			{"invalid UTF-8 in a member name", "{\"q\xffr\":\"x\"}", BadRequest},
			{"invalid UTF-8 in a batch", "{\"items\":[{\"qr\":\"\xc3\"}]}", BadRequest},
		} {
			t.Run(tc.name, func(t *testing.T) {
				path := tabletwire.PairingsPath
				if strings.HasPrefix(tc.body, `{"items"`) {
					path = tabletwire.BatchesPath
				}
				w := e.do(http.MethodPost, path, e.token, tc.body)
				er := wantRefusal(t, w, tc.want)
				if er.PairingID == "" {
					t.Fatalf("refusal not recorded: %s", w.Body)
				}
				if v := e.pairing(er.PairingID); v.State != tabletwire.StateRefused || v.Result == nil || v.Result.Code != tc.want.String() {
					t.Errorf("recorded refusal = %+v", v)
				}
				if !audited(t, e.st, "pairing.refused", er.PairingID) {
					t.Errorf("no pairing.refused audit record for %s", er.PairingID)
				}
			})
		}
		for _, path := range []string{"/v1/pairings/p-%00", "/v1/pairings/p-%ff", "/v1/batches/b-%00", "/v1/batches/b-%c3",
			"/v1/pairings/" + strings.Repeat("0", 40), "/v1/pairings/p-" + strings.Repeat("A", 32)} {
			w := e.do(http.MethodGet, path, e.token, nil)
			wantRefusal(t, w, NotFound)
		}
		// The store answers bad text the same way on both backends, never
		// with a driver error.
		ctx := context.Background()
		if _, err := e.st.Device(ctx, "ZM\x00"); !isNotFound(err) {
			t.Errorf("Device with a NUL: %v", err)
		}
		if _, err := e.st.Pairing(ctx, "p-\xff"); !isNotFound(err) {
			t.Errorf("Pairing with invalid UTF-8: %v", err)
		}
		if err := e.st.ClaimCode(ctx, "ZM-001\x00", code); err == nil || !strings.Contains(err.Error(), store.ErrInvalidText.Error()) {
			t.Errorf("ClaimCode with a NUL: %v", err)
		}
		if err := e.st.Audit(ctx, store.AuditRecord{Actor: "t", Event: "x", Detail: "a\x00b\xff"}); err != nil {
			t.Errorf("audit of bad text: %v", err)
		}
	})
}

func isNotFound(err error) bool {
	return err != nil && strings.Contains(err.Error(), store.ErrNotFound.Error())
}

func jsonString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"', '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// audited reports whether the audit trail has event with detail naming
// pairingID.
func audited(t *testing.T, st store.Store, event, pairingID string) bool {
	t.Helper()
	found := false
	err := st.ExportAudit(context.Background(), func(r store.AuditRecord) error {
		found = found || r.Event == event && strings.Contains(r.Detail, "pairing="+pairingID)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}
