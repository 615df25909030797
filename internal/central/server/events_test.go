package server

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/zmonitor/firmware/internal/base/clock"
	"github.com/zmonitor/firmware/internal/central/store"
	"github.com/zmonitor/firmware/internal/proto/tabletwire"
)

// follow opens the progress stream of pairing id on h with token and
// returns the views it sent, in order.
func follow(t *testing.T, h http.Handler, id, token string) ([]tabletwire.PairingView, error) {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+tabletwire.PairingEventsPath(id), nil)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", tabletwire.EventStreamType)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, &httpStatusError{resp.StatusCode}
	}
	if ct := resp.Header.Get("Content-Type"); ct != tabletwire.EventStreamType {
		t.Errorf("Content-Type %q", ct)
	}
	var views []tabletwire.PairingView
	err = tabletwire.ReadEvents(resp.Body, func(v tabletwire.PairingView) error { views = append(views, v); return nil })
	return views, err
}

type httpStatusError struct{ code int }

func (e *httpStatusError) Error() string { return http.StatusText(e.code) }

func progressOf(vs []tabletwire.PairingView) []string {
	var out []string
	for _, v := range vs {
		out = append(out, v.State+"/"+v.DeviceState+"/"+v.Step)
	}
	return out
}

// TestEventsPushEveryStep: the stream starts with the pairing as it
// stands, sends each step the provisioner reports as it happens, and ends
// with the final view.
func TestEventsPushEveryStep(t *testing.T) {
	prov := &fakeProv{gate: make(chan struct{}), entered: make(chan string, 1)}
	e := newEnv(t, prov, nil)
	subscribed := make(chan string, 1)
	e.srv.hub.streaming = func(id string) { subscribed <- id }
	d := e.enroll("ZM-001")
	w := e.do(http.MethodPost, tabletwire.PairingsPath, e.token, tabletwire.PairingRequest{QR: d.qr(t, t0)})
	acc := decode[tabletwire.Accepted](t, w)
	<-prov.entered // running, step "connecting", held at the gate
	done := make(chan struct{})
	var views []tabletwire.PairingView
	var err error
	go func() {
		defer close(done)
		views, err = follow(t, e.srv.Handler(), acc.PairingID, e.token)
	}()
	// The gate opens once the stream has sent the pairing as it stood.
	<-subscribed
	close(prov.gate)
	<-done
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"running//connecting", "running/APPLYING_CONFIG/push", "succeeded/APPLYING_CONFIG/push"}
	if got := progressOf(views); len(got) != len(want) || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Errorf("views %v, want %v", got, want)
	}
}

// TestEventsOfAnotherTechnician: a technician cannot follow, nor read,
// another technician's pairing; an operator can.
func TestEventsOfAnotherTechnician(t *testing.T) {
	e := newEnv(t, nil, nil)
	d := e.enroll("ZM-001")
	acc := decode[tabletwire.Accepted](t, e.do(http.MethodPost, tabletwire.PairingsPath, e.token, tabletwire.PairingRequest{QR: d.qr(t, t0)}))
	e.srv.Wait()
	bob := e.addTechnician("Bob")
	if _, err := follow(t, e.srv.Handler(), acc.PairingID, bob.Token); err == nil {
		t.Error("Bob followed Ada's pairing")
	}
	wantRefusal(t, e.do(http.MethodGet, tabletwire.PairingPath(acc.PairingID), bob.Token, nil), NotFound)
	op := e.addTechnician("Olga")
	if err := e.st.SetTechnicianRole(context.Background(), op.ID, store.RoleOperator); err != nil {
		t.Fatal(err)
	}
	views, err := follow(t, e.srv.Handler(), acc.PairingID, op.Token)
	if err != nil || len(views) != 1 || views[0].State != tabletwire.StateSucceeded {
		t.Errorf("operator's stream of a finished pairing: %v, %v; want the final view alone", progressOf(views), err)
	}
}

// TestEventsFromAnotherReplica: a stream on a replica that does not run
// the job reads the store (EventsResync) and ends with the outcome.
func TestEventsFromAnotherReplica(t *testing.T) {
	dsn := "sqlite:" + filepath.Join(t.TempDir(), "c.db")
	prov := &fakeProv{gate: make(chan struct{}), entered: make(chan string, 1)}
	a := newEnvAt(t, dsn, prov, nil)
	b, err := New(Config{Store: a.st, Provisioner: &fakeProv{}, Clock: clock.System{}, EventsResync: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	d := a.enroll("ZM-001")
	acc := decode[tabletwire.Accepted](t, a.do(http.MethodPost, tabletwire.PairingsPath, a.token, tabletwire.PairingRequest{QR: d.qr(t, t0)}))
	<-prov.entered
	close(prov.gate)
	views, err := follow(t, b.Handler(), acc.PairingID, a.token)
	if err != nil {
		t.Fatal(err)
	}
	if last := views[len(views)-1]; last.State != tabletwire.StateSucceeded {
		t.Errorf("replica B's stream ended with %v", progressOf(views))
	}
}
