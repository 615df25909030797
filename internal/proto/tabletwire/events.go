package tabletwire

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Progress stream: GET PairingEventsPath(id) with "Accept:
// text/event-stream" answers server-sent events, one per change of the
// pairing, each of type EventPairing with the whole PairingView as its
// data; the stream ends after the final view.
const (
	// EventPairing is the event type of a PairingView.
	EventPairing = "pairing"
	// EventStreamType is the stream's media type.
	EventStreamType = "text/event-stream"
	// MaxEventLine bounds one line of the stream.
	MaxEventLine = MaxAnswer
)

// PairingEventsPath is the path of one pairing's progress stream.
func PairingEventsPath(id string) string { return PairingPath(id) + "/events" }

// ErrStreamEnded: the stream ended before a final view.
var ErrStreamEnded = errors.New("progress stream ended before the pairing's end")

// ReadEvents reads a progress stream (the subset of the server-sent events
// format the Central Station writes: "event:" and "data:" fields, comment
// lines, events ended by a blank line), calling fn with each pairing view
// until a final one; it returns nil after the final view, ErrStreamEnded
// when the stream ends first, or fn's error. Events of other types are
// skipped; a view that does not decode, or whose state is not one of the
// State constants, is an error. Lines longer than MaxEventLine are refused.
func ReadEvents(r io.Reader, fn func(PairingView) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), MaxEventLine)
	var event string
	var data bytes.Buffer
	hasData := false
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			if hasData && (event == "" || event == EventPairing) {
				var v PairingView
				if err := DecodeAnswer(bytes.NewReader(data.Bytes()), &v); err != nil {
					return fmt.Errorf("progress event: %w", err)
				}
				if err := v.Check(); err != nil {
					return fmt.Errorf("progress event: %w", err)
				}
				if err := fn(v); err != nil {
					return err
				}
				if v.Final {
					return nil
				}
			}
			event, hasData = "", false
			data.Reset()
			continue
		}
		if strings.HasPrefix(line, ":") {
			continue // comment (keep-alive)
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "event":
			event = value
		case "data":
			if hasData {
				data.WriteByte('\n')
			}
			if data.Len()+len(value) > MaxAnswer {
				return fmt.Errorf("progress event larger than %d bytes", MaxAnswer)
			}
			data.WriteString(value)
			hasData = true
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read progress stream: %w", err)
	}
	return ErrStreamEnded
}
