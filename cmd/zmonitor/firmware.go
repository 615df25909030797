package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"periph.io/x/conn/v3/display"

	"github.com/zmonitor/firmware/board"
	"github.com/zmonitor/firmware/drivers/tpm"
	"github.com/zmonitor/firmware/internal/base/clock"
	"github.com/zmonitor/firmware/internal/base/version"
	"github.com/zmonitor/firmware/internal/fw/device"
	"github.com/zmonitor/firmware/internal/fw/engine"
	"github.com/zmonitor/firmware/internal/fw/keys"
	"github.com/zmonitor/firmware/internal/fw/keys/softkeys"
	"github.com/zmonitor/firmware/internal/fw/screen"
	"github.com/zmonitor/firmware/internal/proto/enroll"
	"github.com/zmonitor/firmware/internal/proto/ident"
)

// identity is who the device is: set at manufacturing (first boot) and kept
// on the data partition.
type identity struct {
	DeviceID     string `json:"deviceId"`
	DeviceSerial string `json:"deviceSerial"`
}

// validID reports whether s is a valid device ID or serial: the rule of
// internal/proto/ident (1-32 of A-Z a-z 0-9 . _ -, starting with a letter
// or digit).
func validID(s string) bool {
	return ident.CheckDeviceID(s) == nil
}

func (i identity) validate() error {
	if !validID(i.DeviceID) || !validID(i.DeviceSerial) {
		return fmt.Errorf("device identity: deviceId %q and deviceSerial %q must be 1-32 of A-Z a-z 0-9 . _ -", i.DeviceID, i.DeviceSerial)
	}
	return nil
}

// firmware is what runFirmware needs, however the hardware was found.
type firmware struct {
	profile  board.Profile
	dataDir  string
	tpmPath  string // "soft": in-memory keys (development hosts only)
	anchor   string // provisioning trust anchor (PEM)
	id       identity
	label    string
	listen   string
	clock    clock.Clock
	wall     *clock.Wall
	display  display.Drawer
	screen   func() *screen.Screen // nil, or returning nil: device.Run makes it on display
	button   device.ButtonSource
	console  io.ReadWriter
	address  func() string
	netLines func() []string
	reboot   func() error
	log      *slog.Logger
	started  func(*engine.Engine)
	trace    *bootTrace // nil: not traced
}

const identityFile = "identity.json"
const enrollmentFile = "enrollment.json"

// loadIdentity returns the identity kept on the data partition, or, on the
// first boot, stores the one given (manufacturing).
func loadIdentity(dataDir string, given identity) (identity, bool, error) {
	path := filepath.Join(dataDir, identityFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		if err := given.validate(); err != nil {
			return identity{}, false, fmt.Errorf("first boot: %w", err)
		}
		raw, _ := json.Marshal(given)
		if err := writeFileSync(path, raw); err != nil {
			return identity{}, false, fmt.Errorf("first boot: store identity: %w", err)
		}
		return given, true, nil
	}
	if err != nil {
		return identity{}, false, fmt.Errorf("read identity: %w", err)
	}
	var id identity
	if err := json.Unmarshal(b, &id); err != nil {
		return identity{}, false, fmt.Errorf("read identity %s: %w", path, err)
	}
	if err := id.validate(); err != nil {
		return identity{}, false, fmt.Errorf("read identity %s: %w", path, err)
	}
	return id, false, nil
}

func writeFileSync(path string, b []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// writeFileIfChanged writes b to path (synced) unless path already holds
// exactly b.
func writeFileIfChanged(path string, b []byte) error {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, b) {
		return nil
	}
	return writeFileSync(path, b)
}

func loadAnchors(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("provisioning trust anchor: %w", err)
	}
	pool := x509.NewCertPool()
	n := 0
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("provisioning trust anchor %s: %w", path, err)
		}
		pool.AddCert(c)
		n++
	}
	if n == 0 {
		return nil, fmt.Errorf("provisioning trust anchor %s: no certificate", path)
	}
	return pool, nil
}

// openKeys opens the key store. On the first boot the TPM keys are created;
// on later boots they must be there (an enrolled identity is never silently
// regenerated).
func openKeys(f firmware, firstBoot bool) (keys.Store, func() error, error) {
	if f.tpmPath == "soft" {
		k, err := softkeys.New(rand.Reader)
		return k, func() error { return nil }, err
	}
	path := f.tpmPath
	if path == "" {
		path = f.profile.TPM.Path
	}
	t, err := tpm.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("open TPM %s: %w", path, err)
	}
	s, err := tpm.New(t, &tpm.Opts{Provision: firstBoot})
	if err != nil {
		t.Close()
		return nil, nil, fmt.Errorf("TPM keys: %w", err)
	}
	return s, s.Close, nil
}

