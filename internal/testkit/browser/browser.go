package browser

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/chromedp/chromedp"
)

// EnvChromium names the browser binary to use instead of Debian's
// (/usr/lib/chromium/chromium) or the first of chromium, chromium-browser,
// google-chrome on PATH.
const EnvChromium = "ZM_CHROMIUM"

// debianChromium is the browser binary of Debian's chromium package. It is
// run directly rather than through /usr/bin/chromium, a launcher script
// that adds flags and API keys from /etc/chromium.d.
const debianChromium = "/usr/lib/chromium/chromium"

// ErrNoChromium: no browser binary was found.
var ErrNoChromium = errors.New("chromium not found: install Debian's chromium package (scripts/install-deps.sh) or set " + EnvChromium)

// Chromium returns the path of the browser binary.
func Chromium() (string, error) {
	if p := os.Getenv(EnvChromium); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%s=%s: %w", EnvChromium, p, err)
		}
		return p, nil
	}
	if _, err := os.Stat(debianChromium); err == nil {
		return debianChromium, nil
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", ErrNoChromium
}

// cameraKind is what getUserMedia finds.
type cameraKind int

const (
	cameraAbsent cameraKind = iota // no camera at all
	cameraFile                     // a camera that plays a Y4M file, allowed
	cameraDenied                   // a camera the user refuses
)

func (k cameraKind) String() string {
	switch k {
	case cameraAbsent:
		return "absent"
	case cameraFile:
		return "file"
	case cameraDenied:
		return "denied"
	}
	return fmt.Sprintf("cameraKind(%d)", int(k))
}

// Camera is the camera the page sees. The zero value is no camera at all:
// the browser never opens a real camera of the machine it runs on.
type Camera struct {
	kind cameraKind
	file string
}

// CameraFromFile is a camera that plays the Y4M video at path (looping),
// with the page's permission granted.
func CameraFromFile(path string) Camera { return Camera{kind: cameraFile, file: path} }

// CameraDenied is a camera that exists but that the user refuses to share:
// getUserMedia rejects with NotAllowedError.
func CameraDenied() Camera { return Camera{kind: cameraDenied} }

// CameraAbsent is a tablet without a camera: getUserMedia rejects with
// NotFoundError.
func CameraAbsent() Camera { return Camera{kind: cameraAbsent} }

func (c Camera) String() string {
	if c.kind == cameraFile {
		return "camera playing " + c.file
	}
	return "camera " + c.kind.String()
}

// flags are the command-line switches for the camera.
func (c Camera) flags() ([]chromedp.ExecAllocatorOption, error) {
	switch c.kind {
	case cameraFile:
		abs, err := filepath.Abs(c.file)
		if err != nil {
			return nil, fmt.Errorf("camera file: %w", err)
		}
		if _, err := os.Stat(abs); err != nil {
			return nil, fmt.Errorf("camera file: %w", err)
		}
		return []chromedp.ExecAllocatorOption{
			chromedp.Flag("use-fake-device-for-media-stream", true),
			chromedp.Flag("use-file-for-fake-video-capture", abs),
			chromedp.Flag("use-fake-ui-for-media-stream", true),
		}, nil
	case cameraDenied:
		// Headless Chromium shows no prompt and refuses anyway; the flag
		// keeps a visible browser (when debugging a test) the same.
		return []chromedp.ExecAllocatorOption{
			chromedp.Flag("use-fake-device-for-media-stream", true),
			chromedp.Flag("deny-permission-prompts", true),
		}, nil
	case cameraAbsent:
		return []chromedp.ExecAllocatorOption{
			chromedp.Flag("use-fake-device-for-media-stream", "device-count=0"),
			chromedp.Flag("use-fake-ui-for-media-stream", true),
		}, nil
	}
	return nil, fmt.Errorf("camera: unknown kind %v", c.kind)
}

// Options configure a browser.
type Options struct {
	// Camera is what getUserMedia finds (zero value: none).
	Camera Camera
	// Trust lists server certificates the browser accepts as if a public CA
	// had issued them (by their public key: --ignore-certificate-errors-spki-list),
	// so pages are a secure context with no certificate error, which
	// getUserMedia and WebAuthn need.
	Trust []*x509.Certificate
	// Output receives the browser's stdout and stderr (nil: discarded).
	Output io.Writer
}

// Browser is a headless Chromium started for tests, with a fresh profile
// that Close removes.
type Browser struct {
	ctx         context.Context // owns the browser process
	cancel      context.CancelFunc
	allocCancel context.CancelFunc
	dataDir     string
}

// Start launches a headless Chromium. Every host name but localhost and
// 127.0.0.1 fails to resolve, so a page can reach nothing but the test's
// own servers; background networking, component updates, sync and QUIC are
// off. Canceling ctx kills the browser; Close stops it and removes its
// profile.
func Start(ctx context.Context, opts Options) (*Browser, error) {
	bin, err := Chromium()
	if err != nil {
		return nil, err
	}
	camera, err := opts.Camera.flags()
	if err != nil {
		return nil, err
	}
	dataDir, err := os.MkdirTemp("", "zm-chromium-")
	if err != nil {
		return nil, fmt.Errorf("browser: profile directory: %w", err)
	}
	flags := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(bin),
		chromedp.UserDataDir(dataDir),
		chromedp.Headless,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-breakpad", true),
		chromedp.Flag("disable-client-side-phishing-detection", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-features", "Translate,MediaRouter,OptimizationHints"),
		chromedp.Flag("metrics-recording-only", true),
		chromedp.Flag("password-store", "basic"),
		chromedp.Flag("use-mock-keychain", true),
		chromedp.Flag("force-color-profile", "srgb"),
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1"),
	}
	if os.Getuid() == 0 {
		// Chromium's sandbox refuses to run as root.
		flags = append(flags, chromedp.NoSandbox)
	}
	if len(opts.Trust) > 0 {
		var pins []string
		for _, c := range opts.Trust {
			sum := sha256.Sum256(c.RawSubjectPublicKeyInfo)
			pins = append(pins, base64.StdEncoding.EncodeToString(sum[:]))
		}
		flags = append(flags, chromedp.Flag("ignore-certificate-errors-spki-list", strings.Join(pins, ",")))
	}
	flags = append(flags, camera...)
	if opts.Output != nil {
		flags = append(flags, chromedp.CombinedOutput(opts.Output))
	}

	allocCtx, allocCancel := chromedp.NewExecAllocator(ctx, flags...)
	bctx, cancel := chromedp.NewContext(allocCtx)
	b := &Browser{ctx: bctx, cancel: cancel, allocCancel: allocCancel, dataDir: dataDir}
	if err := chromedp.Do(bctx); err != nil { // starts the process
		b.Close()
		return nil, fmt.Errorf("browser: start %s: %w", bin, err)
	}
	return b, nil
}

// NewTab opens a tab. Cancel its context to close it.
func (b *Browser) NewTab() (context.Context, context.CancelFunc) {
	return chromedp.NewContext(b.ctx)
}

// Close stops the browser and removes its profile directory.
func (b *Browser) Close() error {
	err := chromedp.Cancel(b.ctx)
	b.cancel()
	b.allocCancel()
	if rerr := os.RemoveAll(b.dataDir); err == nil && rerr != nil {
		err = rerr
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("browser: close: %w", err)
	}
	return nil
}
