package kernel

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestVersion(t *testing.T) {
	banner := "Linux version 6.1.192 (zmonitor@zmonitor-build) (aarch64-linux-gnu-gcc (Debian 12.2.0-14) 12.2.0, GNU ld (GNU Binutils for Debian) 2.40) #1 SMP Thu Jan  1 00:00:00 UTC 1970"
	img := append(append([]byte("\x00\x01MZ junk"), banner...), "\n\x00more"...)
	got, err := Version(img)
	if err != nil {
		t.Fatalf("Version: %v", err)
	}
	if got != banner {
		t.Fatalf("Version = %q, want %q", got, banner)
	}
	rel, err := Release(got)
	if err != nil || rel != "6.1.192" {
		t.Fatalf("Release = %q, %v; want 6.1.192", rel, err)
	}
}

func TestVersionErrors(t *testing.T) {
	for name, tc := range map[string]struct {
		img  string
		want string
	}{
		"no banner":      {"just bytes", "no \"Linux version\""},
		"unterminated":   {"Linux version 6.1", "not terminated"},
		"too long":       {"Linux version " + strings.Repeat("x", 600) + "\n", "not terminated"},
		"non-printable":  {"Linux version 6.1\x01\n", "non-printable"},
		"empty":          {"", "no \"Linux version\""},
		"release absent": {"Linux version \n", ""},
	} {
		t.Run(name, func(t *testing.T) {
			v, err := Version([]byte(tc.img))
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Version: %v", err)
				}
				if _, err := Release(v); err == nil {
					t.Fatalf("Release(%q) succeeded", v)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Version error %v, want %q", err, tc.want)
			}
		})
	}
}

func FuzzVersion(f *testing.F) {
	f.Add([]byte("Linux version 6.1.0 (a@b) #1\n"))
	f.Add([]byte("xxLinux version \x00"))
	f.Add([]byte("Linux version"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, img []byte) {
		v, err := Version(img)
		if err != nil {
			return
		}
		if !strings.HasPrefix(v, "Linux version ") || len(v) > maxBanner || strings.ContainsAny(v, "\n\x00") {
			t.Fatalf("Version returned %q", v)
		}
		if rel, err := Release(v); err == nil && (rel == "" || strings.ContainsAny(rel, " \t")) {
			t.Fatalf("Release returned %q", rel)
		}
	})
}

func TestFindRepoRoot(t *testing.T) {
	root, err := FindRepoRoot()
	if err != nil {
		t.Fatalf("FindRepoRoot: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, "board", DefaultBoard, "kernel.fragment")); err != nil {
		t.Fatalf("root %s has no default board fragment: %v", root, err)
	}
}

// TestCachedUsesScriptKey runs the real script against an empty cache: it
// must report ErrNotBuilt, then find an Image placed at the key it named.
func TestCachedUsesScriptKey(t *testing.T) {
	if _, err := exec.LookPath("aarch64-linux-gnu-gcc"); err != nil {
		t.Skip("aarch64-linux-gnu-gcc not installed: run scripts/install-deps.sh")
	}
	if _, err := exec.LookPath("dpkg-query"); err != nil {
		t.Skip("dpkg-query not available (not a Debian host)")
	}
	ctx := context.Background()
	cache := t.TempDir()
	var progress bytes.Buffer
	_, err := Cached(ctx, Options{CacheDir: cache, Progress: &progress})
	if !errors.Is(err, ErrNotBuilt) {
		t.Fatalf("Cached on an empty cache: %v, want ErrNotBuilt (script said %q)", err, progress.String())
	}
	m := regexp.MustCompile(`not built yet: (\S+/Image)`).FindStringSubmatch(progress.String())
	if m == nil {
		t.Fatalf("script did not name the Image path: %q", progress.String())
	}
	if !strings.HasPrefix(m[1], filepath.Join(cache, "kernel")+"/") {
		t.Fatalf("path %s is not under the cache %s", m[1], cache)
	}
	if err := os.MkdirAll(filepath.Dir(m[1]), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(m[1], []byte("fake"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := Cached(ctx, Options{CacheDir: cache})
	if err != nil {
		t.Fatalf("Cached after placing the Image: %v", err)
	}
	if got != m[1] {
		t.Fatalf("Cached = %s, want %s", got, m[1])
	}
	// Another board (no fragment) is a clear error, not ErrNotBuilt.
	if _, err := Cached(ctx, Options{CacheDir: cache, Board: "no-such-board"}); err == nil || errors.Is(err, ErrNotBuilt) || !strings.Contains(err.Error(), "no kernel fragment") {
		t.Fatalf("unknown board: %v", err)
	}
}

func TestLocateEnv(t *testing.T) {
	img := filepath.Join(t.TempDir(), "Image")
	if err := os.WriteFile(img, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv(EnvKernel, img)
	got, err := Locate(context.Background(), Options{})
	if err != nil || got != img {
		t.Fatalf("Locate = %q, %v; want %q", got, err, img)
	}
	t.Setenv(EnvKernel, img+".missing")
	if _, err := Locate(context.Background(), Options{}); err == nil {
		t.Fatal("Locate accepted a missing $ZM_KERNEL")
	}
}
