package browser

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/chromedp/chromedp"
)

// Tablet drives the Central Station's web app in one tab as a technician
// does: open a page, tap, wait for a page or a text. It returns errors
// (the demo uses it too); the web app's own tests have the same steps
// with testing.TB.
type Tablet struct {
	ctx    context.Context
	origin string
	// Timeout bounds each wait (default 60 s).
	Timeout time.Duration
	// Passkey is the tab's authenticator (AddPasskey).
	Passkey *Authenticator
}

// NewTablet drives the tab of ctx on the web app at origin
// (https://NAME:PORT).
func NewTablet(ctx context.Context, origin string) *Tablet {
	return &Tablet{ctx: ctx, origin: strings.TrimSuffix(origin, "/"), Timeout: 60 * time.Second}
}

// Context is the tab's context (for chromedp calls, Screenshot, Axe).
func (t *Tablet) Context() context.Context { return t.ctx }

// Open loads a path (or a full URL of the origin) and waits for it.
func (t *Tablet) Open(path string) error {
	u := path
	if strings.HasPrefix(path, "/") {
		u = t.origin + path
	}
	if err := chromedp.Do(t.ctx, chromedp.Navigate(u), chromedp.WaitReady(chromedp.CSS("body"))); err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	return nil
}

// AddPasskey gives the tab a passkey authenticator (the tablet's, with
// user verification). The page must be on the origin.
func (t *Tablet) AddPasskey() error {
	a, err := AddPasskeyAuthenticator(t.ctx)
	if err != nil {
		return err
	}
	t.Passkey = a
	return nil
}

// Poll waits until the JavaScript expression is true, across page loads.
func (t *Tablet) Poll(js string) error {
	deadline := time.Now().Add(t.Timeout)
	for {
		_, err := chromedp.Run(t.ctx, chromedp.Poll[bool](js, chromedp.WithPollingTimeout(time.Until(deadline))))
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) || t.ctx.Err() != nil {
			return err
		}
	}
}

// Path is the page's path and query.
func (t *Tablet) Path() string {
	p, _ := chromedp.Run(t.ctx, chromedp.Evaluate[string](`location.pathname + location.search`))
	return p
}

// WaitPath waits until the page's path starts with prefix and it is loaded.
func (t *Tablet) WaitPath(prefix string) error {
	if err := t.Poll(fmt.Sprintf(`location.pathname.startsWith(%q) && document.readyState === 'complete'`, prefix)); err != nil {
		return fmt.Errorf("never reached %s (at %s, status %q): %w", prefix, t.Path(), t.Text("#status"), err)
	}
	return nil
}

// Text is the text of the first element matching the CSS selector ("" if
// none), spaces folded.
func (t *Tablet) Text(sel string) string {
	s, _ := chromedp.Run(t.ctx, chromedp.Evaluate[string](fmt.Sprintf(`(document.querySelector(%q) || {textContent: ''}).textContent`, sel)))
	return strings.Join(strings.Fields(s), " ")
}

// WaitText waits until the element's text contains want.
func (t *Tablet) WaitText(sel, want string) error {
	js := fmt.Sprintf(`((document.querySelector(%q) || {}).textContent || '').includes(%q)`, sel, want)
	if err := t.Poll(js); err != nil {
		return fmt.Errorf("%s never said %q (it says %q; page %s): %w", sel, want, t.Text(sel), t.Path(), err)
	}
	return nil
}

// Tap clicks the element.
func (t *Tablet) Tap(sel string) error {
	if err := chromedp.Do(t.ctx, chromedp.Click(chromedp.CSS(sel))); err != nil {
		return fmt.Errorf("tap %s: %w", sel, err)
	}
	return nil
}

// Enroll opens a one-time enrollment link, adds the tablet's passkey
// authenticator if it has none, creates the passkey and waits to be signed
// in on the scan page.
func (t *Tablet) Enroll(link string) error {
	if !strings.HasPrefix(link, t.origin+"/enroll#") {
		return errors.New("enroll: not an enrollment link of " + t.origin)
	}
	if err := t.Open(link); err != nil {
		return err
	}
	if t.Passkey == nil {
		if err := t.AddPasskey(); err != nil {
			return err
		}
	}
	if err := t.Tap("#enroll"); err != nil {
		return err
	}
	return t.WaitPath("/scan")
}

// SignIn signs in with the tablet's passkey and waits for the scan page
// (or the page the sign-in was asked for).
func (t *Tablet) SignIn(then string) error {
	if err := t.Open("/sign-in"); err != nil {
		return err
	}
	if t.Passkey == nil {
		if err := t.AddPasskey(); err != nil {
			return err
		}
	}
	if err := t.Tap("#sign-in"); err != nil {
		return err
	}
	return t.WaitPath(then)
}
