package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/zmonitor/firmware/qemu"
)

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		nil, {"fly"}, {"press"}, {"screenshot", "--state", "x"},
		{"run", "--state", "s"}, {"run", "--initrd", "i", "--state", "s", "--fwd", "0"},
		{"run", "--initrd", "i", "--state", "s", "--guestfwd", "443"},
		{"run", "--initrd", "i", "--state", "s", "--size", "big"},
	} {
		var out, errb bytes.Buffer
		if code := run(context.Background(), args, os.Stdin, &out, &errb); code != 2 {
			t.Errorf("%q: exit %d, want 2 (stderr %q)", args, code, errb.String())
		}
		if !strings.Contains(errb.String(), "zm-board help") || out.Len() != 0 {
			t.Errorf("%q: no pointer to the help in %q, or output on stdout %q", args, errb.String(), out.String())
		}
	}
}

func TestPressWithoutBoard(t *testing.T) {
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"press", "--state", t.TempDir()}, os.Stdin, &out, &errb)
	if code != 1 || !strings.Contains(errb.String(), "press button: qmp: connect") {
		t.Errorf("exit %d, stderr %q", code, errb.String())
	}
}

func TestBoardConfig(t *testing.T) {
	var errb bytes.Buffer
	c, err := boardConfig([]string{"--initrd", "i", "--state", filepath.Join("a", "s"), "--fwd", "8444", "--fwd", "22:2222",
		"--guestfwd", "443:8443", "--size", "320x240", "--append", "quiet", "--cpus", "1"}, &errb)
	if err != nil {
		t.Fatal(err)
	}
	want := qemu.Config{Initrd: "i", StateDir: filepath.Join("a", "s"), Width: 320, Height: 240, Append: "quiet", CPUs: 1,
		HostFwd:  []qemu.HostFwd{{GuestPort: 8444}, {GuestPort: 22, HostPort: 2222}},
		GuestFwd: []qemu.GuestFwd{{GuestPort: 443, HostPort: 8443}},
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("config %+v\nwant %+v", c, want)
	}
}
