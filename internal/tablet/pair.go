package tablet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/zmonitor/firmware/internal/proto/ident"
	"github.com/zmonitor/firmware/internal/proto/pairing"
	"github.com/zmonitor/firmware/internal/proto/state"
	"github.com/zmonitor/firmware/internal/proto/tabletwire"
)

// maxAddress is the Central Station's limit.
const maxAddress = 260

// Request asks the Central Station to provision one device: either QR (the
// scanned text) or DeviceID + Address + PairingCode (typed by the
// technician).
type Request struct {
	QR []byte

	DeviceID    string
	Address     string // IP, IP:port or host[:port]
	PairingCode string // as typed: case, dashes and spaces do not matter

	// Label, optional, overrides the inventory's device label.
	Label string

	// Progress, if set, is called from Pair's goroutine each time the
	// pairing's state, the device's state or the Central Station's step
	// changes.
	Progress func(Event)
}

// Event is one change seen while following a pairing.
type Event struct {
	// Elapsed is the time since Pair sent the request.
	Elapsed time.Duration
	// Name is what changed: a device state ("PAIRING_RECEIVED"), else a
	// Central Station step ("hello"), else the pairing state ("queued").
	Name string
	// State, DeviceState and Step are the pairing as last seen.
	State, DeviceState, Step string
}

// Result is how a pairing ended.
type Result struct {
	PairingID string
	DeviceID  string
	// Label is the device label the Central Station pushed (the request's,
	// else the inventory's; empty when the device has none or the
	// Central Station did not say).
	Label string
	// State is the Central Station's final state: "succeeded", "failed"
	// (the attempt ran and failed) or "refused".
	State string
	// DeviceState is the device's final state: "PROVISIONED",
	// "PROVISIONING_FAILED", or the last state it reported ("" when it
	// was not reached).
	DeviceState string
	// Problem says why it failed (nil on success).
	Problem *Problem
	// Reusable: nothing reached the device and the Central Station gave
	// back the QR's token and the code (PairingView.ClaimsReleased): the
	// QR code on the screen may be scanned again once the cause is fixed.
	Reusable bool
	// Elapsed is the time from the request to the final answer.
	Elapsed time.Duration
	// Timeline is every Event, in order.
	Timeline []Event
}

// Provisioned reports whether the device is provisioned.
func (r Result) Provisioned() bool { return r.State == tabletwire.StateSucceeded }

// Check validates req locally, the way the Central Station will, so that a
// typo is caught before it costs a request (or, for a typed code, one of
// the device's five attempts). Errors are *InputError.
func (req Request) Check() error {
	_, err := req.body()
	return err
}

// body checks req and returns the POST body.
func (req Request) body() (tabletwire.PairingRequest, error) {
	if err := ident.CheckLabel(req.Label); err != nil {
		return tabletwire.PairingRequest{}, inputErr("label", "Device label invalid", fmt.Sprintf("Use at most %d bytes of printable characters", ident.MaxLabel),
			fmt.Errorf("label: %w", err))
	}
	manual := req.DeviceID != "" || req.Address != "" || req.PairingCode != ""
	switch {
	case len(req.QR) > 0 && manual:
		return tabletwire.PairingRequest{}, inputErr("qr", "Request not understood", "Give either a scanned QR code or a typed pairing code",
			errors.New("both a QR code and a typed pairing code"))
	case len(req.QR) > 0:
		if _, err := pairing.ParseQR(req.QR); err != nil {
			return tabletwire.PairingRequest{}, inputErr("qr", "Not a Z Monitor pairing QR code", "Re-scan QR code", fmt.Errorf("%w: %w", ErrNotPairingQR, err))
		}
		return tabletwire.PairingRequest{QR: string(req.QR), Label: req.Label}, nil
	}
	if err := ident.CheckDeviceID(req.DeviceID); err != nil {
		return tabletwire.PairingRequest{}, inputErr("deviceId", "Device ID invalid", "Type the device ID shown on the monitor (e.g. ZM-001)",
			fmt.Errorf("device ID: %w", err))
	}
	if req.Address == "" || len(req.Address) > maxAddress || strings.ContainsFunc(req.Address, func(r rune) bool { return r <= ' ' || r >= 0x7f }) {
		return tabletwire.PairingRequest{}, inputErr("address", "Device address invalid", "Check the address on the monitor and type it again",
			errors.New("address must be an IP address, IP:port or host name"))
	}
	code, err := pairing.ParseCode(req.PairingCode)
	if err != nil {
		return tabletwire.PairingRequest{}, inputErr("pairingCode", "Pairing code mistyped", "Check the code on the monitor and type it again", errors.New(codeProblem(err)))
	}
	return tabletwire.PairingRequest{DeviceID: req.DeviceID, Address: req.Address, PairingCode: code.Display(), Label: req.Label}, nil
}

