package tabletwire

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestMemberNames pins the JSON member names docs/central-station.md
// documents: renaming a field breaks every tablet in the field.
func TestMemberNames(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	body := &ErrorBody{Code: "C", Title: "T", Action: "A", Message: "M"}
	for _, tc := range []struct {
		v    any
		want string
	}{
		{PairingRequest{QR: "q", DeviceID: "d", Address: "a", PairingCode: "c", Label: "l"},
			`{"qr":"q","deviceId":"d","address":"a","pairingCode":"c","label":"l"}`},
		{PairingRequest{QR: "q"}, `{"qr":"q"}`},
		{BatchRequest{Items: []PairingRequest{{QR: "q"}}}, `{"items":[{"qr":"q"}]}`},
		{ErrorResponse{Error: *body, PairingID: "p-1"}, `{"error":{"code":"C","title":"T","action":"A","message":"M"},"pairingId":"p-1"}`},
		{ErrorResponse{Error: *body}, `{"error":{"code":"C","title":"T","action":"A","message":"M"}}`},
		{Accepted{PairingID: "p-1", DeviceID: "ZM-001", State: StateQueued}, `{"pairingId":"p-1","deviceId":"ZM-001","state":"queued"}`},
		{BatchAccepted{BatchID: "b-1", Items: []BatchItemResult{{Index: 0, PairingID: "p-1", DeviceID: "ZM-001", State: StateQueued}, {Index: 1, State: StateRefused, Error: body}}},
			`{"batchId":"b-1","items":[{"index":0,"pairingId":"p-1","deviceId":"ZM-001","state":"queued"},{"index":1,"state":"refused","error":{"code":"C","title":"T","action":"A","message":"M"}}]}`},
		{PairingView{ID: "p-1", BatchID: "b-1", DeviceID: "ZM-001", Label: "ICU", Method: "qr", State: StateFailed, Final: true, DeviceState: "PROVISIONING_FAILED", Step: "push", Result: body, StartedAt: now, UpdatedAt: now, FinishedAt: &now, ClaimsReleased: true},
			`{"id":"p-1","batchId":"b-1","deviceId":"ZM-001","label":"ICU","method":"qr","state":"failed","final":true,"deviceState":"PROVISIONING_FAILED","step":"push","result":{"code":"C","title":"T","action":"A","message":"M"},"startedAt":"2026-03-01T12:00:00Z","updatedAt":"2026-03-01T12:00:00Z","finishedAt":"2026-03-01T12:00:00Z","claimsReleased":true}`},
		{PairingView{ID: "p-1", DeviceID: "ZM-001", Method: "manual", State: StateQueued, StartedAt: now, UpdatedAt: now},
			`{"id":"p-1","deviceId":"ZM-001","method":"manual","state":"queued","final":false,"startedAt":"2026-03-01T12:00:00Z","updatedAt":"2026-03-01T12:00:00Z"}`},
		{BatchView{ID: "b-1", Size: 2, CreatedAt: now, Counts: map[string]int{StateSucceeded: 2}, Done: true, Pairings: []PairingView{}},
			`{"id":"b-1","size":2,"createdAt":"2026-03-01T12:00:00Z","counts":{"succeeded":2},"done":true,"pairings":[]}`},
	} {
		b, err := json.Marshal(tc.v)
		if err != nil || string(b) != tc.want {
			t.Errorf("%T:\n got %s (%v)\nwant %s", tc.v, b, err, tc.want)
		}
	}
}

func TestPairingViewCheck(t *testing.T) {
	for _, tc := range []struct {
		state string
		final bool
		ok    bool
	}{
		{StateQueued, false, true}, {StateRunning, false, true},
		{StateSucceeded, true, true}, {StateFailed, true, true}, {StateRefused, true, true},
		{StateQueued, true, false}, {StateRunning, true, false},
		{StateSucceeded, false, false}, {StateFailed, false, false}, {StateRefused, false, false},
		{"", false, false}, {"done", true, false}, {"SUCCEEDED", true, false},
	} {
		if err := (PairingView{State: tc.state, Final: tc.final}).Check(); (err == nil) != tc.ok {
			t.Errorf("state %q final %v: Check = %v, want ok %v", tc.state, tc.final, err, tc.ok)
		}
	}
}

