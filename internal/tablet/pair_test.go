package tablet

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/zmonitor/firmware/internal/central/job"
	"github.com/zmonitor/firmware/internal/proto/failure"
	"github.com/zmonitor/firmware/internal/proto/pairing"
	"github.com/zmonitor/firmware/internal/proto/state"
	"github.com/zmonitor/firmware/internal/proto/tabletwire"
	"github.com/zmonitor/firmware/internal/testkit/testpki"
)

// pushSteps is what the pusher reports before the device answers.
var pushSteps = []job.Progress{
	{Step: "hello"}, {Step: "issue certificate"}, {Step: "sign and seal"}, {Step: "push"},
	{State: "PAIRING_RECEIVED", Step: "verifying"},
}

func timeline(r Result) []string {
	var out []string
	for _, e := range r.Timeline {
		out = append(out, FormatEvent(e))
	}
	return out
}

func TestPairQRSuccessTimeline(t *testing.T) {
	steps := append(append([]job.Progress{}, pushSteps...),
		job.Progress{State: "APPLYING_CONFIG"}, job.Progress{State: "TESTING_CONNECTION"})
	e := newEnv(t, newScript(job.Outcome{State: "PROVISIONED"}, nil, steps...))
	dev := e.enroll("ZM-001")
	if err := e.Store.SetDeviceLabel(context.Background(), "ZM-001", "ICU-MON-04"); err != nil {
		t.Fatal(err)
	}
	qr := dev.session(t).QR().Marshal()
	var seen []string
	res, err := e.client(e.Token).Pair(context.Background(), Request{QR: qr, Progress: func(ev Event) { seen = append(seen, ev.Name) }})
	if err != nil {
		t.Fatalf("Pair: %v", err)
	}
	if !res.Provisioned() || res.DeviceState != "PROVISIONED" || res.Problem != nil || res.DeviceID != "ZM-001" || !strings.HasPrefix(res.PairingID, "p-") {
		t.Fatalf("result %+v", res)
	}
	want := []string{
		"   0.00s  queued",
		"   0.25s  hello",
		"   0.50s  issue certificate",
		"   0.75s  sign and seal",
		"   1.00s  push",
		"   1.25s  PAIRING_RECEIVED (verifying)",
		"   1.50s  APPLYING_CONFIG",
		"   1.75s  TESTING_CONNECTION",
		"   2.00s  PROVISIONED",
	}
	if got := timeline(res); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("timeline:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if len(seen) != len(want) {
		t.Errorf("progress callback saw %v", seen)
	}
	if res.Elapsed != 2*time.Second {
		t.Errorf("elapsed %v", res.Elapsed)
	}
	jobs := e.Prov.Jobs()
	if len(jobs) != 1 || jobs[0].Token == "" || jobs[0].DeviceID != "ZM-001" {
		t.Errorf("provisioner jobs %+v", jobs)
	}
	// The inventory's label, as the Central Station reports it pushed.
	if res.Label != "ICU-MON-04" {
		t.Errorf("label %q", res.Label)
	}
	if got := Outcome(res, ""); got != "PROVISIONED: ZM-001 is ready (label ICU-MON-04) after 2.0s\n" {
		t.Errorf("outcome %q", got)
	}
}

// TestPairDeviceFailures: the device ends in PROVISIONING_FAILED with each
// error of the spec's table; the technician reads its title and action.
func TestPairDeviceFailures(t *testing.T) {
	for _, c := range []struct {
		code     failure.Code
		headline string
	}{
		{failure.PairingCodeMismatch, "Pairing code mismatch. What to do: Re-scan QR code."},
		{failure.PayloadExpired, "Payload expired. What to do: Request new provisioning."},
		{failure.SignatureInvalid, "Signature invalid. What to do: Contact IT support."},
		{failure.CertificateInvalid, "Certificate invalid. What to do: Contact IT support."},
		{failure.ConnectionFailed, "Connection failed. What to do: Check network, retry."},
	} {
		t.Run(c.code.String(), func(t *testing.T) {
			steps := append(append([]job.Progress{}, pushSteps...), job.Progress{State: "PROVISIONING_FAILED"})
			e := newEnv(t, newScript(job.Outcome{State: "PROVISIONING_FAILED", Code: c.code, Message: "device says: " + c.code.Title()}, nil, steps...))
			qr := e.enroll("ZM-001").session(t).QR().Marshal()
			res, err := e.client(e.Token).Pair(context.Background(), Request{QR: qr})
			if err != nil {
				t.Fatalf("Pair: %v", err)
			}
			if res.Provisioned() || res.State != "failed" || res.DeviceState != "PROVISIONING_FAILED" || res.Problem == nil {
				t.Fatalf("result %+v", res)
			}
			if res.Problem.Failure != c.code || res.Problem.Headline() != c.headline {
				t.Errorf("problem %+v, headline %q", res.Problem, res.Problem.Headline())
			}
			out := Outcome(res, "")
			wantOut := "PROVISIONING FAILED: " + c.headline + "\n  Details (" + c.code.String() + "): device says: " + c.code.Title() + "\n"
			if !strings.HasPrefix(out, wantOut) {
				t.Errorf("outcome %q, want prefix %q", out, wantOut)
			}
			if tl := timeline(res); !strings.HasSuffix(tl[len(tl)-1], "PROVISIONING_FAILED") {
				t.Errorf("timeline ends %q", tl[len(tl)-1])
			}
		})
	}
}