func inputErr(field, title, action string, err error) *InputError {
	return &InputError{Field: field, Problem: Problem{Code: "INPUT_INVALID", Title: title, Action: action, Message: err.Error()}, Err: err}
}

// codeProblem explains a pairing code syntax error; pairing.ParseCode's
// errors name at most one character, never the code.
func codeProblem(err error) string {
	switch {
	case errors.Is(err, pairing.ErrCodeCheck):
		return "the last letter does not match the others: one symbol is mistyped (the code has a check letter)"
	case errors.Is(err, pairing.ErrCodeLength):
		return "a pairing code has 9 symbols: 3 letters, 3 digits, 3 letters, like ABC-123-DEF"
	default:
		return strings.TrimPrefix(err.Error(), "pairing code: ")
	}
}

// Pair checks req locally, asks the Central Station to provision the
// device, then follows the pairing until it is final, calling
// req.Progress on each change.
//
// A nil error means the Central Station gave a final answer: the Result
// says whether the device is provisioned and, if not, why. Errors:
// *InputError (nothing was sent), *APIError (the Central Station refused
// the request; the Result is filled in as far as known),
// *TransportError, or the context's error (the pairing goes on at the
// Central Station; the Result has its ID).
func (c *Client) Pair(ctx context.Context, req Request) (Result, error) {
	body, err := req.body()
	if err != nil {
		return Result{}, err
	}
	f := follower{c: c, req: req, start: c.opts.Clock.Now()}
	var acc tabletwire.Accepted
	if err := c.do(ctx, http.MethodPost, tabletwire.PairingsPath, body, http.StatusAccepted, &acc); err != nil {
		var ae *APIError
		if errors.As(err, &ae) {
			f.res.PairingID, f.res.State, f.res.Problem = ae.PairingID, tabletwire.StateRefused, &ae.Problem
			f.emit("REFUSED", tabletwire.PairingView{State: tabletwire.StateRefused})
			f.res.Elapsed = f.since()
		}
		return f.res, fmt.Errorf("request pairing: %w", err)
	}
	if acc.PairingID == "" || len(acc.PairingID) > 64 || url.PathEscape(acc.PairingID) != acc.PairingID {
		return f.res, fmt.Errorf("request pairing: the Central Station's answer has no usable pairing ID")
	}
	f.res.PairingID, f.res.DeviceID = acc.PairingID, clean(acc.DeviceID, 64)
	f.observe(tabletwire.PairingView{State: tabletwire.StateQueued})
	return f.follow(ctx)
}

// follower follows one pairing.
type follower struct {
	c     *Client
	req   Request
	start time.Time
	res   Result
	last  tabletwire.PairingView
	final *tabletwire.PairingView // the final view, once seen
}

func (f *follower) since() time.Duration { return f.c.opts.Clock.Now().Sub(f.start) }

func (f *follower) emit(name string, v tabletwire.PairingView) {
	e := Event{Elapsed: f.since(), Name: name, State: v.State, DeviceState: v.DeviceState, Step: v.Step}
	f.res.Timeline = append(f.res.Timeline, e)
	if f.req.Progress != nil {
		f.req.Progress(e)
	}
}

// observe emits the events of v's changes since the last view.
func (f *follower) observe(v tabletwire.PairingView) {
	v.DeviceState, v.Step = clean(v.DeviceState, 40), clean(v.Step, 80)
	prev := f.last
	f.last = v
	switch {
	case v.DeviceState != prev.DeviceState && v.DeviceState != "":
		f.emit(v.DeviceState, v)
	case v.Step != prev.Step && v.Step != "":
		f.emit(v.Step, v)
	case v.State != prev.State && !v.Final:
		f.emit(v.State, v)
	}
	if v.DeviceState != "" {
		f.res.DeviceState = v.DeviceState
	}
}

