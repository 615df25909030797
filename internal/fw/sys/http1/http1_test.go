package http1

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
)

func read(t *testing.T, raw string, maxHead int) (*Request, []byte, error) {
	t.Helper()
	req, err := ReadRequest(strings.NewReader(raw), maxHead)
	if err != nil {
		return nil, nil, err
	}
	body, err := io.ReadAll(req.Body)
	if err != nil {
		t.Fatalf("body: %v", err)
	}
	return req, body, nil
}

func TestReadRequest(t *testing.T) {
	req, body, err := read(t, "POST /v1/hello?x=1 HTTP/1.1\r\nHost: d\r\nContent-Length: 5\r\ncontent-type: application/json\r\n\r\nhello and more", 1024)
	if err != nil {
		t.Fatal(err)
	}
	if req.Method != "POST" || req.Path != "/v1/hello" || req.Query != "x=1" || req.Proto != "HTTP/1.1" ||
		req.Header.Get("Content-Type") != "application/json" || req.ContentLength != 5 {
		t.Errorf("request = %+v", req)
	}
	if string(body) != "hello" {
		t.Errorf("body %q: read past Content-Length", body)
	}
	req, body, err = read(t, "GET /v1/status HTTP/1.0\r\n\r\n", 1024)
	if err != nil || req.Method != "GET" || len(body) != 0 {
		t.Errorf("GET: %+v %q %v", req, body, err)
	}
}

func TestReadRequestRefusals(t *testing.T) {
	for _, c := range []struct {
		name, raw string
		status    int
	}{
		{"no version", "GET /\r\n\r\n", 400},
		{"http2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505},
		{"absolute URI", "GET http://x/ HTTP/1.1\r\n\r\n", 400},
		{"space in target", "GET /a b HTTP/1.1\r\n\r\n", 400},
		{"control byte in target", "GET /a\x01 HTTP/1.1\r\n\r\n", 400},
		{"bad method", "G(T / HTTP/1.1\r\n\r\n", 400},
		{"chunked", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 501},
		{"negative length", "POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400},
		{"length with sign", "POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\n", 400},
		{"conflicting lengths", "POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", 400},
		{"huge length", "POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n", 400},
		{"malformed header", "GET / HTTP/1.1\r\nno colon here\r\n\r\n", 400},
		{"head too large", "GET / HTTP/1.1\r\nX: " + strings.Repeat("a", 2000) + "\r\n\r\n", 431},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := read(t, c.raw, 1024)
			var he *Error
			if !errors.As(err, &he) || he.Status != c.status {
				t.Fatalf("err = %v, want status %d", err, c.status)
			}
		})
	}
	// A connection that ends mid-head is not answered (there is no one to
	// answer), and says so.
	_, _, err := read(t, "GET / HTTP/1.1\r\nHost: x\r\n", 1024)
	var he *Error
	if err == nil || errors.As(err, &he) || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("truncated head: %v", err)
	}
}

// The body reader never takes more than Content-Length from the connection,
// even when the client sends more.
func TestBodyBounded(t *testing.T) {
	src := &countingReader{r: strings.NewReader("POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc" + strings.Repeat("x", 1<<20))}
	req, err := ReadRequest(src, 64)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(req.Body)
	if string(b) != "abc" {
		t.Errorf("body %q", b)
	}
	if src.n > 64+3 {
		t.Errorf("read %d bytes from the connection, want at most head limit + body", src.n)
	}
}

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// net/http's client (the Central Station's side) understands the answers,
// including a close-delimited stream.
func TestInteropWithNetHTTPClient(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				req, err := ReadRequest(c, 4096)
				if err != nil {
					return
				}
				body, _ := io.ReadAll(req.Body)
				if req.Path == "/stream" {
					_ = WriteHead(c, 200, -1, Field{"Content-Type", "application/jsonl"})
					for i := 0; i < 3; i++ {
						_, _ = io.WriteString(c, "{\"n\":1}\n")
					}
					return
				}
				_ = WriteResponse(c, 409, append([]byte(req.Method+" "), body...), Field{"Content-Type", "text/plain"})
			}()
		}
	}()
	hc := &http.Client{}
	defer hc.CloseIdleConnections()
	for i := 0; i < 2; i++ { // a second request needs a new connection
		resp, err := hc.Post("http://"+ln.Addr().String()+"/x", "application/json", bytes.NewReader([]byte("payload")))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 409 || string(b) != "POST payload" || resp.Header.Get("Content-Type") != "text/plain" {
			t.Errorf("answer %d %q %v", resp.StatusCode, b, resp.Header)
		}
	}
	resp, err := hc.Get("http://" + ln.Addr().String() + "/stream")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	n := 0
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		n++
	}
	if n != 3 || resp.ContentLength != -1 {
		t.Errorf("stream: %d lines, length %d", n, resp.ContentLength)
	}
}

