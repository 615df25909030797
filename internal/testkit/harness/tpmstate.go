package harness

import (
	"context"
	"crypto/ecdsa"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
)

// TPMPersistentKeys reads the persistent objects of a stopped board's TPM
// from outside the guest: it starts swtpm on the board's TPM state
// (stateDir/tpm, what qemu.Board keeps) and returns each persistent
// handle's ECC public key (nil for an object that is not an ECC key).
// The board must not be running: swtpm locks its state.
func TPMPersistentKeys(ctx context.Context, stateDir string) (map[uint32]*ecdsa.PublicKey, error) {
	sockDir, err := os.MkdirTemp("", "zm-tpm-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(sockDir)
	sock := filepath.Join(sockDir, "server.sock")
	// startup-clear: swtpm sends TPM2_Startup itself, as the guest's
	// kernel did.
	cmd := exec.CommandContext(ctx, "swtpm", "socket", "--tpm2",
		"--tpmstate", "dir="+filepath.Join(stateDir, "tpm"),
		"--server", "type=unixio,path="+sock,
		"--ctrl", "type=unixio,path="+filepath.Join(sockDir, "ctrl.sock"),
		"--flags", "not-need-init,startup-clear")
	out, err := os.CreateTemp(sockDir, "swtpm.log")
	if err != nil {
		return nil, err
	}
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("swtpm: %w", err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	var conn net.Conn
	for {
		if conn, err = net.Dial("unix", sock); err == nil {
			break
		}
		select {
		case <-ctx.Done():
			log, _ := os.ReadFile(out.Name())
			return nil, fmt.Errorf("swtpm server socket: %w (%v)\n%s", ctx.Err(), err, log)
		case <-time.After(20 * time.Millisecond):
		}
	}
	defer conn.Close()
	tpm := transport.FromReadWriter(conn)
	keys := map[uint32]*ecdsa.PublicKey{}
	for next := uint32(0x81000000); ; {
		rsp, err := tpm2.GetCapability{Capability: tpm2.TPMCapHandles, Property: next, PropertyCount: 64}.Execute(tpm)
		if err != nil {
			return nil, fmt.Errorf("TPM2_GetCapability: %w", err)
		}
		hl, err := rsp.CapabilityData.Data.Handles()
		if err != nil {
			return nil, err
		}
		for _, h := range hl.Handle {
			if uint32(h)>>24 != 0x81 {
				continue
			}
			keys[uint32(h)] = nil
			pub, err := tpm2.ReadPublic{ObjectHandle: h}.Execute(tpm)
			if err != nil {
				return nil, fmt.Errorf("TPM2_ReadPublic 0x%08x: %w", uint32(h), err)
			}
			p, err := pub.OutPublic.Contents()
			if err != nil {
				return nil, err
			}
			parms, err1 := p.Parameters.ECCDetail()
			point, err2 := p.Unique.ECC()
			if err1 != nil || err2 != nil {
				continue
			}
			if k, err := tpm2.ECDSAPub(parms, point); err == nil {
				keys[uint32(h)] = k
			}
		}
		if !rsp.MoreData || len(hl.Handle) == 0 {
			return keys, nil
		}
		next = uint32(hl.Handle[len(hl.Handle)-1]) + 1
	}
}
