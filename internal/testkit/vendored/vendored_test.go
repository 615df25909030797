package vendored

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// tree writes a one-package vendored tree and returns its root.
func tree(t *testing.T, edit func(m *Manifest)) string {
	t.Helper()
	root := t.TempDir()
	files := map[string]string{"LICENSE": "MIT License\n", "lib.js": "export const x = 1;\n"}
	p := Package{Name: "lib", Version: "1.2.3", License: "MIT", Dir: "lib@1.2.3",
		Integrity: "sha512-" + strings.Repeat("A", 86) + "=="}
	for _, name := range []string{"LICENSE", "lib.js"} {
		full := filepath.Join(root, p.Dir, name)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(files[name]), 0o644); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256([]byte(files[name]))
		p.Files = append(p.Files, File{Path: name, From: "package/" + name, SHA256: hex.EncodeToString(sum[:]), License: name == "LICENSE"})
	}
	m := &Manifest{Generator: "test", Packages: []Package{p}}
	if edit != nil {
		edit(m)
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, ManifestName), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return root
}

func TestVerifyAcceptsAFaithfulTree(t *testing.T) {
	if err := Verify(tree(t, nil)); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyRefuses(t *testing.T) {
	for _, tc := range []struct {
		name  string
		edit  func(m *Manifest)
		after func(t *testing.T, root string)
		want  string
	}{
		{name: "edited file", after: func(t *testing.T, root string) {
			if err := os.WriteFile(filepath.Join(root, "lib@1.2.3", "lib.js"), []byte("export const x = 2;\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, want: "changed by hand"},
		{name: "missing file", after: func(t *testing.T, root string) {
			if err := os.Remove(filepath.Join(root, "lib@1.2.3", "lib.js")); err != nil {
				t.Fatal(err)
			}
		}, want: "no such file"},
		{name: "stray file", after: func(t *testing.T, root string) {
			if err := os.WriteFile(filepath.Join(root, "lib@1.2.3", "extra.js"), nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}, want: "extra.js is not in vendor.json"},
		{name: "no licence file", edit: func(m *Manifest) { m.Packages[0].Files[0].License = false }, want: "no licence file"},
		{name: "empty licence", edit: func(m *Manifest) {
			empty := sha256.Sum256(nil)
			m.Packages[0].Files[0].SHA256 = hex.EncodeToString(empty[:])
		}, after: func(t *testing.T, root string) {
			if err := os.WriteFile(filepath.Join(root, "lib@1.2.3", "LICENSE"), nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}, want: "licence file lib@1.2.3/LICENSE is empty"},
		{name: "unversioned dir", edit: func(m *Manifest) { m.Packages[0].Dir = "lib" }, want: `want "lib@1.2.3"`},
		{name: "range version", edit: func(m *Manifest) { m.Packages[0].Version = "^1.2.3" }, want: "not an exact version"},
		{name: "no licence named", edit: func(m *Manifest) { m.Packages[0].License = "" }, want: "no licence recorded"},
		{name: "no integrity", edit: func(m *Manifest) { m.Packages[0].Integrity = "" }, want: "not a sha512 integrity"},
		{name: "escaping path", edit: func(m *Manifest) { m.Packages[0].Files[1].Path = "../../x.js" }, want: "not a clean relative path"},
		{name: "no packages", edit: func(m *Manifest) { m.Packages = nil }, want: "lists no package"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := tree(t, tc.edit)
			if tc.after != nil {
				tc.after(t, root)
			}
			err := Verify(root)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Verify: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestLoadRefusesUnknownFields(t *testing.T) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, ManifestName), []byte(`{"generator":"x","packages":[],"extra":1}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(root); err == nil || !strings.Contains(err.Error(), "extra") {
		t.Fatalf("Load: %v, want the unknown field named", err)
	}
}
