package harness

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"image"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode"

	"github.com/zmonitor/firmware/board"
	"github.com/zmonitor/firmware/image/initramfs"
	"github.com/zmonitor/firmware/image/kernel"
	"github.com/zmonitor/firmware/internal/central/ca"
	"github.com/zmonitor/firmware/internal/central/job"
	"github.com/zmonitor/firmware/internal/central/pusher"
	"github.com/zmonitor/firmware/internal/proto/enroll"
	"github.com/zmonitor/firmware/internal/proto/pairing"
	"github.com/zmonitor/firmware/internal/proto/payload"
	"github.com/zmonitor/firmware/internal/testkit/testpki"
	"github.com/zmonitor/firmware/qemu"
)

// ProvisioningPort is the device's provisioning port inside the guest.
const ProvisioningPort = 8444

// MonitorGuestPort is where the guest reaches the stand-in monitoring
// server (qemu.GuestFwdAddr:MonitorGuestPort → host 127.0.0.1).
const MonitorGuestPort = 9443

// ESTGuestPort is where the guest reaches the Central Station's EST server
// (qemu.GuestFwdAddr:ESTGuestPort → host 127.0.0.1).
const ESTGuestPort = 9444

// BuildFirmware builds cmd/zmonitor with scripts/build-firmware.sh (the
// same build as make firmware) into dir and returns its path. buildTime is
// stamped as the wall-clock floor.
func BuildFirmware(ctx context.Context, repo, dir string, buildTime time.Time) (string, error) {
	bin := filepath.Join(dir, "zmonitor-arm64")
	cmd := exec.CommandContext(ctx, "bash", "scripts/build-firmware.sh", bin, "e2e", buildTime.UTC().Format(time.RFC3339))
	cmd.Dir = repo
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build firmware: %v\n%s", err, out)
	}
	return bin, nil
}

// BuildInitramfs packs init, the board profile and the anchor.
func BuildInitramfs(initPath string, profile board.Profile, anchorPEM []byte, out string) error {
	bin, err := os.ReadFile(initPath)
	if err != nil {
		return err
	}
	pj, err := profile.JSON()
	if err != nil {
		return err
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	if err := initramfs.Build(initramfs.Spec{Init: bin, BoardProfile: pj, TrustAnchor: anchorPEM}, f); err != nil {
		f.Close()
		return fmt.Errorf("initramfs: %w", err)
	}
	return f.Close()
}

// Kernel returns the cached kernel, building it when build is set.
func Kernel(ctx context.Context, build bool) (string, error) {
	if build {
		return kernel.Build(ctx, kernel.Options{Progress: os.Stderr})
	}
	return kernel.Locate(ctx, kernel.Options{})
}

// Central is a Central Station for the tests and the demo: provisioning
// root (the image's anchor), signer, device CA, and a stand-in monitoring
// server the guest reaches through QEMU's guestfwd.
type Central struct {
	Root     *testpki.CA
	Signer   pusher.Signer
	CA       *ca.CA
	Monitor  *http.Server
	MonitorL net.Listener
	// ServerURL is the monitoring server as the device sees it.
	ServerURL string
}

// NewCentral makes the PKI and starts the monitoring server on
// 127.0.0.1:0.
func NewCentral(now time.Time) (*Central, error) {
	root, err := testpki.NewCA("Z Monitor provisioning root", now)
	if err != nil {
		return nil, err
	}
	tmpl := testpki.ClientTemplate("Central Station provisioning signer")
	tmpl.UnknownExtKeyUsage = append(tmpl.UnknownExtKeyUsage, payload.SignerEKU)
	signer, err := root.NewLeaf(tmpl, now)
	if err != nil {
		return nil, err
	}
	hospital, err := testpki.NewCA("Hospital device CA", now)
	if err != nil {
		return nil, err
	}
	devCA, err := ca.New(hospital.Cert, hospital.Key, nil)
	if err != nil {
		return nil, err
	}
	st := testpki.ServerTemplate("monitoring.hospital.test")
	st.IPAddresses = append(st.IPAddresses, net.ParseIP(qemu.GuestFwdAddr))
	srvLeaf, err := hospital.NewLeaf(st, now)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
			http.Error(w, "client certificate required", http.StatusUnauthorized)
			return
		}
		fmt.Fprintf(w, "ok %s\n", r.TLS.PeerCertificates[0].Subject.CommonName)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, TLSConfig: &tls.Config{
		MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{srvLeaf.TLS()},
		ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: hospital.Pool(),
	}}
	go srv.ServeTLS(ln, "", "")
	return &Central{
		Root: root, Signer: pusher.Signer{Key: signer.Key, Chain: []*x509.Certificate{signer.Cert}}, CA: devCA,
		Monitor: srv, MonitorL: ln,
		ServerURL: fmt.Sprintf("https://%s:%d", qemu.GuestFwdAddr, MonitorGuestPort),
	}, nil
}

