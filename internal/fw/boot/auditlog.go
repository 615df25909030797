package boot

import (
	"errors"
	"fmt"
	"sync"

	"github.com/zmonitor/firmware/internal/fw/audit"
)

// openedLog is the audit log, or why it could not be opened.
type openedLog struct {
	log *audit.Log
	err error
}

// laterLog is the audit log before it is open: the first wait (or Record)
// opens it.
type laterLog struct {
	once sync.Once
	open func() openedLog
	got  openedLog
}

// errNotOpened is the audit log's state when the boot ended before it was
// needed.
var errNotOpened = errors.New("audit log not opened: the boot ended first")

func (l *laterLog) wait() openedLog {
	l.once.Do(func() { l.got = l.open() })
	return l.got
}

// Record implements settings' recorder: it opens the log and records ev.
func (l *laterLog) Record(ev audit.Event) error {
	o := l.wait()
	if o.err != nil {
		return fmt.Errorf("audit log not open: %w", o.err)
	}
	return o.log.Record(ev)
}

// close closes the log if it was opened, and keeps it from opening later.
func (l *laterLog) close() {
	l.once.Do(func() { l.got = openedLog{err: errNotOpened} })
	if l.got.log != nil {
		l.got.log.Close()
	}
}
