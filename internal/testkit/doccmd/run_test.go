package doccmd

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"image/png"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zmonitor/firmware/image/kernel"
	"github.com/zmonitor/firmware/internal/proto/enroll"
)

// TestDocumentedCommands checks every command of README.md and docs/*.md
// against the table (commands_test.go): an unknown command, a stale entry or
// a block without a language fails; the commands the table runs must do
// what it expects; the skipped ones are checked as far as is cheap.
func TestDocumentedCommands(t *testing.T) {
	root := repoRoot(t)
	docs, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	docs = append([]string{filepath.Join(root, "README.md")}, docs...)
	var cmds []command
	for _, p := range docs {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, p)
		c, problems := extract(rel, string(b))
		for _, p := range problems {
			t.Error(p)
		}
		cmds = append(cmds, c...)
	}
	if len(cmds) == 0 {
		t.Fatal("no command found in README.md and docs/: the extraction is broken")
	}

	table := map[string]entry{}
	for _, e := range entries {
		if _, dup := table[e.doc]; dup {
			t.Errorf("entry listed twice: %s", e.doc)
		}
		if (e.skip == "") == (e.check == nil) {
			t.Errorf("entry %q: give either a check (it runs) or a skip reason", e.doc)
		}
		table[e.doc] = e
	}
	used := map[string]bool{}
	env := newEnv(t, root)
	for _, c := range cmds {
		e, ok := table[c.text]
		if !ok {
			t.Errorf("%s\n\tnot in the table of internal/testkit/doccmd/commands_test.go: add it, run (check) or skipped with the reason", c)
			continue
		}
		used[c.text] = true
		t.Run(fmt.Sprintf("%s:%d", c.file, c.line), func(t *testing.T) {
			if e.skip != "" {
				env.checkSkipped(t, c)
				t.Skip(e.skip)
			}
			if testing.Short() {
				t.Skip("-short: commands are not run")
			}
			t.Parallel()
			e.check(t, env, c)
		})
	}
	for _, e := range entries {
		if !used[e.doc] {
			t.Errorf("entry %q: no document shows this command any more: drop it", e.doc)
		}
	}
}

