package tablet

import (
	"fmt"
	"net/http"
	"strings"
	"unicode"

	"github.com/zmonitor/firmware/internal/proto/failure"
	"github.com/zmonitor/firmware/internal/proto/tabletwire"
)

// Problem is why a pairing did not succeed, in the words of the spec's
// error table (DOC-PROC-001 section 6): a title and what the technician
// should do, plus specifics.
type Problem struct {
	// Code is the stable identifier: a device failure code
	// ("PAIRING_CODE_MISMATCH") or a Central Station refusal
	// ("TOKEN_ALREADY_USED").
	Code string
	// Failure is the device's failure code when the device was reached
	// and the attempt failed; failure.None for refusals.
	Failure failure.Code
	// Title and Action are what the technician reads.
	Title, Action string
	// Message gives specifics (never secret).
	Message string
}

// Headline is one sentence for the technician, e.g. "Pairing code
// mismatch. What to do: Re-scan QR code."
func (p Problem) Headline() string {
	s := strings.TrimSuffix(p.Title, ".") + "."
	if p.Action != "" {
		s += " What to do: " + strings.TrimSuffix(p.Action, ".") + "."
	}
	return s
}

// deviceProblem describes a failed attempt: the title and action come from
// the failure code's table (the spec's text), the server's words only when
// the code is not one the tablet knows.
func deviceProblem(b *tabletwire.ErrorBody) *Problem {
	if b == nil {
		return &Problem{Code: failure.Internal.String(), Failure: failure.Internal,
			Title: failure.Internal.Title(), Action: failure.Internal.UserAction(), Message: "the Central Station gave no reason"}
	}
	p := &Problem{Code: clean(b.Code, 64), Title: clean(b.Title, 120), Action: clean(b.Action, 120), Message: clean(b.Message, 500)}
	if c, err := failure.Parse(b.Code); err == nil && c != failure.None {
		p.Failure, p.Title, p.Action = c, c.Title(), c.UserAction()
	}
	fillDefaults(p)
	return p
}

// refusalProblem describes a refusal: the Central Station's title and
// action are specific to its checks; failure codes fill in when it sent
// none.
func refusalProblem(b tabletwire.ErrorBody) *Problem {
	p := &Problem{Code: clean(b.Code, 64), Title: clean(b.Title, 120), Action: clean(b.Action, 120), Message: clean(b.Message, 500)}
	if c, err := failure.Parse(b.Code); err == nil && c != failure.None {
		if p.Title == "" {
			p.Title = c.Title()
		}
		if p.Action == "" {
			p.Action = c.UserAction()
		}
	}
	fillDefaults(p)
	return p
}

func fillDefaults(p *Problem) {
	if p.Code == "" {
		p.Code = "UNKNOWN"
	}
	if p.Title == "" {
		p.Title = "Central Station error " + p.Code
	}
	if p.Action == "" {
		p.Action = "Contact IT support"
	}
}

// clean keeps text from the network printable on a terminal: control
// characters (escape sequences) become spaces, and it is cut at max bytes.
func clean(s string, max int) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == unicode.ReplacementChar {
			return ' '
		}
		return r
	}, s)
	if len(s) > max {
		cut := max
		for cut > 0 && !utf8Start(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return strings.TrimSpace(s)
}

func utf8Start(b byte) bool { return b&0xC0 != 0x80 }

// APIError is an answer of the Central Station other than the expected
// one: a refusal (its error body) or an unexpected status.
type APIError struct {
	Status    int
	Problem   Problem
	PairingID string // when the Central Station recorded the refused attempt
}

func (e *APIError) Error() string {
	s := fmt.Sprintf("Central Station refused (HTTP %d %s): %s", e.Status, e.Problem.Code, e.Problem.Title)
	if e.Problem.Message != "" {
		s += ": " + e.Problem.Message
	}
	return s
}

// apiError reads a non-expected answer.
func apiError(resp *http.Response) *APIError {
	e := &APIError{Status: resp.StatusCode}
	var er tabletwire.ErrorResponse
	if err := tabletwire.DecodeAnswer(resp.Body, &er); err == nil && er.Error.Code != "" {
		e.Problem = *refusalProblem(er.Error)
		e.PairingID = clean(er.PairingID, 64)
		return e
	}
	// Not the API's error body: a proxy, or another server on the port.
	e.Problem = Problem{
		Code:    fmt.Sprintf("HTTP_%d", resp.StatusCode),
		Title:   "Unexpected answer from the Central Station",
		Action:  "Check the Central Station address, then contact IT support",
		Message: fmt.Sprintf("HTTP %d %s", resp.StatusCode, http.StatusText(resp.StatusCode)),
	}
	return e
}

// InputError is a request refused by the tablet itself, before anything
// was sent: a typo in the pairing code, a picture that is not a pairing QR.
type InputError struct {
	Field string // "qr", "pairingCode", "deviceId", "address", "label"
	// Problem says what to do.
	Problem Problem
	Err     error
}

func (e *InputError) Error() string {
	return fmt.Sprintf("%s: %s %v", e.Field, e.Problem.Headline(), e.Err)
}

func (e *InputError) Unwrap() error { return e.Err }
