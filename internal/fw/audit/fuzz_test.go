package audit_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/zmonitor/firmware/internal/fw/audit"
	"github.com/zmonitor/firmware/internal/proto/auditlog"
)

func FuzzVerify(f *testing.F) {
	e := newEnv(f)
	e.fill(f, 3)
	valid := e.read(f)
	f.Add(valid)
	f.Add([]byte{})
	f.Add([]byte("\n"))
	f.Add(valid[:len(valid)-7])
	f.Add(bytes.Replace(valid, []byte(`"seq":2`), []byte(`"seq":3`), 1))
	f.Add([]byte(`{"seq":1,"wallTime":"x","monoNanos":0,"bootId":"","clockTrusted":true,"event":"A","prev":"","hash":""}` + "\n"))
	f.Add([]byte("{\"seq\":18446744073709551615}\n\x00\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		n, last, err := auditlog.Verify(bytes.NewReader(data))
		if err != nil {
			var le *auditlog.LineError
			if errors.As(err, &le) && (le.Line < 1 || le.Line > n+1) {
				t.Fatalf("error names line %d after %d good records", le.Line, n)
			}
			return
		}
		if n != bytes.Count(data, []byte("\n")) || (n == 0) != (last == auditlog.ZeroHash) {
			t.Fatalf("Verify = %d, %s for %d lines", n, last, bytes.Count(data, []byte("\n")))
		}
	})
}

func FuzzSanitize(f *testing.F) {
	f.Add("plain error: dial tcp 10.0.2.2:8443: connection refused")
	f.Add("a\nb\x00c\xff\u2028d -----BEGIN X-----abc")
	f.Add(string(bytes.Repeat([]byte("Zm9v"), 40)))
	f.Fuzz(func(t *testing.T, s string) {
		got := audit.Sanitize(s)
		if err := (audit.Event{Event: "X", Reason: got}).Validate(); err != nil {
			t.Fatalf("Sanitize(%q) = %q is refused: %v", s, got, err)
		}
	})
}

// BenchmarkAppend measures one Append: encode, hash, one write(2), fsync.
// The file lives in $TMPDIR (ext4 on the CI host's virtio disk unless
// TMPDIR=/dev/shm, which is tmpfs where fsync is nearly free).
func BenchmarkAppend(b *testing.B) {
	e := newEnv(b)
	l := e.open(b)
	ev := audit.Event{Event: "STATE_CHANGED", From: "APPLYING_CONFIG", To: "TESTING_CONNECTION", Actor: "device", Reason: "config version 3 for monitoring.hospital.com:8443"}
	b.ReportAllocs()
	for b.Loop() {
		e.mono.Advance(time.Millisecond)
		if err := l.Record(ev); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerify measures verifying an exported log, per record.
func BenchmarkVerify(b *testing.B) {
	e := newEnv(b)
	e.fill(b, 1000)
	data := e.read(b)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, _, err := auditlog.Verify(bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1000, "ns/record")
}