func repoRoot(t testing.TB) string {
	root, err := kernel.FindRepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// entry is what the test does with one documented command line.
type entry struct {
	doc   string                          // the command as extract gives it
	skip  string                          // why it is not run here
	check func(*testing.T, *env, command) // runs it (runScript, runSynopsis, start)
}

// env builds the programs once and makes a fresh work directory per command.
type env struct {
	root string
	ctx  context.Context
	tmp  string // removed when every subtest is done

	binOnce sync.Once
	bin     string
	binErr  error

	tinyOnce sync.Once
	tiny     string
	tinyErr  error

	makeOnce    sync.Once
	makeTargets map[string]bool
	makeErr     error
}

// programs are the commands the documents call, built for this host.
var programs = []string{"zmonitor", "zm-central", "zm-pair", "zm-image", "zm-board"}

func newEnv(t *testing.T, root string) *env {
	// No deadline of its own: go test's -timeout bounds the run (a cold
	// build of the programs on a loaded machine takes minutes); a program
	// left running is killed a little before it, so the failure shows its
	// output.
	ctx, cancel := context.WithCancel(context.Background())
	if d, ok := t.Deadline(); ok {
		ctx, cancel = context.WithDeadline(context.Background(), d.Add(-30*time.Second))
	}
	t.Cleanup(cancel)
	return &env{root: root, ctx: ctx, tmp: t.TempDir()}
}

func (e *env) programs(t *testing.T) string {
	e.binOnce.Do(func() {
		e.bin, e.binErr = os.MkdirTemp(e.tmp, "bin-")
		if e.binErr != nil {
			return
		}
		args := []string{"build", "-o", e.bin + string(filepath.Separator)}
		for _, p := range programs {
			args = append(args, "./cmd/"+p)
		}
		cmd := exec.CommandContext(e.ctx, "go", args...)
		cmd.Dir = e.root
		if out, err := cmd.CombinedOutput(); err != nil {
			e.binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if e.binErr != nil {
		t.Fatal(e.binErr)
	}
	return e.bin
}

// tinyInit is a static linux/arm64 Go program: what zm-image checks of an
// /init, without building the whole firmware.
func (e *env) tinyInit(t *testing.T) string {
	e.tinyOnce.Do(func() {
		dir, err := os.MkdirTemp(e.tmp, "init-")
		if err != nil {
			e.tinyErr = err
			return
		}
		src := filepath.Join(dir, "main.go")
		if e.tinyErr = os.WriteFile(src, []byte("package main\n\nfunc main() {}\n"), 0o644); e.tinyErr != nil {
			return
		}
		e.tiny = filepath.Join(dir, "init")
		cmd := exec.CommandContext(e.ctx, "go", "build", "-trimpath", "-o", e.tiny, src)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=arm64", "GOFLAGS=")
		if out, err := cmd.CombinedOutput(); err != nil {
			e.tinyErr = fmt.Errorf("go build tiny arm64 init: %v\n%s", err, out)
		}
	})
	if e.tinyErr != nil {
		t.Fatal(e.tinyErr)
	}
	return e.tiny
}

// work is a fresh directory with out/ holding the programs, as `make build`
// leaves them, and the environment the commands run in (programs on PATH).
type work struct {
	t   *testing.T
	e   *env
	dir string
	env []string
}

func (e *env) work(t *testing.T) *work {
	bin := e.programs(t)
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "out"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, p := range programs {
		if err := os.Symlink(filepath.Join(bin, p), filepath.Join(dir, "out", p)); err != nil {
			t.Fatal(err)
		}
	}
	return &work{t: t, e: e, dir: dir, env: append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"))}
}

func (w *work) setenv(kv string) { w.env = append(w.env, kv) }

func (w *work) path(name string) string { return filepath.Join(w.dir, name) }

// sh runs a script (bash -e) in the work directory and returns its output
// (stdout and stderr) and exit status.
func (w *work) sh(script, stdin string) (string, int) {
	w.t.Helper()
	cmd := exec.CommandContext(w.e.ctx, "bash", "-e", "-o", "pipefail", "-c", script)
	cmd.Dir, cmd.Env = w.dir, w.env
	cmd.Stdin = strings.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return out.String(), 0
	case errors.As(err, &ee) && ee.Exited():
		return out.String(), ee.ExitCode()
	default:
		w.t.Fatalf("%s: %v\n%s", script, err, out.String())
		return "", -1
	}
}

// must runs a fixture script that has to succeed.
func (w *work) must(script string) string {
	w.t.Helper()
	out, code := w.sh(script, "")
	if code != 0 {
		w.t.Fatalf("fixture %q: exit %d\n%s", script, code, out)
	}
	return out
}

// server is a program that runs until stopped.
type server struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	mu    sync.Mutex
	out   bytes.Buffer
	done  chan struct{}
}

func (s *server) output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.out.String()
}

// start runs script with bash, types input, and returns once the output
// contains until. The script must exec the program, so that stop's signal
// reaches it.
func (w *work) start(script, input, until string) *server {
	w.t.Helper()
	pr, pw, err := os.Pipe()
	if err != nil {
		w.t.Fatal(err)
	}
	s := &server{done: make(chan struct{})}
	s.cmd = exec.CommandContext(w.e.ctx, "bash", "-c", script)
	s.cmd.Dir, s.cmd.Env = w.dir, w.env
	s.cmd.Stdout, s.cmd.Stderr = pw, pw
	if s.stdin, err = s.cmd.StdinPipe(); err != nil {
		w.t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		w.t.Fatal(err)
	}
	pw.Close()
	found := make(chan struct{})
	go func() {
		defer close(s.done)
		defer pr.Close()
		r := bufio.NewReader(pr)
		seen := false
		for {
			line, err := r.ReadString('\n')
			s.mu.Lock()
			s.out.WriteString(line)
			has := strings.Contains(s.out.String(), until)
			s.mu.Unlock()
			if has && !seen {
				seen = true
				close(found)
			}
			if err != nil {
				return
			}
		}
	}()
	if _, err := io.WriteString(s.stdin, input); err != nil {
		w.t.Fatalf("%s: typing %q: %v", script, input, err)
	}
	select {
	case <-found:
	case <-s.done:
		_ = s.cmd.Wait()
		w.t.Fatalf("%s: ended (%v) before printing %q:\n%s", script, s.cmd.ProcessState, until, s.output())
	}
	return s
}

// stop closes the program's standard input, interrupts it (Ctrl-C) and
// returns its exit status and output.
func (s *server) stop() (string, int, error) {
	s.stdin.Close()
	if err := s.cmd.Process.Signal(os.Interrupt); err != nil {
		return s.output(), -1, err
	}
	err := s.cmd.Wait()
	<-s.done
	var ee *exec.ExitError
	if err != nil && !(errors.As(err, &ee) && ee.Exited()) {
		return s.output(), -1, err
	}
	return s.output(), s.cmd.ProcessState.ExitCode(), nil
}

// Fixtures: what a command needs before it can run as documented.

// central makes a Central Station in DIR (zm-central init) and writes the
// first technician's token to technician.token.
func (w *work) central() {
	w.t.Helper()
	out := w.must("zm-central init --dir DIR --technician admin")
	f := strings.Fields(out)
	if err := os.WriteFile(w.path("technician.token"), []byte(f[len(f)-1]+"\n"), 0o600); err != nil {
		w.t.Fatal(err)
	}
}

// device writes ZM-001.json, an enrollment record of ZM-001 with fresh
// keys.
func (w *work) device() { w.record("ZM-001.json", "SN-2024-001234") }

// record writes file, an enrollment record of ZM-001 with fresh keys and
// the given serial (a replaced TPM or board).
func (w *work) record(file, serial string) {
	w.t.Helper()
	id, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		w.t.Fatal(err)
	}
	pk, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		w.t.Fatal(err)
	}
	rec, err := enroll.New(&id.PublicKey, pk.PublicKey(), "ZM-001", serial, "1.2.3")
	if err != nil {
		w.t.Fatal(err)
	}
	b, err := rec.Marshal()
	if err != nil {
		w.t.Fatal(err)
	}
	if err := os.WriteFile(w.path(file), b, 0o644); err != nil {
		w.t.Fatal(err)
	}
}

