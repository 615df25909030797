package board

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// The image embeds board/qemu-virt/board.json; it must say what the built-in
// profile says.
func TestQEMUVirtFileMatchesBuiltIn(t *testing.T) {
	b, err := os.ReadFile("qemu-virt/board.json")
	if err != nil {
		t.Fatal(err)
	}
	p, err := Parse(b)
	if err != nil {
		t.Fatalf("board/qemu-virt/board.json: %v", err)
	}
	want, _ := QEMUVirt().JSON()
	got, _ := p.JSON()
	if !bytes.Equal(bytes.TrimSpace(got), bytes.TrimSpace(want)) {
		t.Errorf("board/qemu-virt/board.json differs from QEMUVirt():\n%s\nwant:\n%s", got, want)
	}
	if !strings.Contains(string(b), `"qemu-virt"`) {
		t.Error("profile file does not name the board")
	}
}

// The secure board's profile is qemu-virt's under its own name: the same
// devices, booted another way.
func TestQEMUVirtSecureFileIsQEMUVirt(t *testing.T) {
	b, err := os.ReadFile("qemu-virt-secure/board.json")
	if err != nil {
		t.Fatal(err)
	}
	p, err := Parse(b)
	if err != nil {
		t.Fatalf("board/qemu-virt-secure/board.json: %v", err)
	}
	want := QEMUVirt()
	want.Name = "qemu-virt-secure"
	if p != want {
		t.Errorf("got %+v\nwant %+v", p, want)
	}
}
