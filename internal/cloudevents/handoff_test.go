package cloudevents

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/sharelog/sharelog/internal/ledger"
)

// TestHandoff checks that an event handed off by the decoder that made it is
// read back by DecodeMessage as a fresh decode of its Raw would give it,
// once, with the message's headers still checked for identifiers.
func TestHandoff(t *testing.T) {
	t.Parallel()
	d, fresh := newDecoder(t), newDecoder(t)
	structured := map[string][]string{"Content-Type": {MediaTypeStructured}, "Nats-Msg-Id": {"m-1"}}
	for _, f := range validFixtures(t) {
		t.Run(f.File, func(t *testing.T) {
			ev, err := d.DecodeStructured(f.body)
			if err != nil {
				t.Fatal(err)
			}
			want, err := fresh.DecodeMessage(structured, ev.Raw)
			if err != nil {
				t.Fatal(err)
			}
			d.Handoff([]*ledger.Event{ev})
			got, err := d.DecodeMessage(structured, ev.Raw)
			if err != nil {
				t.Fatal(err)
			}
			if got == ev {
				t.Error("DecodeMessage returned the handed-off event itself, not a copy")
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("handed off:\n%+v\nwant (decoded):\n%+v", got, want)
			}
			if _, ok := d.handoff.byRaw[string(ev.Raw)]; ok {
				t.Error("still held after DecodeMessage took it")
			}

			// An identifier in a header is refused as the full decode refuses it.
			// (Identifiers too short to be looked for are skipped.)
			ids := slices.DeleteFunc(subjectIDsIn(f.body), func(id string) bool { return alnumLen(tokens(id)) < minIdentifyingLen })
			if len(ids) == 0 {
				return
			}
			leaky := map[string][]string{"Content-Type": {MediaTypeStructured}, "X-Ref": {ids[0]}}
			_, want2 := fresh.DecodeMessage(leaky, ev.Raw)
			d.Handoff([]*ledger.Event{ev})
			_, got2 := d.DecodeMessage(leaky, ev.Raw)
			if want2 == nil || got2 == nil || got2.Error() != want2.Error() {
				t.Fatalf("identifier in a header: error %v, want %v", got2, want2)
			}
			if strings.Contains(strings.ToLower(got2.Error()), strings.ToLower(ids[0])) {
				t.Errorf("error %q quotes the identifier", got2)
			}
		})
	}
}

// TestHandoffBounded checks that events handed off and never read back are
// dropped, oldest first, once they hold more than the budget.
func TestHandoffBounded(t *testing.T) {
	t.Parallel()
	d := newDecoder(t)
	d.handoff.byRaw = map[string]heldEvent{}
	d.handoff.budget = 4 << 10
	evs := make([]*ledger.Event, 0, 64)
	for i, body := range genDisclosures(1, 0, 64, 200_000) {
		ev, err := d.DecodeStructured(body)
		if err != nil {
			t.Fatalf("%d: %v", i, err)
		}
		evs = append(evs, ev)
	}
	d.Handoff(evs)
	h := &d.handoff
	if h.bytes > h.budget || len(h.byRaw) == 0 || len(h.byRaw) == len(evs) {
		t.Fatalf("holding %d events, %d bytes; want some, at most %d bytes", len(h.byRaw), h.bytes, h.budget)
	}
	if _, ok := h.byRaw[string(evs[len(evs)-1].Raw)]; !ok {
		t.Error("the newest event was dropped")
	}
	if _, ok := h.byRaw[string(evs[0].Raw)]; ok {
		t.Error("the oldest event is still held")
	}
	// Taken and handed off many times, the order list stays bounded.
	for range 5000 {
		d.Handoff(evs[:1])
		if h.take(evs[0].Raw) == nil {
			t.Fatal("handed-off event not found")
		}
	}
	if len(h.order) > 2*len(h.byRaw)+1024 {
		t.Errorf("order holds %d keys for %d events", len(h.order), len(h.byRaw))
	}
}