func TestPairDeviceNotReached(t *testing.T) {
	e := newEnv(t, newScript(job.Outcome{}, failure.New(failure.ConnectionFailed, "hello", errors.New("dial tcp 192.0.2.10:8444: connect: no route to host")), job.Progress{Step: "hello"}))
	qr := e.enroll("ZM-001").session(t).QR().Marshal()
	res, err := e.client(e.Token).Pair(context.Background(), Request{QR: qr})
	if err != nil {
		t.Fatalf("Pair: %v", err)
	}
	if res.State != "failed" || res.DeviceState != "" || res.Problem.Failure != failure.ConnectionFailed {
		t.Fatalf("result %+v", res)
	}
	if !strings.Contains(res.Problem.Message, "no route to host") {
		t.Errorf("message %q", res.Problem.Message)
	}
	tl := timeline(res)
	if want := []string{"   0.00s  queued", "   0.25s  hello", "   0.50s  FAILED"}; strings.Join(tl, "|") != strings.Join(want, "|") {
		t.Errorf("timeline %q", tl)
	}
}

// TestPairNothingReachedTheDevice: when the push failed before anything
// reached the device, the Central Station gives back the QR's token and
// code, and the tablet says so, with the failure's own title and action;
// it does not offer the QR again when the device no longer shows one.
func TestPairNothingReachedTheDevice(t *testing.T) {
	for _, tc := range []struct {
		code     failure.Code
		headline string
		reuse    bool
	}{
		{failure.SignerUntrusted, "PROVISIONING FAILED: Signer not trusted. What to do: Contact IT support.", true},
		{failure.IdentityMismatch, "PROVISIONING FAILED: Another device answered. What to do: Check the monitor's address, then re-scan its QR code.", true},
		{failure.ConnectionFailed, "PROVISIONING FAILED: Connection failed. What to do: Check network, retry.", true},
		{failure.DeviceNotListening, "PROVISIONING FAILED: Device not waiting for pairing. What to do: Press the button on the monitor, then scan its new QR code.", false},
	} {
		t.Run(tc.code.String(), func(t *testing.T) {
			e := newEnv(t, newScript(job.Outcome{DeviceUntouched: true}, failure.New(tc.code, "hello", errors.New("cause")), job.Progress{Step: "hello"}))
			qr := e.enroll("ZM-001").session(t).QR().Marshal()
			res, err := e.client(e.Token).Pair(context.Background(), Request{QR: qr})
			if err != nil {
				t.Fatal(err)
			}
			if !res.Reusable || res.Problem.Failure != tc.code {
				t.Fatalf("result %+v problem %+v", res, res.Problem)
			}
			out := Outcome(res, "")
			hint := "scan the QR code on its screen again"
			if !strings.HasPrefix(out, tc.headline+"\n") || strings.Contains(out, hint) != tc.reuse || !strings.Contains(out, "Nothing reached the monitor") {
				t.Errorf("outcome %q", out)
			}
		})
	}
}

func wantAPIError(t *testing.T, err error, code, title, action string) *APIError {
	t.Helper()
	var ae *APIError
	if !errors.As(err, &ae) {
		t.Fatalf("error %v (%T), want *APIError", err, err)
	}
	if ae.Problem.Code != code || ae.Problem.Title != title || ae.Problem.Action != action {
		t.Errorf("problem %+v, want %s %q %q", ae.Problem, code, title, action)
	}
	return ae
}

