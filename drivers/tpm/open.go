package tpm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/google/go-tpm/tpm2/transport"
	"github.com/google/go-tpm/tpm2/transport/linuxtpm"
	"github.com/google/go-tpm/tpm2/transport/linuxudstpm"
)

// Open opens a TPM by the path the board profile names:
//
//   - "/dev/tpmrm0" (any path without a scheme): a TPM character device,
//     best the kernel's resource manager (tpmrm), which also starts the TPM
//     up and flushes what a crashed process left behind;
//   - "unix:/run/swtpm/sock": swtpm's command socket
//     (swtpm socket --server type=unixio,path=...);
//   - "tcp:127.0.0.1:2321": swtpm's TCP command port
//     (swtpm socket --server type=tcp,port=2321). This is swtpm's raw
//     protocol, the one tpm2-tools' "swtpm" TCTI speaks, not the Microsoft
//     simulator's framed protocol.
//
// A TPM that has not been started up (swtpm without --flags startup-clear)
// is started by New. An absent device is ErrNoDevice.
func Open(path string) (transport.TPMCloser, error) {
	switch {
	case path == "":
		return nil, errors.New("tpm: open: empty path")
	case strings.HasPrefix(path, "unix:"):
		p := strings.TrimPrefix(path, "unix:")
		t, err := linuxudstpm.Open(p)
		if err != nil {
			return nil, openErr(path, err)
		}
		return t, nil
	case strings.HasPrefix(path, "tcp:"):
		addr := strings.TrimPrefix(path, "tcp:")
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("tpm: open %s: %w: %w", path, ErrNoDevice, err)
		}
		return &streamTPM{conn: c}, nil
	default:
		t, err := linuxtpm.Open(path)
		if err != nil {
			return nil, openErr(path, err)
		}
		return t, nil
	}
}

func openErr(path string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("tpm: open %s: %w: %w", path, ErrNoDevice, err)
	}
	return fmt.Errorf("tpm: open %s: %w", path, err)
}

// maxResponse bounds a response read from a stream (the TPM's own limit is
// far lower; TPM_PT_MAX_RESPONSE_SIZE is typically 4096).
const maxResponse = 64 << 10

// commandTimeout bounds one command on a stream transport: generous for the
// slowest TPM commands (key generation), short of hanging forever on a
// server that serves another client.
const commandTimeout = 2 * time.Minute

// streamTPM speaks raw TPM commands over a stream connection that stays
// open (swtpm's TCP server): a command is written whole, the response is
// read as a 10-byte header followed by the size it announces.
type streamTPM struct {
	mu   sync.Mutex
	conn net.Conn
}

// Send implements transport.TPM.
func (s *streamTPM) Send(cmd []byte) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.conn.SetDeadline(time.Now().Add(commandTimeout)); err != nil {
		return nil, fmt.Errorf("set deadline: %w", err)
	}
	if _, err := s.conn.Write(cmd); err != nil {
		return nil, fmt.Errorf("send command: %w", err)
	}
	hdr := make([]byte, 10)
	if _, err := io.ReadFull(s.conn, hdr); err != nil {
		return nil, fmt.Errorf("read response header: %w", err)
	}
	size := binary.BigEndian.Uint32(hdr[2:6])
	if size < 10 || size > maxResponse {
		return nil, fmt.Errorf("read response: bad size %d", size)
	}
	rsp := make([]byte, size)
	copy(rsp, hdr)
	if _, err := io.ReadFull(s.conn, rsp[10:]); err != nil {
		return nil, fmt.Errorf("read response body: %w", err)
	}
	return rsp, nil
}

// Close implements transport.TPMCloser.
func (s *streamTPM) Close() error { return s.conn.Close() }

var _ transport.TPMCloser = (*streamTPM)(nil)
