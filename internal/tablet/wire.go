package tablet

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// The tablet API's JSON, as docs/central-station.md describes it. The
// client keeps its own copy of the wire types so that the tablet binary
// does not link the Central Station (and its databases); the tests run
// against the real server package to keep the two in step.

// maxResponse bounds what the client reads of one answer.
const maxResponse = 64 << 10

// pairingBody is the body of POST /v1/pairings.
type pairingBody struct {
	QR          string `json:"qr,omitempty"`
	DeviceID    string `json:"deviceId,omitempty"`
	Address     string `json:"address,omitempty"`
	PairingCode string `json:"pairingCode,omitempty"`
	Label       string `json:"label,omitempty"`
}

// errorBody describes a refusal or a failure.
type errorBody struct {
	Code    string `json:"code"`
	Title   string `json:"title"`
	Action  string `json:"action"`
	Message string `json:"message"`
}

// errorResponse is the body of every non-2xx answer.
type errorResponse struct {
	Error     errorBody `json:"error"`
	PairingID string    `json:"pairingId,omitempty"`
}

// accepted is the 202 answer to POST /v1/pairings.
type accepted struct {
	PairingID string `json:"pairingId"`
	DeviceID  string `json:"deviceId"`
	State     string `json:"state"`
}

// pairingView is the answer to GET /v1/pairings/{id}. Unknown members are
// ignored: a newer Central Station may say more.
type pairingView struct {
	ID          string     `json:"id"`
	DeviceID    string     `json:"deviceId"`
	Label       string     `json:"label"`
	State       string     `json:"state"`
	Final       bool       `json:"final"`
	DeviceState string     `json:"deviceState"`
	Step        string     `json:"step"`
	Result      *errorBody `json:"result"`
	StartedAt   time.Time  `json:"startedAt"`
	FinishedAt  *time.Time `json:"finishedAt"`
}

// Server pairing states.
const (
	stateQueued    = "queued"
	stateRunning   = "running"
	stateSucceeded = "succeeded"
	stateFailed    = "failed"
	stateRefused   = "refused"
)

// decodeAnswer decodes one JSON value of at most maxResponse bytes.
func decodeAnswer(r io.Reader, v any) error {
	b, err := io.ReadAll(io.LimitReader(r, maxResponse+1))
	if err != nil {
		return fmt.Errorf("read answer: %w", err)
	}
	if len(b) > maxResponse {
		return fmt.Errorf("answer larger than %d bytes", maxResponse)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("answer is not the expected JSON: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("answer has data after its JSON value")
	}
	return nil
}

// check validates a pairing view's state.
func (v pairingView) check() error {
	switch v.State {
	case stateQueued, stateRunning:
		if v.Final {
			return fmt.Errorf("pairing state %s marked final", v.State)
		}
	case stateSucceeded, stateFailed, stateRefused:
		if !v.Final {
			return fmt.Errorf("pairing state %s not marked final", v.State)
		}
	default:
		return fmt.Errorf("unknown pairing state %.32q", v.State)
	}
	return nil
}
