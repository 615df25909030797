package tablet

import (
	"testing"

	"github.com/zmonitor/firmware/internal/central/job"
	"github.com/zmonitor/firmware/internal/proto/pairing"
	"github.com/zmonitor/firmware/internal/tablet/tablettest"
)

// env wraps a tablettest.Central for a test.
type env struct {
	t testing.TB
	*tablettest.Central
}

func newScript(outcome job.Outcome, err error, steps ...job.Progress) *tablettest.Script {
	return tablettest.NewScript(outcome, err, steps...)
}

func newEnv(t testing.TB, prov *tablettest.Script) *env {
	t.Helper()
	c, err := tablettest.NewCentral(t.TempDir(), prov)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Close()
		if err := c.Err(); err != nil {
			t.Error(err)
		}
	})
	return &env{t: t, Central: c}
}

func (e *env) url() string { return e.URL() }

// client returns a tablet client that trusts the test CA.
func (e *env) client(token string) *Client {
	e.t.Helper()
	c, err := New(e.URL(), token, &Opts{RootCAs: e.CA.Pool(), Clock: e.Clock})
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

type device struct {
	id string
	d  *tablettest.Device
}

func (e *env) enroll(id string) *device {
	e.t.Helper()
	d, err := e.Enroll(id)
	if err != nil {
		e.t.Fatal(err)
	}
	return &device{id: id, d: d}
}

func unenrolled(id string) *device {
	d, _ := tablettest.NewDevice(id)
	return &device{id: id, d: d}
}

func (d *device) session(t testing.TB) *pairing.Session {
	t.Helper()
	s, err := d.d.Session()
	if err != nil {
		t.Fatal(err)
	}
	return s
}