func TestWriteHeadRefusesInjection(t *testing.T) {
	var b bytes.Buffer
	if err := WriteHead(&b, 200, 0, Field{"X", "a\r\nSet-Cookie: y"}); err == nil {
		t.Error("header value with CRLF written")
	}
	if err := WriteHead(&b, 200, 0, Field{"X Y", "a"}); err == nil {
		t.Error("header name with a space written")
	}
}

func TestReadResponseHead(t *testing.T) {
	h, err := ReadResponseHead(bufio.NewReader(strings.NewReader("HTTP/1.1 204 No Content\r\nServer: m\r\n\r\n")))
	if err != nil || h.Status != 204 || h.Reason != "No Content" || h.Header.Get("Server") != "m" {
		t.Fatalf("%+v %v", h, err)
	}
	for _, raw := range []string{"", "SSH-2.0-x\r\n", "HTTP/1.1 2000 x\r\n\r\n", "HTTP/1.1 abc\r\n\r\n", "HTTP/2 200\r\n\r\n", "HTTP/1.1 099 x\r\n\r\n"} {
		if _, err := ReadResponseHead(bufio.NewReader(strings.NewReader(raw))); err == nil {
			t.Errorf("%q accepted", raw)
		}
	}
}

func FuzzReadRequest(f *testing.F) {
	f.Add([]byte("POST /v1/hello HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}"))
	f.Add([]byte("GET /v1/status HTTP/1.0\r\n\r\n"))
	f.Add([]byte("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"))
	f.Add([]byte("GET / HTTP/1.1\r\n x: folded\r\n\r\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		req, err := ReadRequest(bytes.NewReader(raw), 256)
		if err != nil {
			return
		}
		if !strings.HasPrefix(req.Path, "/") || req.ContentLength < 0 {
			t.Fatalf("accepted %+v", req)
		}
		b, _ := io.ReadAll(req.Body)
		if int64(len(b)) > req.ContentLength {
			t.Fatalf("body %d bytes over Content-Length %d", len(b), req.ContentLength)
		}
	})
}

func FuzzReadResponseHead(f *testing.F) {
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
	f.Add([]byte("HTTP/1.0 503\r\n\r\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		h, err := ReadResponseHead(bufio.NewReader(bytes.NewReader(raw)))
		if err == nil && (h.Status < 100 || h.Status > 999) {
			t.Fatalf("accepted status %d", h.Status)
		}
	})
}

func TestReadResponseBody(t *testing.T) {
	for raw, want := range map[string]string{
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello trailing": "hello",
		"HTTP/1.1 200 OK\r\n\r\nuntil close":                         "until close",
		"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n":       "",
	} {
		br := bufio.NewReader(strings.NewReader(raw))
		h, err := ReadResponseHead(br)
		if err != nil {
			t.Fatal(err)
		}
		b, err := ReadResponseBody(br, h, 64)
		if err != nil || string(b) != want {
			t.Errorf("%q: %q, %v; want %q", raw, b, err, want)
		}
	}
	for _, raw := range []string{
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 65\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel",
		"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx",
		"HTTP/1.1 200 OK\r\n\r\n" + strings.Repeat("x", 65),
	} {
		br := bufio.NewReader(strings.NewReader(raw))
		h, err := ReadResponseHead(br)
		if err != nil {
			t.Fatal(err)
		}
		if b, err := ReadResponseBody(br, h, 64); err == nil {
			t.Errorf("%q: accepted %q", raw, b)
		}
	}
}

// A request WriteRequest writes is read by net/http's server as written.
func TestWriteRequestInterop(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteRequest(&buf, "POST", "/.well-known/est/simplereenroll", "est.example:9445", []byte("MIIB"), Field{"Content-Type", "application/pkcs10"}); err != nil {
		t.Fatal(err)
	}
	req, err := http.ReadRequest(bufio.NewReader(&buf))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(req.Body)
	if req.Method != "POST" || req.URL.Path != "/.well-known/est/simplereenroll" || req.Host != "est.example:9445" ||
		req.Header.Get("Content-Type") != "application/pkcs10" || string(body) != "MIIB" || !req.Close {
		t.Fatalf("read back as %s %s host %s %v body %q close %v", req.Method, req.URL, req.Host, req.Header, body, req.Close)
	}
	for _, bad := range [][3]string{{"GET X", "/", "h"}, {"GET", "x", "h"}, {"GET", "/\r\n", "h"}, {"GET", "/", ""}, {"GET", "/", "h\r\nX: y"}} {
		if err := WriteRequest(io.Discard, bad[0], bad[1], bad[2], nil); err == nil {
			t.Errorf("WriteRequest(%q, %q, %q) accepted", bad[0], bad[1], bad[2])
		}
	}
}

func FuzzReadResponseBody(f *testing.F) {
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
	f.Add([]byte("HTTP/1.1 200 OK\r\n\r\nuntil close"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		br := bufio.NewReader(bytes.NewReader(raw))
		h, err := ReadResponseHead(br)
		if err != nil {
			return
		}
		if b, err := ReadResponseBody(br, h, 128); err == nil && len(b) > 128 {
			t.Fatalf("body of %d bytes over the limit", len(b))
		}
	})
}
