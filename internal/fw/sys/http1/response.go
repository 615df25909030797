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

// Field is one response header field.
type Field struct{ Name, Value string }

// WriteHead writes a response's status line and header fields, with
// "Connection: close". With contentLength ≥ 0 it also sends Content-Length;
// with -1 the body is a stream that ends when the connection closes.
func WriteHead(w io.Writer, status int, contentLength int64, fields ...Field) error {
	var b strings.Builder
	fmt.Fprintf(&b, "HTTP/1.1 %03d %s\r\n", status, StatusText(status))
	for _, f := range fields {
		if !isToken(f.Name) || strings.ContainsAny(f.Value, "\r\n") {
			return fmt.Errorf("write head: bad header field %q", f.Name)
		}
		fmt.Fprintf(&b, "%s: %s\r\n", f.Name, f.Value)
	}
	if contentLength >= 0 {
		fmt.Fprintf(&b, "Content-Length: %d\r\n", contentLength)
	}
	b.WriteString("Connection: close\r\n\r\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteResponse writes a whole response with a body of known length.
func WriteResponse(w io.Writer, status int, body []byte, fields ...Field) error {
	if err := WriteHead(w, status, int64(len(body)), fields...); err != nil {
		return err
	}
	_, err := w.Write(body)
	return err
}

// ResponseHead is the status and header of a server's response.
type ResponseHead struct {
	Status int
	Reason string
	Header textproto.MIMEHeader
}

// ReadResponseHead reads a response's status line and headers from br.
func ReadResponseHead(br *bufio.Reader) (ResponseHead, error) {
	tp := textproto.NewReader(br)
	line, err := tp.ReadLine()
	if err != nil {
		return ResponseHead{}, fmt.Errorf("status line: %w", err)
	}
	proto, rest, ok := strings.Cut(line, " ")
	if !ok || !strings.HasPrefix(proto, "HTTP/1.") || len(proto) != len("HTTP/1.1") {
		return ResponseHead{}, fmt.Errorf("status line %.80q: not HTTP/1.x", line)
	}
	code, reason, _ := strings.Cut(rest, " ")
	n, err := strconv.Atoi(code)
	if err != nil || len(code) != 3 || n < 100 {
		return ResponseHead{}, fmt.Errorf("status line %.80q: bad status code", line)
	}
	h, err := tp.ReadMIMEHeader()
	if err != nil {
		return ResponseHead{}, fmt.Errorf("headers: %w", err)
	}
	return ResponseHead{Status: n, Reason: reason, Header: h}, nil
}

// StatusText is the reason phrase for the statuses this firmware sends.
func StatusText(code int) string {
	switch code {
	case 200:
		return "OK"
	case 400:
		return "Bad Request"
	case 403:
		return "Forbidden"
	case 404:
		return "Not Found"
	case 405:
		return "Method Not Allowed"
	case 408:
		return "Request Timeout"
	case 409:
		return "Conflict"
	case 413:
		return "Content Too Large"
	case 429:
		return "Too Many Requests"
	case 431:
		return "Request Header Fields Too Large"
	case 500:
		return "Internal Server Error"
	case 501:
		return "Not Implemented"
	case 503:
		return "Service Unavailable"
	case 505:
		return "HTTP Version Not Supported"
	}
	return "Status " + strconv.Itoa(code)
}

// ErrBodyTooLarge is returned by ReadResponseBody for a body over its limit.
var ErrBodyTooLarge = errors.New("http1: response body too large")

// ReadResponseBody reads the body of the response whose head was just read
// from br: Content-Length bytes, or, without a Content-Length, until the
// server closes the connection (the request asked for "Connection: close").
// A chunked body is refused (the device's requests are one-shot and the
// servers it talks to send their short answers with a length), and so is a
// body of more than max bytes.
func ReadResponseBody(br *bufio.Reader, h ResponseHead, max int64) ([]byte, error) {
	if te := h.Header.Get("Transfer-Encoding"); te != "" && !strings.EqualFold(te, "identity") {
		return nil, fmt.Errorf("read body: Transfer-Encoding %q is not supported", te)
	}
	if cl := h.Header.Values("Content-Length"); len(cl) > 0 {
		if len(cl) > 1 {
			return nil, errors.New("read body: more than one Content-Length")
		}
		n, err := strconv.ParseInt(cl[0], 10, 64)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("read body: Content-Length %.20q", cl[0])
		}
		if n > max {
			return nil, fmt.Errorf("%w: Content-Length %d, limit %d", ErrBodyTooLarge, n, max)
		}
		b := make([]byte, n)
		if _, err := io.ReadFull(br, b); err != nil {
			return nil, fmt.Errorf("read body: %w", err)
		}
		return b, nil
	}
	b, err := io.ReadAll(io.LimitReader(br, max+1))
	if err != nil {
		return nil, fmt.Errorf("read body: %w", err)
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrBodyTooLarge, max)
	}
	return b, nil
}

// WriteRequest writes a request with "Connection: close": method, an
// origin-form target, the Host, the given fields, and the body with its
// Content-Length (none for a request without a body).
func WriteRequest(w io.Writer, method, target, host string, body []byte, fields ...Field) error {
	if !isToken(method) || !strings.HasPrefix(target, "/") || strings.ContainsAny(target, " \r\n") || strings.ContainsAny(host, " \r\n/") || host == "" {
		return fmt.Errorf("write request: bad request line %.20q %.80q or host %.80q", method, target, host)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\n", method, target, host)
	for _, f := range fields {
		if !isToken(f.Name) || strings.ContainsAny(f.Value, "\r\n") {
			return fmt.Errorf("write request: bad header field %q", f.Name)
		}
		fmt.Fprintf(&b, "%s: %s\r\n", f.Name, f.Value)
	}
	if body != nil {
		fmt.Fprintf(&b, "Content-Length: %d\r\n", len(body))
	}
	b.WriteString("Connection: close\r\n\r\n")
	if _, err := io.WriteString(w, b.String()); err != nil {
		return err
	}
	if len(body) > 0 {
		_, err := w.Write(body)
		return err
	}
	return nil
}
