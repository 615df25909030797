package job

import "testing"

func TestCertificateFateString(t *testing.T) {
	seen := map[string]bool{}
	for f := NoCertificate; f < fateCount; f++ {
		s := f.String()
		if s == "" || seen[s] {
			t.Errorf("fate %d has name %q (empty or repeated)", int(f), s)
		}
		seen[s] = true
	}
	if got := CertificateFate(-1).String(); got != "CertificateFate(-1)" {
		t.Errorf("out of range: %q", got)
	}
	if got := fateCount.String(); got != "CertificateFate(5)" {
		t.Errorf("out of range: %q", got)
	}
}