// follow reads the pairing's progress stream (server-sent events,
// tabletwire.ReadEvents) until its final view. A stream that breaks (the
// network, a Central Station restarting, a replica going away) is opened
// again after RetryInterval: its first view is where the pairing stands,
// so nothing is lost but steps that came and went meanwhile. After
// MaxStreamFailures breaks in a row, follow gives up (the pairing goes on
// at the Central Station).
func (f *follower) follow(ctx context.Context) (Result, error) {
	failures := 0
	for {
		err := f.stream(ctx)
		if f.final != nil {
			return f.finish(*f.final), nil
		}
		var te *TransportError
		switch {
		case ctx.Err() != nil:
			f.res.Elapsed = f.since()
			return f.res, fmt.Errorf("follow pairing %s (it goes on at the Central Station): %w", f.res.PairingID, ctx.Err())
		case errors.As(err, &te), errors.Is(err, tabletwire.ErrStreamEnded), errors.Is(err, errStreamIdle):
			failures++
			if failures >= f.c.opts.MaxStreamFailures {
				f.res.Elapsed = f.since()
				return f.res, fmt.Errorf("follow pairing %s (it goes on at the Central Station; ask IT for its result): %w", f.res.PairingID, err)
			}
			if err := f.wait(ctx); err != nil {
				f.res.Elapsed = f.since()
				return f.res, fmt.Errorf("follow pairing %s (it goes on at the Central Station): %w", f.res.PairingID, err)
			}
		default:
			f.res.Elapsed = f.since()
			return f.res, fmt.Errorf("follow pairing %s: %w", f.res.PairingID, err)
		}
	}
}

// errStreamIdle: the stream said nothing, not even a keep-alive, for
// StreamIdle.
var errStreamIdle = errors.New("the progress stream went silent")

// stream reads one progress stream until the final view (f.final set), or
// until it breaks.
func (f *follower) stream(ctx context.Context) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.c.endpoint(tabletwire.PairingEventsPath(f.res.PairingID)), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+f.c.token)
	req.Header.Set("Accept", tabletwire.EventStreamType)
	// Nothing for StreamIdle (the Central Station writes a keep-alive
	// every 15 s): the connection is dead.
	idle := time.AfterFunc(f.c.opts.StreamIdle, func() { cancel(errStreamIdle) })
	defer idle.Stop()
	resp, err := f.c.http.Do(req)
	if err != nil {
		if cause := context.Cause(ctx); errors.Is(cause, errStreamIdle) {
			return cause
		}
		if errors.Is(err, context.Canceled) {
			return fmt.Errorf("progress stream: %w", context.Canceled)
		}
		return explainTransport(f.c.base.Host, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return apiError(resp)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, tabletwire.EventStreamType) {
		return fmt.Errorf("progress stream: the Central Station answered %.40q, not an event stream", ct)
	}
	body := &idleReader{r: resp.Body, idle: idle, d: f.c.opts.StreamIdle}
	err = tabletwire.ReadEvents(body, func(v tabletwire.PairingView) error {
		f.observe(v)
		if v.Final {
			f.final = &v
		}
		return nil
	})
	if cause := context.Cause(ctx); errors.Is(cause, errStreamIdle) {
		return cause
	}
	if err != nil && ctx.Err() == nil && !errors.Is(err, tabletwire.ErrStreamEnded) {
		var ne net.Error
		if errors.As(err, &ne) || errors.Is(err, io.ErrUnexpectedEOF) {
			return explainTransport(f.c.base.Host, err)
		}
	}
	return err
}

// idleReader resets the idle timer on every read that returns bytes.
type idleReader struct {
	r    io.Reader
	idle *time.Timer
	d    time.Duration
}

func (r *idleReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if n > 0 {
		r.idle.Reset(r.d)
	}
	return n, err
}

// wait waits RetryInterval on the injected clock.
func (f *follower) wait(ctx context.Context) error {
	t := f.c.opts.Clock.NewTimer(f.c.opts.RetryInterval)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C():
		return nil
	}
}

// finish records the final view.
func (f *follower) finish(v tabletwire.PairingView) Result {
	f.res.State = v.State
	f.res.Label = clean(v.Label, ident.MaxLabel)
	f.res.Reusable = v.ClaimsReleased
	name := ""
	switch v.State {
	case tabletwire.StateSucceeded:
		f.res.DeviceState = state.Provisioned.String()
		f.res.Problem = nil
		name = f.res.DeviceState
	case tabletwire.StateFailed:
		// DeviceState stays what the device last reported: after a lost
		// connection the Central Station cannot know more.
		f.res.Problem = deviceProblem(v.Result)
		name = "FAILED"
		if f.res.DeviceState == state.ProvisioningFailed.String() {
			name = f.res.DeviceState
		}
	default: // refused
		body := tabletwire.ErrorBody{}
		if v.Result != nil {
			body = *v.Result
		}
		f.res.Problem = refusalProblem(body)
		name = "REFUSED"
	}
	if n := len(f.res.Timeline); n == 0 || f.res.Timeline[n-1].Name != name {
		f.emit(name, v)
	}
	f.res.Elapsed = f.since()
	return f.res
}
