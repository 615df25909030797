package uefi

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

// ErrNotBuilt means the board's firmware for the current inputs (sources,
// configuration and keys) is not in the cache.
var ErrNotBuilt = errors.New("U-Boot firmware not built yet for these keys (run make u-boot)")

// DefaultBoard is the board that boots through UEFI.
const DefaultBoard = "qemu-virt-secure"

// script builds the firmware, relative to the repository root.
const script = "scripts/build-u-boot.sh"

// Firmware returns the path of the board's U-Boot (u-boot.bin, what QEMU
// loads with -bios) with the variable store seed compiled in (see
// UBootSeed), building it first when build is set (minutes; progress goes
// to progress). Without build it returns an error wrapping ErrNotBuilt
// when it is not cached.
func Firmware(ctx context.Context, repoRoot, board, seed string, build bool, progress io.Writer) (string, error) {
	if board == "" {
		board = DefaultBoard
	}
	args := []string{filepath.Join(repoRoot, script), "--seed", seed}
	if !build {
		args = append(args, "--cached-only")
	}
	args = append(args, board)
	cmd := exec.CommandContext(ctx, "bash", args...)
	cmd.Dir = repoRoot
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if progress != nil {
		cmd.Stderr = io.MultiWriter(&stderr, progress)
	}
	err := cmd.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.ExitCode() == 3 && !build {
		return "", fmt.Errorf("firmware for board %s: %w", board, ErrNotBuilt)
	}
	if err != nil {
		return "", fmt.Errorf("build the firmware for board %s: %w: %s", board, err, tailText(stderr.String(), 600))
	}
	out := strings.TrimSpace(stdout.String())
	bin := filepath.Join(out[strings.LastIndexByte(out, '\n')+1:], "u-boot.bin")
	if _, err := os.Stat(bin); err != nil {
		return "", fmt.Errorf("firmware for board %s: %w", board, err)
	}
	return bin, nil
}

func tailText(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