func TestPaths(t *testing.T) {
	if got := PairingPath("p-0123abcd"); got != "/v1/pairings/p-0123abcd" {
		t.Errorf("PairingPath = %q", got)
	}
	if got := BatchPath("b-1"); got != "/v1/batches/b-1" {
		t.Errorf("BatchPath = %q", got)
	}
	// An ID from the network cannot climb out of its collection.
	if got := PairingPath("../batches/b-1"); got != "/v1/pairings/..%2Fbatches%2Fb-1" {
		t.Errorf("PairingPath of a path = %q", got)
	}
}

func TestDecodeRequest(t *testing.T) {
	var req PairingRequest
	if err := DecodeRequest(strings.NewReader(` {"qr":"x","label":"ICU"} `), MaxPairingRequest, &req); err != nil || req != (PairingRequest{QR: "x", Label: "ICU"}) {
		t.Fatalf("good request: %+v, %v", req, err)
	}
	for name, in := range map[string]string{
		"unknown field":   `{"qr":"x","admin":true}`,
		"trailing data":   `{"qr":"x"} {}`,
		"not JSON":        `qr=x`,
		"wrong type":      `{"qr":1}`,
		"empty":           ``,
		"too large":       `{"qr":"` + strings.Repeat("x", MaxPairingRequest) + `"}`,
		"unknown, folded": `{"QR":"x","Admin":1}`, // QR folds to qr; Admin is still unknown
		"folded name":     `{"QR":"x"}`,
		"folded, escaped": `{"\u0051R":"x"}`,
		"duplicate":       `{"qr":"x","qr":"y"}`,
		"null":            `{"qr":null}`,
		"invalid UTF-8":   "{\"qr\":\"\xff\"}",
		"folded in batch": `{"items":[{"qr":"x"},{"DeviceId":"ZM-1"}]}`,
		"duplicate items": `{"items":[],"items":[{"qr":"x"}]}`,
	} {
		var req BatchRequest
		if err := DecodeRequest(strings.NewReader(in), MaxPairingRequest, &req); err == nil && strings.Contains(in, "items") {
			t.Errorf("%s: accepted as %+v", name, req)
		}
		var one PairingRequest
		if err := DecodeRequest(strings.NewReader(in), MaxPairingRequest, &one); err == nil {
			t.Errorf("%s: accepted as %+v", name, one)
		}
	}
}

func TestDecodeAnswer(t *testing.T) {
	var v PairingView
	// A newer Central Station may say more: unknown members are ignored.
	if err := DecodeAnswer(strings.NewReader(`{"id":"p-1","state":"running","final":false,"eta":"soon"}`), &v); err != nil || v.ID != "p-1" || v.State != StateRunning {
		t.Fatalf("answer with an extra member: %+v, %v", v, err)
	}
	for name, in := range map[string]string{
		"trailing data": `{"id":"p-1"} {"id":"p-2"}`,
		"too large":     `{"id":"` + strings.Repeat("x", MaxAnswer) + `"}`,
		"not JSON":      `<html>Bad Gateway</html>`,
		"empty":         ``,
	} {
		var v PairingView
		if err := DecodeAnswer(strings.NewReader(in), &v); err == nil {
			t.Errorf("%s: accepted as %+v", name, v)
		}
	}
}

// FuzzDecodeRequest: any body is refused with an error or decodes to a
// request that encodes and decodes back to itself.
func FuzzDecodeRequest(f *testing.F) {
	f.Add([]byte(`{"qr":"{\"deviceId\":\"ZM-001\"}","label":"ICU"}`))
	f.Add([]byte(`{"deviceId":"ZM-001","address":"10.0.0.5","pairingCode":"ABC-123-DEF"}`))
	f.Add([]byte(`{"items":[{"qr":"x"}]}`))
	f.Add([]byte(`{"qr":"\ud800"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var req PairingRequest
		if err := DecodeRequest(strings.NewReader(string(b)), MaxPairingRequest, &req); err != nil {
			return
		}
		raw, err := json.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		var back PairingRequest
		if err := DecodeRequest(strings.NewReader(string(raw)), MaxPairingRequest, &back); err != nil || !reflect.DeepEqual(back, req) {
			t.Fatalf("%q decoded to %+v, re-encoded %s, decoded back to %+v (%v)", b, req, raw, back, err)
		}
	})
}
