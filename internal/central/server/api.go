package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// Request size limits.
const (
	MaxPairingRequest = 8 << 10
	MaxBatchRequest   = 2 << 20
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
	Code    string `json:"code"`    // Refusal or failure.Code identifier
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

// PairingView is the answer to GET /v1/pairings/{id}.
type PairingView struct {
	ID          string     `json:"id"`
	BatchID     string     `json:"batchId,omitempty"`
	DeviceID    string     `json:"deviceId"`
	Label       string     `json:"label,omitempty"` // device label pushed (the request's, else the inventory's)
	Method      string     `json:"method"`
	State       string     `json:"state"` // queued, running, succeeded, failed, refused
	Final       bool       `json:"final"`
	DeviceState string     `json:"deviceState,omitempty"`
	Step        string     `json:"step,omitempty"`
	Result      *ErrorBody `json:"result,omitempty"` // when failed or refused
	StartedAt   time.Time  `json:"startedAt"`
	UpdatedAt   time.Time  `json:"updatedAt"`
	FinishedAt  *time.Time `json:"finishedAt,omitempty"`
}

// BatchView is the answer to GET /v1/batches/{id}.
type BatchView struct {
	ID        string         `json:"id"`
	Size      int            `json:"size"`
	CreatedAt time.Time      `json:"createdAt"`
	Counts    map[string]int `json:"counts"` // per state
	Done      bool           `json:"done"`
	Pairings  []PairingView  `json:"pairings"`
}

// decodeStrict decodes one JSON value from r (at most limit bytes) into v:
// unknown fields and trailing data are refused.
func decodeStrict(r io.Reader, limit int64, v any) error {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return fmt.Errorf("read body: %w", err)
	}
	if int64(len(b)) > limit {
		return fmt.Errorf("body larger than %d bytes", limit)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("body: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("body: data after the JSON value")
	}
	return nil
}
