package console

import (
	"regexp"
	"strings"
	"testing"
)

// The regular expressions redact.go used to compile; the hand-written
// matchers must agree with them on every input.
var (
	secretNameRE = regexp.MustCompile(`(?i)(key|secret|pass|psk|token|private|pin|credential|code|seed|nonce)`)
	blobRE       = regexp.MustCompile(`^[A-Za-z0-9+/=_-]{40,}$`)
	pemPrivateRE = regexp.MustCompile(`(?s)-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(-----END [A-Z0-9 ]*PRIVATE KEY-----|$)`)
)

// checkAgainstRegexp fails t where a matcher and its regular expression
// disagree on s.
func checkAgainstRegexp(t *testing.T, s string) {
	t.Helper()
	if got, want := isSecretName(s), secretNameRE.MatchString(s); got != want {
		t.Errorf("isSecretName(%q) = %v, regexp %v", s, got, want)
	}
	if got, want := isBlob(s), blobRE.MatchString(s); got != want {
		t.Errorf("isBlob(%q) = %v, regexp %v", s, got, want)
	}
	if got, want := blankPEMPrivateKeys(s), pemPrivateRE.ReplaceAllString(s, redacted); got != want {
		t.Errorf("blankPEMPrivateKeys(%q)\n got %q\nwant %q", s, got, want)
	}
}

const (
	ecKey  = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIO\n-----END EC PRIVATE KEY-----\n"
	p8Key  = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMG\n-----END PRIVATE KEY-----"
	pubKey = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZI\n-----END PUBLIC KEY-----\n"
)

func TestRedactMatchersAgreeWithRegexp(t *testing.T) {
	for _, s := range []string{
		"", "k", "key", "KEY", "clientKey", "hmacSecret", "wifiPassword", "PASSWD", "apiToken",
		"privateKey", "PIN", "spinner", "pairingCode", "seed", "sessionNonce", "credentials",
		"serverUrl", "deviceLabel", "kex", "ke", "secre", "\u212aey", "\u017fecret", "\u017feed",
		"toKEn", "Nonc\u00e9", "x\xffkey", "\xe2key", "ke\xffy",
		strings.Repeat("QUJD", 10), strings.Repeat("QUJD", 10)[:39], strings.Repeat("a", 40) + " ",
		strings.Repeat("ab+/=_-9", 5), strings.Repeat("ab", 20) + "!", strings.Repeat("é", 40),
		strings.Repeat("a", 39) + "\n",
		ecKey, p8Key, pubKey, "before " + ecKey + "after", ecKey + ecKey, ecKey + pubKey + p8Key,
		"-----BEGIN RSA PRIVATE KEY-----\nabc", // no end: blanked to the end
		"-----BEGIN PRIVATE KEY-----",
		"-----BEGIN PRIVATE KEY----------END PRIVATE KEY-----tail",
		"-----BEGIN PRIVATE KEY-----END PRIVATE KEY-----tail",
		"------BEGIN PRIVATE KEY-----x-----END PRIVATE KEY------",
		"-----BEGIN -----BEGIN RSA PRIVATE KEY-----x-----END RSA PRIVATE KEY-----y",
		"-----BEGIN FOO PRIVATE KEY BAR PRIVATE KEY-----x-----END PRIVATE KEY-----",
		"-----BEGIN  PRIVATE KEY-----x-----END  PRIVATE KEY-----",
		"-----BEGIN private key-----x-----END private key-----",
		"-----BEGIN PRIVATE KEY----x",
		"-----BEGIN ENCRYPTED PRIVATE KEY-----\n\xff\xfe\n-----END ENCRYPTED PRIVATE KEY-----",
		"-----BEGIN PRIVATE KEY-----x-----END PUBLIC KEY-----y-----END PRIVATE KEY-----z",
		"-----BEGIN PRIVATE KEY-----x-----END -----END PRIVATE KEY-----z",
		"-----BEGIN PRIVATE KEY-----x-----END PRIVATE KEY-----" + "-----BEGIN PRIVATE KEY-----",
		"-----BEGIN\tPRIVATE KEY-----x",
		"-----BEGIN PRIVATE KEY-----\u00e9-----END PRIVATE KEY-----\u00e9",
	} {
		checkAgainstRegexp(t, s)
	}
}

// TestRedactSetting: which settings are shown, which blanked.
func TestRedactSetting(t *testing.T) {
	for _, tc := range []struct{ name, value, want string }{
		{"serverUrl", "https://monitoring.hospital.com:8443", "https://monitoring.hospital.com:8443"},
		{"deviceLabel", "ICU-MON-04", "ICU-MON-04"},
		{"deviceLabel", "", ""},
		{"clientKey", "", ""},
		{"clientKey", "abc", redacted},
		{"CLIENT_\u212aEY", "abc", redacted},
		{"wifiPassword", "abc", redacted},
		{"wifiPassphrase", "abc", redacted},
		{"wpaPSK", "abc", redacted},
		{"note", strings.Repeat("QUJD", 10), redacted},
		{"note", "  " + strings.Repeat("QUJD", 10) + "\n", redacted},
		{"note", strings.Repeat("QUJD", 9) + "QUJ", strings.Repeat("QUJD", 9) + "QUJ"},
		{"note", "my private key is here", redacted},
		{"note", "-----BEGIN CERTIFICATE-----", redacted},
	} {
		if got := redactSetting(tc.name, tc.value); got != tc.want {
			t.Errorf("redactSetting(%q, %q) = %q, want %q", tc.name, tc.value, got, tc.want)
		}
	}
}

func TestScrub(t *testing.T) {
	for in, want := range map[string]string{
		"state: READY_TO_PAIR\n":        "state: READY_TO_PAIR\n",
		"a\n" + ecKey + "b":             "a\n" + redacted + "\nb",
		"x " + p8Key + " y\nz":          "x " + redacted + " y\nz",
		"1\nclient private key: 42\n3":  "1\n" + redacted + "\n3",
		"1\n-----BEGIN RSA PRIVATE KEY": "1\n" + redacted,
		pubKey:                          redacted + "\nMFkwEwYHKoZI\n-----END PUBLIC KEY-----\n",
	} {
		if got := scrub(in); got != want {
			t.Errorf("scrub(%q)\n got %q\nwant %q", in, got, want)
		}
	}
}

// FuzzRedactMatchesRegexp: the hand-written matchers and the regular
// expressions they replace agree on every input.
func FuzzRedactMatchesRegexp(f *testing.F) {
	for _, s := range []string{"clientKey", "\u212aEY", "\u017feed", strings.Repeat("QUJD", 10), ecKey, "a" + p8Key + "b" + ecKey,
		"-----BEGIN X PRIVATE KEY-----", "-----BEGIN -----BEGIN PRIVATE KEY-----x-----END PRIVATE KEY-----"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		checkAgainstRegexp(t, s)
	})
}
