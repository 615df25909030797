package qemu

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"time"
)

// maxQMPLine bounds one QMP message; QEMU's replies to our commands are a
// few hundred bytes (events with device paths a little more).
const maxQMPLine = 64 << 10

// QMPError is an error reply of QEMU ({"error": {"class", "desc"}}).
type QMPError struct {
	Command string
	Class   string
	Desc    string
}

func (e *QMPError) Error() string {
	return fmt.Sprintf("qmp %s: %s: %s", e.Command, e.Class, e.Desc)
}

// qmpMessage is any message QEMU sends: the greeting, a reply or an event.
type qmpMessage struct {
	QMP    json.RawMessage `json:"QMP"`
	Return json.RawMessage `json:"return"`
	Error  *struct {
		Class string `json:"class"`
		Desc  string `json:"desc"`
	} `json:"error"`
	Event string `json:"event"`
}

// parseQMPMessage decodes one message; it must be exactly one of a
// greeting, a return, an error or an event.
func parseQMPMessage(line []byte) (qmpMessage, error) {
	var m qmpMessage
	if err := json.Unmarshal(line, &m); err != nil {
		return m, fmt.Errorf("qmp: bad message: %w", err)
	}
	n := 0
	for _, present := range []bool{m.QMP != nil, m.Return != nil, m.Error != nil, m.Event != ""} {
		if present {
			n++
		}
	}
	if n != 1 {
		return m, fmt.Errorf("qmp: message is not exactly one of greeting, return, error, event: %.80q", line)
	}
	return m, nil
}

// qmpConn is one QMP session over a unix socket.
type qmpConn struct {
	c  net.Conn
	r  *bufio.Reader
	id int
}

// dialQMP connects, reads the greeting and negotiates capabilities.
func dialQMP(ctx context.Context, sock string) (*qmpConn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", sock)
	if err != nil {
		return nil, fmt.Errorf("qmp: connect: %w", err)
	}
	q := &qmpConn{c: c, r: bufio.NewReaderSize(c, 4096)}
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	m, err := q.read()
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("qmp: greeting: %w", err)
	}
	if m.QMP == nil {
		c.Close()
		return nil, errors.New("qmp: first message is not the greeting")
	}
	if _, err := q.execute("qmp_capabilities", nil); err != nil {
		c.Close()
		return nil, err
	}
	return q, nil
}

func (q *qmpConn) read() (qmpMessage, error) {
	var line []byte
	for {
		chunk, isPrefix, err := q.r.ReadLine()
		if err != nil {
			return qmpMessage{}, err
		}
		line = append(line, chunk...)
		if len(line) > maxQMPLine {
			return qmpMessage{}, fmt.Errorf("qmp: message longer than %d bytes", maxQMPLine)
		}
		if !isPrefix {
			break
		}
	}
	return parseQMPMessage(bytes.TrimSpace(line))
}

// execute sends a command and returns its "return" value, skipping events.
func (q *qmpConn) execute(cmd string, args any) (json.RawMessage, error) {
	q.id++
	req := map[string]any{"execute": cmd, "id": q.id}
	if args != nil {
		req["arguments"] = args
	}
	b, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("qmp %s: encode: %w", cmd, err)
	}
	if _, err := q.c.Write(append(b, '\n')); err != nil {
		return nil, fmt.Errorf("qmp %s: send: %w", cmd, err)
	}
	for {
		m, err := q.read()
		if err != nil {
			return nil, fmt.Errorf("qmp %s: %w", cmd, err)
		}
		switch {
		case m.Error != nil:
			return nil, &QMPError{Command: cmd, Class: m.Error.Class, Desc: m.Error.Desc}
		case m.Return != nil:
			return m.Return, nil
		}
		// An event: not ours.
	}
}

func (q *qmpConn) Close() error { return q.c.Close() }

// QMP runs one command on the QMP socket sock (a new session each time;
// QEMU serves one client at a time) and returns its "return" value.
func QMP(ctx context.Context, sock, cmd string, args any) (json.RawMessage, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	q, err := dialQMP(ctx, sock)
	if err != nil {
		return nil, err
	}
	defer q.Close()
	return q.execute(cmd, args)
}
