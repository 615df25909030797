package tabletwire

import (
	"errors"
	"strings"
	"testing"
)

func TestReadEvents(t *testing.T) {
	stream := ": hello\n\n" +
		"event: pairing\ndata: {\"id\":\"p-1\",\"state\":\"running\",\"final\":false,\"deviceState\":\"APPLYING_CONFIG\"}\n\n" +
		"event: other\ndata: {\"x\":1}\n\n" +
		": keep-alive\n\n" +
		"event: pairing\ndata: {\"id\":\"p-1\",\"state\":\"succeeded\",\n" +
		"data: \"final\":true,\"label\":\"ICU-4\"}\n\n" +
		"event: pairing\ndata: {\"id\":\"p-1\",\"state\":\"running\",\"final\":false}\n\n"
	var got []PairingView
	if err := ReadEvents(strings.NewReader(stream), func(v PairingView) error { got = append(got, v); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].DeviceState != "APPLYING_CONFIG" || !got[1].Final || got[1].Label != "ICU-4" {
		t.Fatalf("views %+v: want APPLYING_CONFIG, then the final one (multi-line data joined), and nothing after it", got)
	}
}

func TestReadEventsRefusesBadStreams(t *testing.T) {
	for name, stream := range map[string]string{
		"ended early": "event: pairing\ndata: {\"id\":\"p-1\",\"state\":\"running\",\"final\":false}\n\n",
		"not json":    "event: pairing\ndata: {\n\n",
		"bad state":   "event: pairing\ndata: {\"id\":\"p-1\",\"state\":\"done\",\"final\":true}\n\n",
		"final lie":   "event: pairing\ndata: {\"id\":\"p-1\",\"state\":\"running\",\"final\":true}\n\n",
		"huge line":   "data: " + strings.Repeat("x", MaxEventLine+1) + "\n\n",
		"huge data":   strings.Repeat("data: "+strings.Repeat("x", 1000)+"\n", 70) + "\n",
	} {
		err := ReadEvents(strings.NewReader(stream), func(PairingView) error { return nil })
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
		if name == "ended early" && !errors.Is(err, ErrStreamEnded) {
			t.Errorf("%s: %v, want ErrStreamEnded", name, err)
		}
	}
}

func FuzzReadEvents(f *testing.F) {
	f.Add("event: pairing\ndata: {\"id\":\"p-1\",\"state\":\"succeeded\",\"final\":true}\n\n")
	f.Add(": x\n\ndata: {}\n\n")
	f.Fuzz(func(t *testing.T, s string) {
		n := 0
		_ = ReadEvents(strings.NewReader(s), func(v PairingView) error {
			if v.Check() != nil {
				t.Fatalf("ReadEvents handed out a view that does not check: %+v", v)
			}
			n++
			return nil
		})
	})
}
