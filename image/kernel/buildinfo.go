package kernel

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// BuildInfoFile is written by scripts/build-kernel.sh next to the Image.
const BuildInfoFile = "build-info"

// BuildInfo is what scripts/build-kernel.sh records about a kernel build.
type BuildInfo struct {
	Board         string
	SourcePackage string // "linux-source-6.1"
	SourceVersion string // Debian version, "6.1.192-2"
	Compiler      string
	KernelRelease string
}

// Source returns "package version", e.g. "linux-source-6.1 6.1.192-2".
func (b BuildInfo) Source() string { return b.SourcePackage + " " + b.SourceVersion }

// ReadBuildInfo reads the build-info file next to the Image at imagePath.
func ReadBuildInfo(imagePath string) (BuildInfo, error) {
	b, err := os.ReadFile(filepath.Join(filepath.Dir(imagePath), BuildInfoFile))
	if err != nil {
		return BuildInfo{}, fmt.Errorf("kernel build info: %w", err)
	}
	return ParseBuildInfo(b)
}

// maxBuildInfo bounds the file; the real one is about 400 bytes.
const maxBuildInfo = 8 << 10

// ParseBuildInfo parses key=value lines. Unknown keys are ignored (the
// script records more than this package reads); duplicate keys, lines
// without "=", control characters and missing source fields are errors.
func ParseBuildInfo(b []byte) (BuildInfo, error) {
	if len(b) > maxBuildInfo {
		return BuildInfo{}, fmt.Errorf("kernel build info: %d bytes, at most %d allowed", len(b), maxBuildInfo)
	}
	seen := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if line == "" {
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok || key == "" {
			return BuildInfo{}, fmt.Errorf("kernel build info: line %d: want key=value", n)
		}
		for _, c := range line {
			if c < 0x20 || c == 0x7f {
				return BuildInfo{}, fmt.Errorf("kernel build info: line %d: control character %#x", n, c)
			}
		}
		if _, dup := seen[key]; dup {
			return BuildInfo{}, fmt.Errorf("kernel build info: line %d: duplicate key %q", n, key)
		}
		seen[key] = value
	}
	if err := sc.Err(); err != nil {
		return BuildInfo{}, fmt.Errorf("kernel build info: %w", err)
	}
	info := BuildInfo{
		Board:         seen["board"],
		SourcePackage: seen["source_package"],
		SourceVersion: seen["source_version"],
		Compiler:      seen["compiler"],
		KernelRelease: seen["kernel_release"],
	}
	if info.SourcePackage == "" || info.SourceVersion == "" {
		return BuildInfo{}, fmt.Errorf("kernel build info: source_package or source_version missing")
	}
	return info, nil
}
