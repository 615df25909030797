package tabletwire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"

	"github.com/zmonitor/firmware/internal/proto/strictjson"
	"time"
)

// Paths of the API.
const (
	// PairingsPath: POST a PairingRequest; GET PairingsPath/{id} for its
	// PairingView.
	PairingsPath = "/v1/pairings"
	// BatchesPath: POST a BatchRequest; GET BatchesPath/{id} for its
	// BatchView.
	BatchesPath = "/v1/batches"
)

// PairingPath is the path of one pairing's view.
func PairingPath(id string) string { return PairingsPath + "/" + url.PathEscape(id) }

// BatchPath is the path of one batch's view.
func BatchPath(id string) string { return BatchesPath + "/" + url.PathEscape(id) }

// Size limits.
const (
	// MaxPairingRequest and MaxBatchRequest bound request bodies.
	MaxPairingRequest = 8 << 10
	MaxBatchRequest   = 2 << 20
	// MaxAnswer bounds what a client reads of one answer about one
	// pairing (Accepted, PairingView, ErrorResponse).
	MaxAnswer = 64 << 10
)

// PairingRequest is the body of POST /v1/pairings and one item of a batch:
// either QR (the scanned text) or DeviceID + Address + PairingCode (the
// manual path). Label, optional, overrides the inventory's device label.
type PairingRequest struct {
	QR          string `json:"qr,omitempty"`
	DeviceID    string `json:"deviceId,omitempty"`
	Address     string `json:"address,omitempty"`
	PairingCode string `json:"pairingCode,omitempty"`
	Label       string `json:"label,omitempty"`
}

// BatchRequest is the body of POST /v1/batches.
type BatchRequest struct {
	Items []PairingRequest `json:"items"`
}

// ErrorBody describes a refusal or a failure to the tablet.
type ErrorBody struct {
	Code    string `json:"code"`    // a refusal identifier ("TOKEN_ALREADY_USED") or a failure.Code identifier
	Title   string `json:"title"`   // short text to show
	Action  string `json:"action"`  // what the technician should do
	Message string `json:"message"` // specifics, never secret
}

// ErrorResponse is the body of every non-2xx answer.
type ErrorResponse struct {
	Error     ErrorBody `json:"error"`
	PairingID string    `json:"pairingId,omitempty"` // when the refusal was recorded
}

// Accepted is the 202 answer to POST /v1/pairings.
type Accepted struct {
	PairingID string `json:"pairingId"`
	DeviceID  string `json:"deviceId"`
	State     string `json:"state"`
}

// BatchItemResult is the immediate result of one batch item.
type BatchItemResult struct {
	Index     int        `json:"index"`
	PairingID string     `json:"pairingId,omitempty"`
	DeviceID  string     `json:"deviceId,omitempty"`
	State     string     `json:"state"`
	Error     *ErrorBody `json:"error,omitempty"`
}

// BatchAccepted is the 202 answer to POST /v1/batches.
type BatchAccepted struct {
	BatchID string            `json:"batchId"`
	Items   []BatchItemResult `json:"items"`
}

// Pairing states, as PairingView.State and Accepted.State name them.
const (
	StateQueued    = "queued"
	StateRunning   = "running"
	StateSucceeded = "succeeded" // the device is PROVISIONED
	StateFailed    = "failed"    // the device was contacted and the attempt failed
	StateRefused   = "refused"   // the Central Station refused before contacting the device
)

// PairingView is the answer to GET /v1/pairings/{id}: the progress and
// result of one attempt.
type PairingView struct {
	ID          string     `json:"id"`
	BatchID     string     `json:"batchId,omitempty"`
	DeviceID    string     `json:"deviceId"`
	Label       string     `json:"label,omitempty"` // device label pushed (the request's, else the inventory's)
	Method      string     `json:"method"`          // "qr" or "manual"
	State       string     `json:"state"`           // one of the State constants
	Final       bool       `json:"final"`
	DeviceState string     `json:"deviceState,omitempty"` // the device's last reported state
	Step        string     `json:"step,omitempty"`        // the Central Station's last step
	Result      *ErrorBody `json:"result,omitempty"`      // when failed or refused
	StartedAt   time.Time  `json:"startedAt"`
	UpdatedAt   time.Time  `json:"updatedAt"`
	FinishedAt  *time.Time `json:"finishedAt,omitempty"`
	// ClaimsReleased: the attempt failed before anything reached the
	// device, and the Central Station gave back the QR's token and the
	// pairing code: the QR code on the device's screen may be scanned
	// again once the cause is fixed.
	ClaimsReleased bool `json:"claimsReleased,omitempty"`
}

// Check reports whether v's state is one of the State constants and its
// finality matches it: queued and running are not final, the others are.
func (v PairingView) Check() error {
	switch v.State {
	case StateQueued, StateRunning:
		if v.Final {
			return fmt.Errorf("pairing state %s marked final", v.State)
		}
	case StateSucceeded, StateFailed, StateRefused:
		if !v.Final {
			return fmt.Errorf("pairing state %s not marked final", v.State)
		}
	default:
		return fmt.Errorf("unknown pairing state %.32q", v.State)
	}
	return nil
}

// BatchView is the answer to GET /v1/batches/{id}.
type BatchView struct {
	ID        string         `json:"id"`
	Size      int            `json:"size"`
	CreatedAt time.Time      `json:"createdAt"`
	Counts    map[string]int `json:"counts"` // pairings per state
	Done      bool           `json:"done"`
	Pairings  []PairingView  `json:"pairings"`
}

// DecodeRequest decodes one request body from r (at most limit bytes) into
// v, strictly (internal/proto/strictjson): unknown members, members whose
// name matches only when case is folded ({"QR": …}), members named twice,
// null, invalid UTF-8 and trailing data are refused.
func DecodeRequest(r io.Reader, limit int64, v any) error {
	if err := strictjson.DecodeReader(r, limit, v); err != nil {
		return fmt.Errorf("body: %w", err)
	}
	return nil
}

// DecodeAnswer decodes one answer of at most MaxAnswer bytes from r into v.
// Unknown members are ignored (a newer Central Station may say more);
// trailing data is refused.
func DecodeAnswer(r io.Reader, v any) error {
	b, err := io.ReadAll(io.LimitReader(r, MaxAnswer+1))
	if err != nil {
		return fmt.Errorf("read answer: %w", err)
	}
	if len(b) > MaxAnswer {
		return fmt.Errorf("answer larger than %d bytes", MaxAnswer)
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
