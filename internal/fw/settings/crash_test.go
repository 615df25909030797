package settings_test

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/zmonitor/firmware/internal/fw/audit/audittest"
	"github.com/zmonitor/firmware/internal/fw/settings"
)

// The crash tests run this test binary again as a child process that works
// on the store until the parent SIGKILLs it.
//
// A SIGKILL loses nothing the child already handed to the kernel, so this
// proves the store's transaction boundaries (no mixture of versions, no
// stage surviving Open) but not behaviour on power loss, which depends on
// fsync reaching the medium; that is the QEMU board's power-cut test.
const (
	envMode  = "ZM_SETTINGS_HELPER"
	envPath  = "ZM_SETTINGS_DB"
	envStart = "ZM_SETTINGS_START"
)

// TestHelperProcess is the child. It is skipped in a normal run.
func TestHelperProcess(t *testing.T) {
	mode := os.Getenv(envMode)
	if mode == "" {
		t.Skip("child process of the crash tests")
	}
	if err := helper(mode, os.Getenv(envPath), os.Getenv(envStart)); err != nil {
		fmt.Println("error:", err)
		os.Exit(2)
	}
	os.Exit(0)
}

func helper(mode, path, start string) error {
	c, err := makeCerts()
	if err != nil {
		return err
	}
	v, err := strconv.Atoi(start)
	if err != nil {
		return err
	}
	s, err := settings.Open(path, &audittest.Recorder{})
	if err != nil {
		return err
	}
	switch mode {
	case "stage-and-wait":
		if err := s.Stage(c.gen(v)); err != nil {
			return err
		}
		fmt.Println("staged", v)
		_, _ = io.Copy(io.Discard, os.Stdin) // until killed (or the parent goes away)
		return nil
	case "cycle":
		for ; ; v++ {
			if err := s.Stage(c.gen(v)); err != nil {
				return err
			}
			fmt.Println("staged", v)
			if err := s.Commit(); err != nil {
				return err
			}
			fmt.Println("committed", v)
		}
	}
	return fmt.Errorf("unknown mode %q", mode)
}

type child struct {
	cmd   *exec.Cmd
	out   *bufio.Scanner
	stdin io.Closer
}

func startChild(t *testing.T, mode, path string, start int) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), envMode+"="+mode, envPath+"="+path, envStart+"="+strconv.Itoa(start))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return &child{cmd: cmd, out: bufio.NewScanner(out), stdin: in}
}

// line returns the child's next line of output.
func (c *child) line(t *testing.T) string {
	t.Helper()
	if !c.out.Scan() {
		c.kill()
		t.Fatalf("child ended early: %v", c.out.Err())
	}
	l := c.out.Text()
	if strings.HasPrefix(l, "error:") {
		c.kill()
		t.Fatalf("child: %s", l)
	}
	return l
}

func (c *child) kill() {
	_ = c.cmd.Process.Kill() // SIGKILL
	_ = c.cmd.Wait()
	c.stdin.Close()
}

// prepare commits version v in a new store at path.
func prepare(t *testing.T, path string, v int) {
	t.Helper()
	s, err := settings.Open(path, &audittest.Recorder{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Stage(newCerts(t).gen(v)); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(); err != nil {
		t.Fatal(err)
	}
}

// reopen opens the store after a kill and checks the invariants: a whole
// current provisioning and no stage. It returns the current version and
// whether Open audited a discarded stage.
func reopen(t *testing.T, path string) (int, bool) {
	t.Helper()
	rec := &audittest.Recorder{}
	s, err := settings.Open(path, rec)
	if err != nil {
		t.Fatalf("reopen after kill: %v", err)
	}
	defer s.Close()
	cur, ok, err := s.Current()
	if err != nil || !ok {
		t.Fatalf("after kill: Current ok=%v err=%v", ok, err)
	}
	if err := consistent(cur); err != nil {
		t.Fatalf("after kill: %v", err)
	}
	if _, ok, err := s.Staged(); ok || err != nil {
		t.Fatalf("after kill: a stage survived Open (ok=%v err=%v)", ok, err)
	}
	discarded := rec.Named(settings.EventStageDiscarded)
	if len(discarded) > 1 {
		t.Fatalf("after kill: %d STAGE_DISCARDED events", len(discarded))
	}
	return cur.ConfigVersion, len(discarded) == 1
}

func TestCrashAfterStage(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	path := dbPath(t)
	prepare(t, path, 1)
	c := startChild(t, "stage-and-wait", path, 2)
	if l := c.line(t); l != "staged 2" {
		c.kill()
		t.Fatalf("child said %q", l)
	}
	c.kill()
	v, discarded := reopen(t, path)
	if v != 1 || !discarded {
		t.Fatalf("after a kill between Stage and Commit: current version %d, STAGE_DISCARDED %v; want 1, true", v, discarded)
	}
}

func TestCrashDuringCommitCycles(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	path := dbPath(t)
	prepare(t, path, 1)
	rng := rand.New(rand.NewPCG(uint64(os.Getpid()), 7))
	next, discards := 2, 0
	const kills = 20
	for i := 0; i < kills; i++ {
		c := startChild(t, "cycle", path, next)
		committed := next - 1
		for n := rng.IntN(30) + 1; n > 0; n-- {
			var v int
			l := c.line(t)
			if _, err := fmt.Sscanf(l, "committed %d", &v); err == nil {
				committed = v
			}
		}
		c.kill()
		v, discarded := reopen(t, path)
		if v < committed {
			t.Fatalf("kill %d: current version %d, but the child had committed %d", i, v, committed)
		}
		if discarded {
			discards++
		}
		next = v + 1
	}
	t.Logf("%d kills, %d left a stage that Open discarded; reached version %d", kills, discards, next-1)
}