// loadedKeys is the key store and the enrollment record made from it.
type loadedKeys struct {
	store      keys.Store
	close      func() error
	enrollment []byte
	err        error
}

// loadKeys opens the key store and writes the enrollment record.
func loadKeys(f firmware, id identity, firstBoot bool) loadedKeys {
	ks, closeKeys, err := openKeys(f, firstBoot)
	if err != nil {
		return loadedKeys{err: err}
	}
	f.trace.mark("TPM keys loaded")
	fail := func(err error) loadedKeys {
		closeKeys()
		return loadedKeys{err: fmt.Errorf("enrollment record: %w", err)}
	}
	rec, err := enroll.New(ks.Identity().Public(), ks.PayloadKey().PublicKey(), id.DeviceID, id.DeviceSerial, version.Version)
	if err != nil {
		return fail(err)
	}
	enrollment, err := rec.Marshal()
	if err != nil {
		return fail(err)
	}
	// Written on the first boot and whenever it changes (a firmware
	// update); not on every boot: the fsyncs cost ~0.1 s under QEMU.
	if err := writeFileIfChanged(filepath.Join(f.dataDir, enrollmentFile), enrollment); err != nil {
		return fail(err)
	}
	f.trace.mark("enrollment record checked")
	return loadedKeys{store: ks, close: closeKeys, enrollment: enrollment}
}

// runFirmware runs the device until ctx ends.
func runFirmware(ctx context.Context, f firmware) error {
	if err := os.MkdirAll(f.dataDir, 0o700); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	id, firstBoot, err := loadIdentity(f.dataDir, f.id)
	if err != nil {
		return err
	}
	f.trace.mark("identity read")
	// The keys load and the anchors are parsed once device.Run knows its
	// first screen (decided): before that, the audit log, the settings and
	// the screen have the CPUs to themselves. On the QEMU board, starting
	// both at once made the first frame ~40 ms later (median of 10 boots
	// each, interleaved): even while the guest waits for the TPM, the
	// host's cores run swtpm, and go-tpm's and x509's first runs are cold
	// code.
	decided := make(chan struct{})
	var decideOnce sync.Once
	decide := func() { decideOnce.Do(func() { close(decided) }) }
	ch := make(chan loadedKeys, 1)
	go func() { <-decided; ch <- loadKeys(f, id, firstBoot) }()
	var once sync.Once
	var lk loadedKeys
	keysLoaded := func() loadedKeys { once.Do(func() { lk = <-ch }); return lk }
	defer func() {
		decide() // if Run stopped before deciding, the loaders still end
		if l := keysLoaded(); l.close != nil {
			l.close()
		}
	}()
	// The anchors are only needed once the engine starts; parsing them
	// (cold x509 code, ~0.1 s under QEMU) overlaps the TPM's work.
	type loadedAnchors struct {
		pool *x509.CertPool
		err  error
	}
	ach := make(chan loadedAnchors, 1)
	go func() {
		<-decided
		pool, err := loadAnchors(f.anchor)
		f.trace.mark("anchors read")
		ach <- loadedAnchors{pool, err}
	}()
	listen := f.listen
	if listen == "" {
		listen = fmt.Sprintf(":%d", f.profile.ProvisioningPort)
	}
	f.log.Info("device", "id", id.DeviceID, "firstBoot", firstBoot, "board", f.profile.Name, "listen", listen)
	return device.Run(ctx, device.Config{
		Engine: engine.Options{
			DeviceID:        id.DeviceID,
			DeviceSerial:    id.DeviceSerial,
			DeviceLabel:     f.label,
			FirmwareVersion: version.Version,
			SessionLifetime: f.profile.Pairing.SessionLifetime.D(),
			TokenRotation:   f.profile.Pairing.TokenRotation.D(),
			ListenAddr:      listen,
		},
		DataDir: f.dataDir,
		Keys: func() (keys.Store, error) {
			l := keysLoaded()
			return l.store, l.err
		},
		Anchors: func() (*x509.CertPool, error) {
			a := <-ach
			return a.pool, a.err
		},
		Clock:               f.clock,
		Wall:                f.wall,
		Display:             f.display,
		Screen:              f.screen,
		ScreenDecided:       decide,
		Button:              f.button,
		Console:             f.console,
		ConsoleMayProvision: f.profile.ConsoleMayProvision,
		Enrollment: func() ([]byte, error) {
			l := keysLoaded()
			return l.enrollment, l.err
		},
		Address:  f.address,
		NetLines: f.netLines,
		Reboot:   f.reboot,
		Version:  fmt.Sprintf("zmonitor %s (built %s), board %s", version.Version, version.BuildTime, f.profile.Name),
		Log:      f.log,
		Started:  f.started,
		Trace:    f.trace.mark,
	})
}
