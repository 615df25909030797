package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

func TestUsageErrors(t *testing.T) {
	for name, args := range map[string][]string{
		"none":            nil,
		"unknown":         {"frobnicate"},
		"missing flags":   {"build", "--kernel", "Image"},
		"stray arg":       {"build", "x"},
		"bad flag":        {"build", "--nope"},
		"verify no dir":   {"verify"},
		"verify two dirs": {"verify", "a", "b"},
	} {
		t.Run(name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(args, func(string) string { return "" }, &stdout, &stderr); code != 2 {
				t.Fatalf("exit %d, want 2 (stderr %q)", code, stderr.String())
			}
			if !strings.Contains(stderr.String(), "zm-image help") || stdout.Len() != 0 {
				t.Errorf("no pointer to the help on stderr, or output on stdout: %q %q", stderr.String(), stdout.String())
			}
		})
	}
}

func TestBuildFailureIsExit1(t *testing.T) {
	var stdout, stderr bytes.Buffer
	dir := t.TempDir()
	code := run([]string{"build", "--kernel", dir + "/none", "--init", dir + "/none", "--board", dir + "/none",
		"--anchor", dir + "/none", "--out", dir + "/out"}, func(string) string { return "" }, &stdout, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "kernel:") {
		t.Fatalf("exit %d, stderr %q", code, stderr.String())
	}
	if _, err := os.Stat(dir + "/out"); err == nil {
		t.Error("output directory created despite the error")
	}
}

func TestBadSourceDateEpoch(t *testing.T) {
	var stdout, stderr bytes.Buffer
	env := func(k string) string {
		if k == "SOURCE_DATE_EPOCH" {
			return "yesterday"
		}
		return ""
	}
	code := run([]string{"build", "--kernel", "k", "--init", "i", "--board", "b", "--anchor", "a", "--out", "o"}, env, &stdout, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "SOURCE_DATE_EPOCH") {
		t.Fatalf("exit %d, stderr %q", code, stderr.String())
	}
}

func TestVerifyMissingDir(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"verify", t.TempDir()}, func(string) string { return "" }, &stdout, &stderr); code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	if !strings.Contains(stderr.String(), "manifest.json") {
		t.Errorf("stderr %q does not name the manifest", stderr.String())
	}
}
