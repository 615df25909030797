package kernel

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// EnvKernel names the environment variable that points at a kernel Image to
// use instead of the cached build.
const EnvKernel = "ZM_KERNEL"

// DefaultBoard is the board whose kernel is built when Options.Board is empty.
const DefaultBoard = "qemu-virt"

// script is the build script, relative to the repository root.
const script = "scripts/build-kernel.sh"

// ErrNotBuilt means the kernel for the current inputs is not in the cache.
var ErrNotBuilt = errors.New("kernel not built yet (run scripts/build-kernel.sh or make kernel)")

// Options say which kernel to find or build.
type Options struct {
	// RepoRoot is the repository root (holding scripts/build-kernel.sh).
	// Empty means: search upwards from the working directory.
	RepoRoot string
	// Board names board/<Board>/kernel.fragment; empty means DefaultBoard.
	Board string
	// CacheDir overrides ZM_CACHE for the script; empty keeps the
	// environment's (default /var/cache/zmonitor).
	CacheDir string
	// Progress receives the script's progress lines; nil discards them.
	Progress io.Writer
}

// Cached returns the path of the cached Image for the current inputs, or an
// error wrapping ErrNotBuilt. It never builds. It is fast (hashes a few small
// files).
func Cached(ctx context.Context, o Options) (string, error) {
	return run(ctx, o, "--cached-only")
}

// Build returns the path of the Image, building it first if it is not
// cached (minutes; progress goes to o.Progress).
func Build(ctx context.Context, o Options) (string, error) {
	return run(ctx, o)
}

// Locate returns the Image named by $ZM_KERNEL if set (it must exist), else
// the cached Image (see Cached).
func Locate(ctx context.Context, o Options) (string, error) {
	if p := os.Getenv(EnvKernel); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("kernel from %s: %w", EnvKernel, err)
		}
		return p, nil
	}
	return Cached(ctx, o)
}

func run(ctx context.Context, o Options, flags ...string) (string, error) {
	root := o.RepoRoot
	if root == "" {
		var err error
		if root, err = FindRepoRoot(); err != nil {
			return "", err
		}
	}
	board := o.Board
	if board == "" {
		board = DefaultBoard
	}
	args := append(append([]string{filepath.Join(root, script)}, flags...), board)
	cmd := exec.CommandContext(ctx, "bash", args...)
	cmd.Dir = root
	cmd.Env = os.Environ()
	if o.CacheDir != "" {
		cmd.Env = append(cmd.Env, "ZM_CACHE="+o.CacheDir)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if o.Progress != nil {
		cmd.Stderr = io.MultiWriter(&stderr, o.Progress)
	}
	err := cmd.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.ExitCode() == 3 && len(flags) > 0 {
		return "", fmt.Errorf("kernel for board %s: %w", board, ErrNotBuilt)
	}
	if err != nil {
		return "", fmt.Errorf("build kernel for board %s: %w: %s", board, err, lastLines(stderr.String(), 5))
	}
	out := strings.TrimSpace(stdout.String())
	path := out[strings.LastIndexByte(out, '\n')+1:]
	if path == "" {
		return "", fmt.Errorf("build kernel for board %s: the script printed no path", board)
	}
	return path, nil
}

// FindRepoRoot walks up from the working directory to the directory that
// holds scripts/build-kernel.sh.
func FindRepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find repository root: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, script)); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("find repository root: no %s above the working directory", script)
		}
		dir = parent
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// maxBanner bounds the version banner; the real one is about 150 bytes.
const maxBanner = 512

var bannerPrefix = []byte("Linux version ")

// Version returns the kernel's version banner ("Linux version 6.1.0 (...)
// ...") found in an uncompressed arm64 Image, without the trailing newline.
func Version(image []byte) (string, error) {
	i := bytes.Index(image, bannerPrefix)
	if i < 0 {
		return "", errors.New("kernel version: no \"Linux version\" banner in the image")
	}
	rest := image[i:]
	end := bytes.IndexAny(rest, "\n\x00")
	if end < 0 || end > maxBanner {
		return "", errors.New("kernel version: banner is not terminated within 512 bytes")
	}
	banner := rest[:end]
	for _, c := range banner {
		if c < 0x20 || c > 0x7e {
			return "", fmt.Errorf("kernel version: banner has non-printable byte %#x", c)
		}
	}
	return string(banner), nil
}

// Release returns the release field of a version banner: "6.1.0" from
// "Linux version 6.1.0 (user@host) ...".
func Release(banner string) (string, error) {
	f := strings.Fields(strings.TrimPrefix(banner, "Linux version "))
	if !strings.HasPrefix(banner, "Linux version ") || len(f) == 0 {
		return "", fmt.Errorf("kernel release: %q is not a version banner", banner)
	}
	return f[0], nil
}
