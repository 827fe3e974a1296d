package cloudevents

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/sharelog/sharelog/internal/ledger"
)

// allFixtures returns the bodies of every valid and invalid fixture.
func allFixtures(tb testing.TB) [][]byte {
	var out [][]byte
	for _, f := range validFixtures(tb) {
		out = append(out, f.body)
	}
	for _, f := range invalidFixtures(tb) {
		out = append(out, f.body)
	}
	return out
}

// checkOutcome checks one decode: a refusal is a *ledger.InvalidError with
// problems; an accepted event decodes again from its Raw to an equal event.
func checkOutcome(t *testing.T, d *Decoder, ev *ledger.Event, err error) {
	t.Helper()
	if err != nil {
		var ie *ledger.InvalidError
		if !errors.As(err, &ie) || len(ie.Problems) == 0 {
			t.Fatalf("error %v (%T) is not a *ledger.InvalidError with problems", err, err)
		}
		if ev != nil {
			t.Fatalf("an event alongside error %v", err)
		}
		return
	}
	if p := rawDuplicate(ev.Raw); p != "" {
		t.Fatalf("Raw %s has key %s twice", ev.Raw, p)
	}
	again, err := d.DecodeStructured(ev.Raw)
	if err != nil {
		t.Fatalf("Raw %s does not decode again: %v", ev.Raw, err)
	}
	if !bytes.Equal(again.Raw, ev.Raw) || again.ID != ev.ID || again.Source != ev.Source || again.Type != ev.Type ||
		again.DataSchema != ev.DataSchema || !again.Time.Equal(ev.Time) {
		t.Fatalf("decoded again = %s %s %s %s %s, want %s %s %s %s %s", again.Source, again.ID, again.Type, again.Time, again.Raw,
			ev.Source, ev.ID, ev.Type, ev.Time, ev.Raw)
	}
	a, _ := json.Marshal(again.Data)
	b, _ := json.Marshal(ev.Data)
	if !bytes.Equal(a, b) {
		t.Fatalf("data decoded again = %s, want %s", a, b)
	}
}

func FuzzDecodeStructured(f *testing.F) {
	d := newDecoder(f)
	for _, b := range allFixtures(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		ev, err := d.DecodeStructured(body)
		checkOutcome(t, d, ev, err)
	})
}

// encodeHeader and parseHeader carry NATS headers through the fuzzer as
// "name: value" lines.
func encodeHeader(h map[string][]string) string {
	var lines []string
	for k, vs := range h {
		for _, v := range vs {
			lines = append(lines, k+": "+v)
		}
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

func parseHeader(s string) map[string][]string {
	h := map[string][]string{}
	for line := range strings.SplitSeq(s, "\n") {
		k, v, ok := strings.Cut(line, ": ")
		if ok {
			h[k] = append(h[k], v)
		}
	}
	return h
}

func FuzzDecodeMessage(f *testing.F) {
	d := newDecoder(f)
	for _, b := range allFixtures(f) {
		f.Add("", b)
		f.Add("Content-Type: application/cloudevents+json", b)
		if attrs, data, ok := binaryForm(b); ok {
			f.Add(encodeHeader(natsBinary(attrs)), data)
		}
	}
	f.Fuzz(func(t *testing.T, header string, body []byte) {
		ev, err := d.DecodeMessage(parseHeader(header), body)
		checkOutcome(t, d, ev, err)
	})
}