// RestartMonitor serves the monitoring server again on the same port
// (after Monitor.Close, for the connection-failed drill).
func (c *Central) RestartMonitor() error {
	ln, err := net.Listen("tcp", c.MonitorL.Addr().String())
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: c.Monitor.Handler, ReadHeaderTimeout: 10 * time.Second, TLSConfig: c.Monitor.TLSConfig}
	c.Monitor, c.MonitorL = srv, ln
	go srv.ServeTLS(ln, "", "")
	return nil
}

// AnchorPEM is the provisioning root as the image embeds it.
func (c *Central) AnchorPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Root.Cert.Raw})
}

// MonitorPort is the host port of the monitoring server.
func (c *Central) MonitorPort() int { return c.MonitorL.Addr().(*net.TCPAddr).Port }

// Close stops the monitoring server.
func (c *Central) Close() { c.Monitor.Close() }

// Pusher returns the Central Station's provisioning side.
func (c *Central) Pusher(tweak func(*pusher.Config)) (*pusher.Pusher, error) {
	cfg := pusher.Config{CA: c.CA, Signer: c.Signer, ServerURL: c.ServerURL}
	if tweak != nil {
		tweak(&cfg)
	}
	return pusher.New(cfg)
}

// Device is the booted board seen from outside.
type Device struct {
	*qemu.Board
	// lastPress is when the previous Press's QMP command returned.
	lastPress time.Time
}

var consoleReadyRE = regexp.MustCompile(`diagnostics console`)

// WaitConsole waits for the diagnostics console of the current boot.
func (d *Device) WaitConsole(ctx context.Context) error {
	if _, err := d.Expect(ctx, consoleReadyRE); err != nil {
		return fmt.Errorf("console did not start: %w\n%s", err, d.ConsoleText())
	}
	return nil
}

// Restart boots again on the same disk and TPM (after Stop or PowerCut)
// and waits for the console.
func (d *Device) Restart(ctx context.Context) error {
	if err := d.StartAgain(ctx); err != nil {
		return err
	}
	return d.WaitConsole(ctx)
}

// commandTimeout bounds one console command: every command answers within
// a second on the board, so a longer wait means the console is stuck and the
// caller should fail with the console log, not wait for its own deadline.
const commandTimeout = 30 * time.Second

// Command sends a console command and returns its output up to the next
// prompt.
func (d *Device) Command(ctx context.Context, cmd string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()
	marker := fmt.Sprintf("__%d__", time.Now().UnixNano())
	if err := d.SendLine(cmd); err != nil {
		return "", err
	}
	// An unknown command echoes its name back in its error line: use it to
	// find the end of this command's output without guessing at timing.
	// Match that error line, not the echo of what was typed: the echo goes
	// out a character at a time and a log line can land in the middle of it,
	// while the error line is one write.
	if err := d.SendLine(marker); err != nil {
		return "", err
	}
	out, err := d.Expect(ctx, regexp.MustCompile(`(?s).*?unknown command "`+marker+`"`))
	if err != nil {
		return "", fmt.Errorf("console %q: %w\n%s", cmd, err, Tail(d.ConsoleText(), 1500))
	}
	if i := strings.Index(out, cmd); i >= 0 {
		out = out[i+len(cmd):]
	}
	// The output ends at the prompt the marker was typed at.
	if i := strings.LastIndex(out, "zm> "); i >= 0 {
		out = out[:i]
	}
	return out, nil
}

