package payload

import (
	"bytes"
	"testing"

	"github.com/zmonitor/firmware/internal/proto/failure"
)

func FuzzParse(f *testing.F) {
	fx := newFixture(f)
	good := must[[]byte](f)(fx.signed(f, nil, nil).Marshal())
	f.Add(good)
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"deviceId":"a","deviceId":"b"}`))
	f.Add([]byte(`{"configVersion":1e400}`))
	f.Add([]byte(`{"deviceLabel":"\ud800"}`))
	f.Add(bytes.Replace(good, []byte(`"configVersion":1`), []byte(`"configVersion":1.0`), 1))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Parse(b)
		if err != nil {
			return
		}
		// Anything accepted is well-formed and re-encodes to the same
		// canonical form the signature would cover.
		if c.ConfigVersion < 1 || len(c.SignerChain) == 0 || c.DeviceID == "" {
			t.Fatalf("accepted %v", c)
		}
		in, err := SigningInput(b)
		if err != nil {
			t.Fatalf("accepted but no signing input: %v", err)
		}
		canon, err := c.CanonicalForSigning()
		if err != nil || !bytes.Equal(in, canon) {
			t.Fatalf("received and decoded canonical forms differ: %v\n%s\n%s", err, in, canon)
		}
		again, err := Parse(must[[]byte](t)(c.Marshal()))
		if err != nil || again.Signature != c.Signature {
			t.Fatalf("re-encoded payload refused: %v", err)
		}
	})
}

func FuzzOpenEnvelope(f *testing.F) {
	fx := newFixture(f)
	f.Add(fx.seal(f, nil, nil))
	f.Add([]byte(`{"version":1,"enc":"","ciphertext":""}`))
	f.Add([]byte(`{"version":1}`))
	f.Add([]byte(`{"version":1,"version":1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		enc, ct, err := ParseEnvelope(b)
		if err == nil && (len(enc) != encSize || len(ct) < tagSize) {
			t.Fatalf("accepted enc %d ct %d", len(enc), len(ct))
		}
		if _, err := Open(fx.payload, fx.nonce, b); err == nil && err2(ParseEnvelope(b)) != nil {
			t.Fatal("opened an envelope ParseEnvelope refuses")
		}
	})
}

func FuzzVerify(f *testing.F) {
	fx := newFixture(f)
	f.Add(fx.seal(f, nil, nil))
	f.Add([]byte(`{"version":1,"enc":"BBBB","ciphertext":"AAAA"}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		fx.codeCalls = 0
		v, err := Verify(b, fx.payload, fx.expect())
		if (err == nil) == (v == nil) {
			t.Fatalf("Verified %v with error %v", v, err)
		}
		if err != nil && failure.CodeOf(err) == failure.Internal {
			t.Fatalf("error without a specific code: %v", err)
		}
	})
}

func err2(_, _ []byte, err error) error { return err }