func TestPairRefusals(t *testing.T) {
	e := newEnv(t, nil)
	dev := e.enroll("ZM-001")
	ctx := context.Background()

	t.Run("unknown device", func(t *testing.T) {
		qr := unenrolled("ZM-999").session(t).QR().Marshal()
		res, err := e.client(e.Token).Pair(ctx, Request{QR: qr})
		ae := wantAPIError(t, err, "DEVICE_UNKNOWN", "Device not in the inventory", "Contact IT support (enroll the device)")
		if ae.Status != 422 || !strings.Contains(ae.Problem.Message, "ZM-999") || ae.PairingID == "" {
			t.Errorf("refusal %+v", ae)
		}
		if res.State != "refused" || res.Problem == nil || res.PairingID != ae.PairingID {
			t.Errorf("result %+v", res)
		}
		if out := Outcome(res, ""); !strings.HasPrefix(out, "REFUSED BY THE CENTRAL STATION: Device not in the inventory. What to do: Contact IT support (enroll the device).\n") {
			t.Errorf("outcome %q", out)
		}
	})
	t.Run("bad auth", func(t *testing.T) {
		for _, tok := range []string{"t-00000000.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "nonsense", e.Token[:len(e.Token)-1] + "x"} {
			_, err := e.client(tok).Pair(ctx, Request{QR: dev.session(t).QR().Marshal()})
			ae := wantAPIError(t, err, "UNAUTHORIZED", "Tablet not authorized", "Ask IT for a technician token")
			if ae.Status != 401 {
				t.Errorf("status %d", ae.Status)
			}
			if strings.Contains(err.Error(), tok) {
				t.Errorf("error repeats the token: %v", err)
			}
		}
	})
	t.Run("token replay", func(t *testing.T) {
		qr := dev.session(t).QR().Marshal()
		c := e.client(e.Token)
		if res, err := c.Pair(ctx, Request{QR: qr}); err != nil || !res.Provisioned() {
			t.Fatalf("first Pair: %+v %v", res, err)
		}
		_, err := c.Pair(ctx, Request{QR: qr})
		ae := wantAPIError(t, err, "TOKEN_ALREADY_USED", "QR code already used", "Re-scan QR code")
		if ae.Status != 409 {
			t.Errorf("status %d", ae.Status)
		}
	})
}

func TestPairManual(t *testing.T) {
	e := newEnv(t, nil)
	dev := e.enroll("ZM-001")
	code := dev.session(t).Code().Display()
	typed := strings.ToLower(strings.ReplaceAll(code, "-", " "))
	res, err := e.client(e.Token).Pair(context.Background(), Request{DeviceID: "ZM-001", Address: "127.0.0.1:18444", PairingCode: typed, Label: "ICU-MON-04"})
	if err != nil || !res.Provisioned() {
		t.Fatalf("Pair: %+v %v", res, err)
	}
	jobs := e.Prov.Jobs()
	if len(jobs) != 1 || jobs[0].PairingCode != code || jobs[0].Token != "" || jobs[0].Address != "127.0.0.1:18444" || jobs[0].Label != "ICU-MON-04" {
		t.Errorf("job %+v", jobs)
	}
}

// TestPairManualTypoNeverCallsServer: a typo in the pairing code is caught
// by the tablet, which sends nothing (the device keeps its attempts).
func TestPairManualTypoNeverCallsServer(t *testing.T) {
	e := newEnv(t, nil)
	dev := e.enroll("ZM-001")
	code := dev.session(t).Code().Display()
	for name, typed := range map[string]string{
		"check letter": code[:10] + other(code[10]),
		"too short":    code[:9],
		"look-alike":   "O" + code[1:],
		"digit letter": code[:4] + "A" + code[5:],
	} {
		t.Run(name, func(t *testing.T) {
			_, err := e.client(e.Token).Pair(context.Background(), Request{DeviceID: "ZM-001", Address: "10.0.2.15", PairingCode: typed})
			var ie *InputError
			if !errors.As(err, &ie) || ie.Field != "pairingCode" {
				t.Fatalf("Pair = %v, want *InputError on pairingCode", err)
			}
			if ie.Problem.Headline() != "Pairing code mistyped. What to do: Check the code on the monitor and type it again." || ie.Problem.Message == "" {
				t.Errorf("problem %+v", ie.Problem)
			}
			if strings.Contains(err.Error(), typed) || strings.Contains(err.Error(), code) {
				t.Errorf("error repeats the code: %v", err)
			}
		})
	}
	if n := e.Requests(); n != 0 {
		t.Errorf("the server got %d requests", n)
	}
	if n := len(e.Prov.Jobs()); n != 0 {
		t.Errorf("the provisioner ran %d times", n)
	}
}

