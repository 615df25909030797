package http1

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/textproto"
	"strconv"
	"strings"
)

// Error is a request the server cannot take, with the status to answer.
type Error struct {
	Status int
	Err    error
}

func (e *Error) Error() string {
	return fmt.Sprintf("%d %s: %v", e.Status, StatusText(e.Status), e.Err)
}
func (e *Error) Unwrap() error { return e.Err }

func reqErr(status int, format string, args ...any) error {
	return &Error{Status: status, Err: fmt.Errorf(format, args...)}
}

// Request is one parsed request. Body yields exactly ContentLength bytes.
type Request struct {
	Method        string
	Path          string // the target without its query
	Query         string // after '?', if any
	Proto         string // "HTTP/1.0" or "HTTP/1.1"
	Header        textproto.MIMEHeader
	ContentLength int64
	Body          io.Reader
}

// ReadRequest reads a request head from r: at most maxHead bytes for the
// request line and headers together. The body is not read; Request.Body
// reads it, and never more than ContentLength bytes from r.
func ReadRequest(r io.Reader, maxHead int) (*Request, error) {
	lr := &io.LimitedReader{R: r, N: int64(maxHead)}
	br := bufio.NewReaderSize(lr, min(maxHead, 4096))
	tp := textproto.NewReader(br)
	line, err := tp.ReadLine()
	if err != nil {
		return nil, headErr(lr, "request line", err)
	}
	req, err := parseRequestLine(line)
	if err != nil {
		return nil, err
	}
	h, err := tp.ReadMIMEHeader()
	if err != nil {
		return nil, headErr(lr, "headers", err)
	}
	req.Header = h
	if len(h.Values("Transfer-Encoding")) > 0 {
		return nil, reqErr(501, "transfer-encoding %q is not supported: send Content-Length", h.Get("Transfer-Encoding"))
	}
	n, err := contentLength(h.Values("Content-Length"))
	if err != nil {
		return nil, err
	}
	req.ContentLength = n
	// What the head left in the buffer counts against the body; allow the
	// rest of the body, and no more, from the connection.
	lr.N = max(0, n-int64(br.Buffered()))
	req.Body = io.LimitReader(br, n)
	return req, nil
}

func headErr(lr *io.LimitedReader, what string, err error) error {
	if lr.N == 0 {
		return reqErr(431, "%s: request head over the size limit", what)
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%s: connection closed: %w", what, io.ErrUnexpectedEOF)
	}
	var pe textproto.ProtocolError
	if errors.As(err, &pe) {
		return reqErr(400, "%s: %v", what, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

func parseRequestLine(line string) (*Request, error) {
	method, rest, ok1 := strings.Cut(line, " ")
	target, proto, ok2 := strings.Cut(rest, " ")
	if !ok1 || !ok2 || strings.Contains(proto, " ") {
		return nil, reqErr(400, "malformed request line %.80q", line)
	}
	if !isToken(method) {
		return nil, reqErr(400, "malformed method %.40q", method)
	}
	if proto != "HTTP/1.1" && proto != "HTTP/1.0" {
		return nil, reqErr(505, "protocol %.40q: only HTTP/1.1 and HTTP/1.0", proto)
	}
	if !strings.HasPrefix(target, "/") {
		return nil, reqErr(400, "target %.80q is not an absolute path", target)
	}
	for i := 0; i < len(target); i++ {
		if c := target[i]; c <= ' ' || c >= 0x7f || c == '#' {
			return nil, reqErr(400, "target %.80q has a forbidden byte", target)
		}
	}
	path, query, _ := strings.Cut(target, "?")
	return &Request{Method: method, Path: path, Query: query, Proto: proto}, nil
}

func contentLength(vals []string) (int64, error) {
	if len(vals) == 0 {
		return 0, nil
	}
	first := vals[0]
	for _, v := range vals[1:] {
		if v != first {
			return 0, reqErr(400, "conflicting Content-Length values")
		}
	}
	if first == "" || len(first) > 18 {
		return 0, reqErr(400, "Content-Length %.20q is not a length", first)
	}
	for i := 0; i < len(first); i++ {
		if first[i] < '0' || first[i] > '9' {
			return 0, reqErr(400, "Content-Length %.20q is not a length", first)
		}
	}
	n, err := strconv.ParseInt(first, 10, 64)
	if err != nil {
		return 0, reqErr(400, "Content-Length %.20q: %v", first, err)
	}
	return n, nil
}

// isToken reports whether s is an RFC 9110 token.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}
