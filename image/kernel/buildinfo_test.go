package kernel

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const sampleBuildInfo = `board=qemu-virt
source_package=linux-source-6.1
source_version=6.1.192-2
compiler=aarch64-linux-gnu-gcc (Debian 12.2.0-14) 12.2.0
kernel_release=6.1.192
fragment_sha256=00
image_sha256=11
build_seconds=550
`

func TestReadBuildInfo(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, BuildInfoFile), []byte(sampleBuildInfo), 0o644); err != nil {
		t.Fatal(err)
	}
	info, err := ReadBuildInfo(filepath.Join(dir, "Image"))
	if err != nil {
		t.Fatalf("ReadBuildInfo: %v", err)
	}
	want := BuildInfo{Board: "qemu-virt", SourcePackage: "linux-source-6.1", SourceVersion: "6.1.192-2",
		Compiler: "aarch64-linux-gnu-gcc (Debian 12.2.0-14) 12.2.0", KernelRelease: "6.1.192"}
	if info != want {
		t.Fatalf("got %+v, want %+v", info, want)
	}
	if info.Source() != "linux-source-6.1 6.1.192-2" {
		t.Fatalf("Source() = %q", info.Source())
	}
	if _, err := ReadBuildInfo(filepath.Join(t.TempDir(), "Image")); err == nil {
		t.Fatal("ReadBuildInfo without a file succeeded")
	}
}

func TestParseBuildInfoErrors(t *testing.T) {
	for name, tc := range map[string]struct{ in, want string }{
		"no equals":   {"board\n", "want key=value"},
		"empty key":   {"=x\n", "want key=value"},
		"duplicate":   {"board=a\nboard=b\n", "duplicate key"},
		"control":     {"board=a\x01\n", "control character"},
		"no source":   {"board=a\n", "missing"},
		"too large":   {strings.Repeat("a=b\n", 3000), "at most"},
		"no version":  {"source_package=p\n", "missing"},
		"CR in value": {"source_package=p\rsource_version=1\n", "control character"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ParseBuildInfo([]byte(tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

func FuzzParseBuildInfo(f *testing.F) {
	f.Add([]byte(sampleBuildInfo))
	f.Add([]byte("source_package=a\nsource_version=b"))
	f.Add([]byte("=\n=\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		info, err := ParseBuildInfo(b)
		if err != nil {
			return
		}
		if info.SourcePackage == "" || info.SourceVersion == "" || strings.ContainsAny(info.Source(), "\n\r\x00") {
			t.Fatalf("accepted %+v", info)
		}
	})
}