func TestRequestCheck(t *testing.T) {
	code, err := pairing.NewCode(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	good := code.Display()
	if err := (Request{DeviceID: "ZM-001", Address: "10.0.0.1", PairingCode: good, Label: "ICU MON 04"}).Check(); err != nil {
		t.Fatalf("a good request: %v", err)
	}
	for name, tc := range map[string]struct {
		req   Request
		field string
	}{
		"nothing":      {Request{}, "deviceId"},
		"both":         {Request{QR: []byte("{}"), DeviceID: "ZM-001"}, "qr"},
		"not a QR":     {Request{QR: []byte(`{"wifi":"x"}`)}, "qr"},
		"no device":    {Request{Address: "10.0.0.1", PairingCode: good}, "deviceId"},
		"device space": {Request{DeviceID: "ZM 001", Address: "10.0.0.1", PairingCode: good}, "deviceId"},
		"no address":   {Request{DeviceID: "ZM-001", PairingCode: good}, "address"},
		"code typo":    {Request{DeviceID: "ZM-001", Address: "10.0.0.1", PairingCode: "ABC-123-ABC"}, "pairingCode"},
		"label ctrl":   {Request{DeviceID: "ZM-001", Address: "10.0.0.1", PairingCode: good, Label: "a\x1bb"}, "label"},
		// The device's own rule (internal/proto/ident), not just "printable".
		"device slash": {Request{DeviceID: "ZM/001", Address: "10.0.0.1", PairingCode: good}, "deviceId"},
		"device dash":  {Request{DeviceID: "-ZM-001", Address: "10.0.0.1", PairingCode: good}, "deviceId"},
		"label C1":     {Request{DeviceID: "ZM-001", Address: "10.0.0.1", PairingCode: good, Label: "ICU\u0085"}, "label"},
		"label UTF-8":  {Request{DeviceID: "ZM-001", Address: "10.0.0.1", PairingCode: good, Label: "ICU\xff"}, "label"},
	} {
		var ie *InputError
		if err := tc.req.Check(); !errors.As(err, &ie) || ie.Field != tc.field {
			t.Errorf("%s: Check = %v, want an InputError for %s", name, err, tc.field)
		}
	}
}

func TestTransportErrors(t *testing.T) {
	e := newEnv(t, nil)
	qr := e.enroll("ZM-001").session(t).QR().Marshal()
	other, err := testpki.NewCA("Some other CA", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(e.url(), e.Token, &Opts{RootCAs: other.Pool(), Clock: e.Clock})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Pair(context.Background(), Request{QR: qr})
	var te *TransportError
	if !errors.As(err, &te) || !strings.Contains(te.Hint, "not signed by the CA") || !errors.As(err, new(x509.UnknownAuthorityError)) {
		t.Errorf("wrong CA: %v", err)
	}
	c, err = New(e.url(), e.Token, &Opts{RootCAs: e.CA.Pool(), ServerName: "central.example", Clock: e.Clock})
	if err != nil {
		t.Fatal(err)
	}
	if _, err = c.Pair(context.Background(), Request{QR: qr}); !errors.As(err, &te) || !strings.Contains(te.Hint, "not for this address") {
		t.Errorf("wrong name: %v", err)
	}
	e.HTTP.Close()
	c = e.client(e.Token)
	if _, err = c.Pair(context.Background(), Request{QR: qr}); !errors.As(err, &te) || !strings.Contains(te.Hint, "refused or unreachable") {
		t.Errorf("server down: %v", err)
	}
	if strings.Contains(fmt.Sprint(err), e.Token) {
		t.Error("error repeats the token")
	}
}

func TestNew(t *testing.T) {
	ca, _ := testpki.NewCA("x", time.Now())
	tok := "t-00000000.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	for _, u := range []string{"http://127.0.0.1:8443", "127.0.0.1:8443", "https://", "https://u:p@h", "https://h/?x=1"} {
		if _, err := New(u, tok, &Opts{RootCAs: ca.Pool()}); err == nil {
			t.Errorf("New(%q) accepted", u)
		}
	}
	for _, bad := range []string{"", "with space", "tab\t", strings.Repeat("a", 300)} {
		_, err := New("https://h", bad, &Opts{RootCAs: ca.Pool()})
		if err == nil || (bad != "" && strings.Contains(err.Error(), bad)) {
			t.Errorf("New(token %q) = %v", bad, err)
		}
	}
	if _, err := New("https://h", tok, nil); err == nil {
		t.Error("New without trust accepted")
	}
	c, err := New("https://h:1/base/", tok, &Opts{RootCAs: ca.Pool()})
	if err != nil || c.endpoint("/v1/pairings") != "https://h:1/base/v1/pairings" {
		t.Errorf("endpoint: %v %v", c, err)
	}
}

func TestFollowGivesUpAfterCancel(t *testing.T) {
	// The tablet stops following (context cancelled) while the device is
	// still at work: Pair says so and gives the pairing ID.
	e := newEnv(t, newScript(job.Outcome{State: state.Provisioned.String()}, nil, pushSteps...))
	qr := e.enroll("ZM-001").session(t).QR().Marshal()
	ctx, cancel := context.WithCancel(context.Background())
	res, err := e.client(e.Token).Pair(ctx, Request{QR: qr, Progress: func(ev Event) {
		if ev.Name == "push" {
			cancel()
		}
	}})
	if !errors.Is(err, context.Canceled) || res.PairingID == "" || !strings.Contains(err.Error(), "goes on at the Central Station") {
		t.Fatalf("Pair = %+v, %v", res, err)
	}
}

// TestOutcomeLabel: the label the Central Station reports wins over the
// caller's; the caller's is shown when the Central Station said none.
func TestOutcomeLabel(t *testing.T) {
	r := Result{DeviceID: "ZM-001", State: tabletwire.StateSucceeded, Label: "ICU-MON-04", Elapsed: time.Second}
	if got := Outcome(r, "asked"); got != "PROVISIONED: ZM-001 is ready (label ICU-MON-04) after 1.0s\n" {
		t.Errorf("reported label: %q", got)
	}
	r.Label = ""
	if got := Outcome(r, "asked"); got != "PROVISIONED: ZM-001 is ready (label asked) after 1.0s\n" {
		t.Errorf("caller's label: %q", got)
	}
	if got := Outcome(r, ""); got != "PROVISIONED: ZM-001 is ready after 1.0s\n" {
		t.Errorf("no label: %q", got)
	}
}

// TestPairFollowsTheEventStream: the tablet follows a pairing on its
// progress stream, never by polling the pairing.
func TestPairFollowsTheEventStream(t *testing.T) {
	e := newEnv(t, newScript(job.Outcome{State: "PROVISIONED"}, nil, pushSteps...))
	qr := e.enroll("ZM-001").session(t).QR().Marshal()
	res, err := e.client(e.Token).Pair(context.Background(), Request{QR: qr})
	if err != nil || !res.Provisioned() {
		t.Fatalf("Pair: %+v %v", res, err)
	}
	var gets, streams int
	for _, l := range e.RequestLog() {
		switch {
		case strings.HasSuffix(l, "/events"):
			streams++
		case strings.HasPrefix(l, "GET "):
			gets++
		}
	}
	if streams != 1 || gets != 0 {
		t.Errorf("requests %v: want one progress stream and no GET of the pairing", e.RequestLog())
	}
}

// TestPairReconnectsABrokenStream: a stream that ends before the outcome
// is opened again; the timeline goes on from where the pairing stands.
func TestPairReconnectsABrokenStream(t *testing.T) {
	e := newEnv(t, newScript(job.Outcome{State: "PROVISIONED"}, nil, pushSteps...))
	e.BreakStreams.Store(2)
	qr := e.enroll("ZM-001").session(t).QR().Marshal()
	res, err := e.client(e.Token).Pair(context.Background(), Request{QR: qr})
	if err != nil || !res.Provisioned() {
		t.Fatalf("Pair: %+v %v", res, err)
	}
	streams := 0
	for _, l := range e.RequestLog() {
		if strings.HasSuffix(l, "/events") {
			streams++
		}
	}
	if streams != 3 {
		t.Errorf("%d streams, want 3 (two cut after their first event): %v", streams, e.RequestLog())
	}
	if tl := timeline(res); tl[len(tl)-1] != "   2.00s  PROVISIONED" && !strings.HasSuffix(tl[len(tl)-1], "PROVISIONED") {
		t.Errorf("timeline %q", tl)
	}
}
