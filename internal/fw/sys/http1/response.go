package http1

import (
	"bufio"
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
