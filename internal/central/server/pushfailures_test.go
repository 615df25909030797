package server

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/zmonitor/firmware/internal/central/pusher"
	"github.com/zmonitor/firmware/internal/proto/failure"
	"github.com/zmonitor/firmware/internal/proto/tabletwire"
)

// closedAddr is a local address where nothing listens (connection
// refused), as a device's provisioning port is outside READY_TO_PAIR.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := l.Addr().String()
	l.Close()
	return a
}

// TestPushFailuresSayWhatHappened runs the real pusher against software
// devices behind the real endpoint: every way a push can fail before the
// device opens a pairing exchange has its own code (title and action come
// with it), and releases the token and code so that the same QR can be
// scanned again; a failure after the hello keeps them claimed.
func TestPushFailuresSayWhatHappened(t *testing.T) {
	unreachable := func(c *pusher.Config) {
		c.Dial = func(context.Context, string, string) (net.Conn, error) {
			return nil, errors.New("connect: network is unreachable")
		}
	}
	for _, tc := range []struct {
		name     string
		mode     deviceMode
		tweak    func(*pusher.Config)
		redirect string // "other": the address of another device; "closed": nothing listens
		want     failure.Code
		message  string
		released bool
	}{
		{"device trusts another Central Station", trustsAnotherStation, nil, "", failure.SignerUntrusted, "trusts another Central Station", true},
		{"another device at the address", provisions, nil, "other", failure.IdentityMismatch, "is not ZM-001", true},
		{"port closed, QR expired", provisions, func(c *pusher.Config) { c.Now = func() time.Time { return t0.Add(time.Hour) } }, "closed", failure.SessionExpired, "QR expired at", true},
		{"port closed, QR still valid", provisions, func(c *pusher.Config) { c.Now = func() time.Time { return t0 } }, "closed", failure.DeviceNotListening, "provisioning port is closed", true},
		{"hello refused: session over", sessionOver, nil, "", failure.SessionExpired, "refused the hello", true},
		{"network unreachable", provisions, unreachable, "", failure.ConnectionFailed, "network is unreachable", true},
		{"gone after the hello", provisions, failSecondDial, "", failure.ConnectionFailed, "device went away", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := newStation(t)
			e := st.env(t, "sqlite:"+t.TempDir()+"/c.db")
			d := st.device(t, e, "ZM-001", tc.mode, tc.tweak)
			switch tc.redirect {
			case "other":
				st.device(t, e, "ZM-002", provisions, nil)
				st.addrs["ZM-001"] = st.addrs["ZM-002"]
			case "closed":
				st.addrs["ZM-001"] = closedAddr(t)
			}
			qr := string(d.sess.QR().Marshal())
			id := e.post(d, "")
			e.srv.Wait()
			v := e.pairing(id)
			if v.State != tabletwire.StateFailed || v.Result == nil || v.Result.Code != tc.want.String() ||
				v.Result.Title != tc.want.Title() || v.Result.Action != tc.want.UserAction() || !strings.Contains(v.Result.Message, tc.message) {
				t.Fatalf("pairing %+v result %+v; want %s saying %q", v, v.Result, tc.want, tc.message)
			}
			if v.ClaimsReleased != tc.released {
				t.Errorf("claims released = %v, want %v", v.ClaimsReleased, tc.released)
			}
			if got := audited(t, e.st, "pairing.claims_released", id); got != tc.released {
				t.Errorf("pairing.claims_released audited = %v, want %v", got, tc.released)
			}
			// The same QR again: accepted when the claims were released,
			// refused as used otherwise.
			w := e.do(http.MethodPost, tabletwire.PairingsPath, e.token, tabletwire.PairingRequest{QR: qr})
			if tc.released && w.Code != http.StatusAccepted {
				t.Errorf("same QR after a push that never reached the device: %d %s", w.Code, w.Body)
			}
			if !tc.released {
				wantRefusal(t, w, TokenAlreadyUsed)
			}
			e.srv.Wait()
		})
	}
}