var tabletAPIRE = regexp.MustCompile(`tablet API on (https://\S+)`)

// serve runs the Central Station of DIR (free ports) and sets $CENTRAL to
// its tablet API; it is stopped, and must exit 0, when the test ends.
func (w *work) serve() {
	w.t.Helper()
	s := w.start("exec zm-central serve --dir DIR --listen 127.0.0.1:0 --monitor-listen 127.0.0.1:0", "", "tablet API on ")
	m := tabletAPIRE.FindStringSubmatch(s.output())
	if m == nil {
		w.t.Fatalf("no tablet API address in %q", s.output())
	}
	w.setenv("CENTRAL=" + m[1])
	w.t.Cleanup(func() {
		out, code, err := s.stop()
		if err != nil || code != 0 {
			w.t.Errorf("zm-central serve on SIGINT: exit %d %v\n%s", code, err, out)
		}
	})
}

// imageInputs writes what zm-image builds from: IMAGE (bytes with the arm64
// Image magic and a version banner) and the build-info file
// scripts/build-kernel.sh writes beside a kernel, out/zmonitor-arm64 (a static arm64 Go
// program), board.json (the qemu-virt profile) and anchor.pem (a
// provisioning root made by zm-central init).
func (w *work) imageInputs() {
	w.t.Helper()
	img := make([]byte, 4096)
	copy(img[56:], "ARM\x64")
	copy(img[1000:], "Linux version 6.1.0 (doccmd@test) (gcc 12.2.0) #1 SMP 1970-01-01 00:00:00 UTC\n")
	if err := os.WriteFile(w.path("IMAGE"), img, 0o644); err != nil {
		w.t.Fatal(err)
	}
	info := "board=qemu-virt\nsource_package=linux-source-6.1\nsource_version=6.1.0-1\nkernel_release=6.1.0\n"
	if err := os.WriteFile(w.path(kernel.BuildInfoFile), []byte(info), 0o644); err != nil {
		w.t.Fatal(err)
	}
	w.must("cp " + w.e.tinyInit(w.t) + " out/zmonitor-arm64 && cp " + filepath.Join(w.e.root, "board", "qemu-virt", "board.json") + " board.json" +
		" && zm-central init --dir anchor-central >/dev/null && cp anchor-central/provisioning-root.pem anchor.pem")
}

// Checks.

// runScript runs s, or the documented command itself when s is empty, with
// stdin, and expects the exit status and want in its output (stdout and
// stderr).
func runScript(t *testing.T, w *work, c command, s, stdin string, exit int, want []string) string {
	t.Helper()
	if s == "" {
		s = c.text
	}
	out, code := w.sh(s, stdin)
	if code != exit {
		t.Fatalf("%s\nexit %d, want %d; output:\n%s", s, code, exit, out)
	}
	for _, wnt := range want {
		if !strings.Contains(out, wnt) {
			t.Errorf("%s\noutput lacks %q:\n%s", s, wnt, out)
		}
	}
	return out
}

