// Package browser is the test kit for the Central Station's web app: real
// headless Chromium (Debian's chromium package) driven from Go tests with
// github.com/chromedp/chromedp.
//
//   - Start / ForTest launch the browser: headless, a fresh profile, no
//     sandbox as root, no background networking, component updates, sync or
//     QUIC, and every host but localhost and 127.0.0.1 unresolvable, so a
//     page reaches only the test's servers. Options.Camera picks what
//     getUserMedia finds: CameraFromFile (Chromium's fake camera playing a
//     Y4M video, permission granted), CameraDenied, CameraAbsent (the zero
//     value: the host's own camera is never opened).
//   - NewServer serves pages over TLS 1.3 on 127.0.0.1, opened as
//     https://localhost:PORT (a secure context, which getUserMedia and
//     WebAuthn need; WebAuthn refuses an IP address as relying party). Pass
//     its Cert in Options.Trust.
//   - Y4M / WriteY4MFile write the fake camera's video (4:2:0, BT.601
//     studio swing, C420jpeg).
//   - Scene renders a screenshot of the board's screen as a tablet camera
//     sees it: perspective, roll, blur, glare, sensor noise, small in the
//     frame. CameraViews gives the named views the tests use at a frame
//     size, RandomScene the hand-held spread the decoder benchmark uses.
//   - AddPasskeyAuthenticator adds a DevTools virtual authenticator (CTAP2,
//     internal transport, resident keys, user verification) to a tab.
//   - Axe runs axe-core (vendored in vendor/ by scripts/vendor-web.sh) on
//     the open page and returns its serious and critical violations.
//   - TabletViewports, Emulate and Screenshot show a page as a tablet held
//     upright (768×1024) or sideways (1280×800) and picture it.
//
// Without a browser the tests that need one skip; with
// ZM_TEST_BROWSER_REQUIRED=1 (make unit, make test, CI) they fail instead.
// See docs/web-app.md.
package browser