// Tail returns the last n bytes of s, for error messages with the end of
// the console log.
func Tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

var stateRE = regexp.MustCompile(`state: ([A-Z_]+)`)

// State asks the console for the provisioning state.
func (d *Device) State(ctx context.Context) (string, error) {
	out, err := d.Command(ctx, "status")
	if err != nil {
		return "", err
	}
	m := stateRE.FindStringSubmatch(out)
	if m == nil {
		return "", fmt.Errorf("status answered %q", out)
	}
	return m[1], nil
}

// WaitState polls the console until the state is want.
func (d *Device) WaitState(ctx context.Context, want string) error {
	for {
		s, err := d.State(ctx)
		if err != nil {
			return err
		}
		if s == want {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("state %s, waiting for %s: %w", s, want, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Enroll reads the enrollment record from the console.
func (d *Device) Enroll(ctx context.Context) (enroll.Record, error) {
	out, err := d.Command(ctx, "enroll")
	if err != nil {
		return enroll.Record{}, err
	}
	i, j := strings.Index(out, "{"), strings.LastIndex(out, "}")
	if i < 0 || j < i {
		return enroll.Record{}, fmt.Errorf("enroll answered %q", out)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, []byte(out[i:j+1])); err != nil {
		return enroll.Record{}, fmt.Errorf("enroll: %w", err)
	}
	return enroll.Parse(compact.Bytes())
}

// DecodeQR reads a QR code from an image.
func DecodeQR(img image.Image) (string, error) {
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		return "", err
	}
	res, err := qrcode.NewQRCodeReader().Decode(bmp, map[gozxing.DecodeHintType]interface{}{gozxing.DecodeHintType_TRY_HARDER: true})
	if err != nil {
		return "", err
	}
	return res.GetText(), nil
}

// ScanQR takes screenshots until one holds a pairing QR different from
// not (if given), and returns it parsed.
func (d *Device) ScanQR(ctx context.Context, not string) (pairing.QRContent, image.Image, error) {
	for {
		img, err := d.Screenshot(ctx)
		if err != nil {
			return pairing.QRContent{}, nil, err
		}
		if text, err := DecodeQR(img); err == nil && text != not {
			q, err := pairing.ParseQR([]byte(text))
			return q, img, err
		}
		select {
		case <-ctx.Done():
			return pairing.QRContent{}, img, fmt.Errorf("no new pairing QR on the screen: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Job is the pairing job for the scanned QR.
func (d *Device) Job(q pairing.QRContent, identity *ecdsa.PublicKey) job.Job {
	return job.Job{PairingID: "e2e", DeviceID: q.DeviceID, Address: d.GuestPort(ProvisioningPort), IdentityKey: identity,
		Token: q.PairingToken, PairingCode: q.PairingCode, Label: "ICU-MON-04"}
}

// FrameHasInk reports whether a screenshot shows anything but one colour.
func FrameHasInk(img image.Image) bool {
	b := img.Bounds()
	r0, g0, b0, _ := img.At(b.Min.X, b.Min.Y).RGBA()
	for y := b.Min.Y; y < b.Max.Y; y += 3 {
		for x := b.Min.X; x < b.Max.X; x += 3 {
			r, g, bb, _ := img.At(x, y).RGBA()
			if r != r0 || g != g0 || bb != b0 {
				return true
			}
		}
	}
	return false
}
