package tpmcount

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
)

// Stat is what the Counter saw of one command code.
type Stat struct {
	Code  tpm2.TPMCC
	Count int
	Total time.Duration // summed wall time of Send, response included
}

// Mean is the average time of one command.
func (s Stat) Mean() time.Duration {
	if s.Count == 0 {
		return 0
	}
	return s.Total / time.Duration(s.Count)
}

// String formats the stat as "Sign ×3 412µs/op".
func (s Stat) String() string {
	return fmt.Sprintf("%s ×%d %v/op", Name(s.Code), s.Count, s.Mean())
}

// Counter wraps a TPM transport and counts what goes through it. It is safe
// for concurrent use (the wrapped transport still sees one command at a time
// only if its callers serialize, as tpm.Store does).
type Counter struct {
	next transport.TPM
	now  func() time.Time

	mu    sync.Mutex
	stats map[tpm2.TPMCC]*Stat
	short int // commands too short to carry a command code
}

// New wraps next. now reads the clock for timings (nil: time.Now).
func New(next transport.TPM, now func() time.Time) *Counter {
	if now == nil {
		now = time.Now
	}
	return &Counter{next: next, now: now, stats: map[tpm2.TPMCC]*Stat{}}
}

// Send implements transport.TPM.
func (c *Counter) Send(cmd []byte) ([]byte, error) {
	start := c.now()
	rsp, err := c.next.Send(cmd)
	d := c.now().Sub(start)
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(cmd) < 10 {
		c.short++
		return rsp, err
	}
	cc := tpm2.TPMCC(binary.BigEndian.Uint32(cmd[6:10]))
	st := c.stats[cc]
	if st == nil {
		st = &Stat{Code: cc}
		c.stats[cc] = st
	}
	st.Count++
	st.Total += d
	return rsp, err
}

// Close closes the wrapped transport if it is an io.Closer.
func (c *Counter) Close() error {
	if cl, ok := c.next.(io.Closer); ok {
		return cl.Close()
	}
	return errors.New("tpmcount: wrapped transport cannot be closed")
}

// Stats returns the counts so far, ordered by command code.
func (c *Counter) Stats() []Stat {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Stat, 0, len(c.stats))
	for _, s := range c.stats {
		out = append(out, *s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Code < out[j].Code })
	return out
}

// Total is the number of commands counted (malformed ones included).
func (c *Counter) Total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.short
	for _, s := range c.stats {
		n += s.Count
	}
	return n
}

// Reset forgets everything counted so far.
func (c *Counter) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stats = map[tpm2.TPMCC]*Stat{}
	c.short = 0
}

// String lists the stats, one command kind per line.
func (c *Counter) String() string {
	var b strings.Builder
	for _, s := range c.Stats() {
		fmt.Fprintln(&b, s)
	}
	return b.String()
}

var _ transport.TPMCloser = (*Counter)(nil)