// runSynopsis is runScript for a script that stands for a documented
// synopsis: it must give every flag the synopsis names.
func runSynopsis(t *testing.T, w *work, c command, s, stdin string, exit int, want []string) string {
	t.Helper()
	coversFlags(t, c.text, s)
	return runScript(t, w, c, s, stdin, exit, want)
}

// coversFlags fails when a script standing for a documented synopsis leaves
// out a flag the synopsis names (it would not check the flag exists).
func coversFlags(t *testing.T, doc, s string) {
	t.Helper()
	have := flags(s)
	var missing []string
	for f := range flags(doc) {
		if !have[f] {
			missing = append(missing, f)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("the script run for %q does not give %v", doc, missing)
	}
}

// minimalOnly fails when the script that shows a synopsis's shortest form
// gives a flag the synopsis marks [optional] (except those in free, given a
// free port on this shared machine instead of their default).
func minimalOnly(t *testing.T, doc, s string, free ...string) {
	t.Helper()
	req := required(doc)
	for _, f := range free {
		req[f] = true
	}
	for f := range flags(s) {
		if !req[f] {
			t.Errorf("%q stands for the shortest form of %q but gives the optional %s", s, doc, f)
		}
	}
}

// pngSize checks that name is a PNG of the given size.
func pngSize(t *testing.T, w *work, name string, width, height int) {
	t.Helper()
	f, err := os.Open(w.path(name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cfg, err := png.DecodeConfig(f)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if cfg.Width != width || cfg.Height != height {
		t.Errorf("%s is %dx%d, want %dx%d", name, cfg.Width, cfg.Height, width, height)
	}
}

func exists(t *testing.T, w *work, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := os.Stat(w.path(n)); err != nil {
			t.Error(err)
		}
	}
}

// checkSkipped checks what is cheap about a command that is not run: a
// make target is listed by `make help`; the packages of a go test command
// exist, and a -bench pattern names a benchmark.
func (e *env) checkSkipped(t *testing.T, c command) {
	f := strings.Fields(c.text)
	for len(f) > 0 && strings.Contains(f[0], "=") { // VAR=value
		f = f[1:]
	}
	switch {
	case len(f) > 0 && f[0] == "make":
		targets := e.targets(t)
		for _, a := range f[1:] {
			if strings.HasPrefix(a, "-") || strings.Contains(a, "=") {
				continue
			}
			if !targets[a] {
				t.Errorf("make %s: no such target in `make help`", a)
			}
		}
	case len(f) > 1 && f[0] == "go" && f[1] == "test":
		e.checkGoTest(t, f[2:])
	}
}

var makeHelpRE = regexp.MustCompile(`(?m)^\s+([A-Za-z0-9_-]+)\s`)

func (e *env) targets(t *testing.T) map[string]bool {
	e.makeOnce.Do(func() {
		cmd := exec.CommandContext(e.ctx, "make", "-s", "help")
		cmd.Dir = e.root
		out, err := cmd.CombinedOutput()
		if err != nil {
			e.makeErr = fmt.Errorf("make help: %v\n%s", err, out)
			return
		}
		e.makeTargets = map[string]bool{}
		for _, m := range makeHelpRE.FindAllStringSubmatch(string(out), -1) {
			e.makeTargets[m[1]] = true
		}
	})
	if e.makeErr != nil {
		t.Fatal(e.makeErr)
	}
	return e.makeTargets
}

func (e *env) checkGoTest(t *testing.T, args []string) {
	var pkgs []string
	bench := ""
	for i, a := range args {
		switch {
		case strings.HasPrefix(a, "./"):
			pkgs = append(pkgs, a)
		case a == "-bench" && i+1 < len(args):
			bench = strings.Trim(args[i+1], `'"`)
		}
	}
	if len(pkgs) == 0 {
		t.Fatalf("go test without ./ packages: %v", args)
	}
	cmd := exec.CommandContext(e.ctx, "go", append([]string{"list"}, pkgs...)...)
	cmd.Dir = e.root
	out, err := cmd.CombinedOutput()
	if err != nil || strings.Contains(string(out), "matched no packages") {
		t.Errorf("go list %v: %v\n%s", pkgs, err, out)
	}
	if bench == "" || testing.Short() {
		return
	}
	cmd = exec.CommandContext(e.ctx, "go", append([]string{"test", "-list", bench}, pkgs...)...)
	cmd.Dir = e.root
	out, err = cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Benchmark") {
		t.Errorf("go test -list %s %v: no benchmark (%v)\n%s", bench, pkgs, err, out)
	}
}
