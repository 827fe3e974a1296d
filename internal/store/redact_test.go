package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/sharelog/sharelog/internal/ledger"
)

// personalEvents are events of every type with personal fields, each value
// distinctive so that a search of the clear part can find it.
func personalEvents(tb testing.TB) []*ledger.Event {
	at := time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)
	person := func(id string) ledger.Subject { return ledger.Subject{Scheme: "dbs-ref", ID: id} }
	p := person("PERSON-3")
	return []*ledger.Event{
		newEvent(tb, ledger.TypeDisclosure, "cms", "d1", &ledger.Disclosure{
			Subjects: []ledger.Subject{person("PERSON-1"), person("PERSON-2 \"quoted\" \u00e9")}, Recipient: "acro",
			Categories: []string{"user.name"}, Purpose: "safeguarding.disclosure_check", LawfulBasis: "dpa-s35-2-b",
			Regime: "dpa-part3", DisclosedAt: at, DisclosedBy: "OFFICER-SMITH", Justification: "JUSTIFY <b>&</b> SECRET",
			Records: []ledger.RecordRef{{System: "pnc", Ref: "RECORD-REF-9"}}}),
		newEvent(tb, ledger.TypeRectification, "cms", "r1", &ledger.Rectification{RequestHeader: ledger.RequestHeader{Request: "rq1", Subject: p, DecidedAt: at}, Changes: []ledger.Change{{Category: "user.contact.address", Field: "address", Value: map[string]any{"line1": "NEW-ADDRESS"}},
			{Category: "user.name", Field: "name", Value: "NEW-NAME"}, {Category: "user.name", Field: "alias"}}, Summary: "SUMMARY-TEXT", DecidedBy: "DECIDER-1"}),
		newEvent(tb, ledger.TypeErasure, "cms", "e1", &ledger.Erasure{RequestHeader: ledger.RequestHeader{Request: "rq2", Subject: p, DecidedAt: at}, DecidedBy: "DECIDER-2"}),
		newEvent(tb, ledger.TypeRestriction, "cms", "s1", &ledger.Restriction{RequestHeader: ledger.RequestHeader{Request: "rq3", Subject: p, DecidedAt: at}, DecidedBy: "DECIDER-3"}),
		newEvent(tb, ledger.TypeRestrictionLifted, "cms", "l1", &ledger.RestrictionLifted{RequestHeader: ledger.RequestHeader{Request: "rq4", Subject: p, DecidedAt: at}, Restriction: "rq3", SubjectInformedAt: ptrTime(at.Add(-time.Hour))}),
		newEvent(tb, ledger.TypeNoticeAck, "acro", "a1", &ledger.NoticeAck{Notice: "ntc-1", Outcome: "done", Note: "NOTE-NAMES-PERSON"}),
		newEvent(tb, ledger.TypeExemption, "cms", "x1", &ledger.Exemption{Notice: "ntc-1", Reason: "other", Justification: "EXEMPT-WHY", DecidedBy: "dpo"}),
		newEvent(tb, ledger.TypeHold, "legal", "h1", &ledger.Hold{Hold: "case-1", Reason: "HOLD-REASON", Scope: &ledger.HoldScope{Subject: &p}}),
		newEvent(tb, ledger.TypeHoldReleased, "legal", "h2", &ledger.HoldReleased{Hold: "case-1", Reason: "RELEASE-REASON", Scope: &ledger.HoldScope{Subject: &p}}),
	}
}

var personalValues = []string{"PERSON-", "OFFICER-SMITH", "JUSTIFY", "RECORD-REF-9", "NEW-ADDRESS", "NEW-NAME",
	"SUMMARY-TEXT", "DECIDER-", "NOTE-NAMES-PERSON", "EXEMPT-WHY", "HOLD-REASON", "RELEASE-REASON"}

func TestSplitPersonal(t *testing.T) {
	for _, ev := range personalEvents(t) {
		t.Run(ev.Type, func(t *testing.T) {
			clear, personal, err := splitPersonal(ev)
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range personalValues {
				if bytes.Contains(clear, []byte(v)) {
					t.Errorf("clear part holds %q: %s", v, clear)
				}
			}
			// The clear part is the event in JSON, which the ledger decodes
			// for a forgotten entry: same type, identity and facts.
			got, err := decodeEvent(clear)
			if err != nil {
				t.Fatalf("clear part does not decode: %v\n%s", err, clear)
			}
			if got.ID != ev.ID || got.Source != ev.Source || got.Type != ev.Type {
				t.Errorf("clear part is %s/%s %s", got.Source, got.ID, got.Type)
			}
			raw, err := joinPersonal(clear, personal)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(raw, ev.Raw) {
				t.Errorf("joined:\n%s\nwant Raw:\n%s", raw, ev.Raw)
			}
		})
	}
	// The clear disclosure keeps the facts and the subjects' schemes.
	d, _, err := splitPersonal(personalEvents(t)[0])
	if err != nil {
		t.Fatal(err)
	}
	ev, _ := decodeEvent(d)
	dd := ev.Data.(*ledger.Disclosure)
	if len(dd.Subjects) != 2 || dd.Subjects[1] != (ledger.Subject{Scheme: "dbs-ref"}) || dd.Recipient != "acro" || dd.Records != nil {
		t.Errorf("clear disclosure = %+v", dd)
	}
}

// An event whose personal values are not where its typed data says (keys
// twice in one object, as a careless or hostile producer may send, which
// parsers read differently) is refused, never recorded with a value left in
// clear.
func TestSplitPersonalRefuses(t *testing.T) {
	base := personalEvents(t)[0]
	for name, edit := range map[string]func(string) string{
		"justification twice": func(r string) string {
			return strings.Replace(r, `"justification":`, `"justification":"harmless","justification":`, 1)
		},
		"subject id twice": func(r string) string {
			return strings.Replace(r, `"id":"PERSON-1"`, `"id":"x","id":"PERSON-1"`, 1)
		},
		"data twice": func(r string) string {
			return strings.Replace(r, `"data":`, `"data":{"justification":"x"},"data":`, 1)
		},
	} {
		t.Run(name, func(t *testing.T) {
			ev := *base
			ev.Raw = []byte(edit(string(base.Raw)))
			if bytes.Equal(ev.Raw, base.Raw) {
				t.Fatal("the edit changed nothing")
			}
			// The typed data is what encoding/json reads: the last duplicate.
			ev.Data = new(ledger.Disclosure)
			var w struct{ Data json.RawMessage }
			if err := json.Unmarshal(ev.Raw, &w); err != nil || json.Unmarshal(w.Data, ev.Data) != nil {
				t.Fatal("edited event does not decode")
			}
			clear, _, err := splitPersonal(&ev)
			if err == nil {
				t.Fatalf("split an event with a duplicate key; clear part: %s", clear)
			}
			if r, _ := reasonOf(t, err); r != ledger.ReasonMalformed {
				t.Errorf("refused with %v, want %s", err, ledger.ReasonMalformed)
			}
		})
	}
	// A key spelt with an escape still names the field: located or refused.
	ev := *base
	ev.Raw = []byte(strings.Replace(string(base.Raw), `"justification":`, `"justific\u0061tion":`, 1))
	if clear, _, err := splitPersonal(&ev); err == nil && bytes.Contains(clear, []byte("JUSTIFY")) {
		t.Errorf("escaped key left the justification in clear: %s", clear)
	}
}

func TestJoinPersonalCorrupt(t *testing.T) {
	clear, personal, err := splitPersonal(personalEvents(t)[2])
	if err != nil {
		t.Fatal(err)
	}
	for name, p := range map[string][]byte{
		"empty":          nil,
		"no version":     personal[1:],
		"truncated":      personal[:len(personal)-1],
		"trailing":       append(bytes.Clone(personal), 0),
		"bad kind":       func() []byte { q := bytes.Clone(personal); q[3] = 7; return q }(),
		"offset outside": append(binary.AppendUvarint([]byte{patchVersion, 1}, uint64(len(clear))), 0, 1, 'x'),
	} {
		if _, err := joinPersonal(clear, p); err == nil {
			t.Errorf("%s: joined a corrupt personal part", name)
		}
	}
}

// FuzzSplitPersonal: whatever the bytes, a split either refuses or gives a
// clear part without the typed personal values and a personal part that
// joins back to Raw exactly.
func FuzzSplitPersonal(f *testing.F) {
	for _, ev := range personalEvents(f) {
		if ev.Type == ledger.TypeDisclosure {
			f.Add(ev.Raw)
		}
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		var w struct{ Data json.RawMessage }
		var d ledger.Disclosure
		if json.Unmarshal(raw, &w) != nil || json.Unmarshal(w.Data, &d) != nil {
			return
		}
		ev := &ledger.Event{Type: ledger.TypeDisclosure, Data: &d, Raw: raw}
		clear, personal, err := splitPersonal(ev)
		if err != nil {
			return
		}
		got, err := joinPersonal(clear, personal)
		if err != nil || !bytes.Equal(got, raw) {
			t.Fatalf("join = %q, %v; want %q", got, err, raw)
		}
		// What encoding/json (which takes the last of duplicate keys) reads
		// from the clear part holds none of the personal values.
		var cw struct{ Data json.RawMessage }
		var cd ledger.Disclosure
		if err := json.Unmarshal(clear, &cw); err != nil {
			t.Fatalf("clear part is not JSON: %v", err)
		}
		if err := json.Unmarshal(cw.Data, &cd); err != nil {
			t.Fatalf("clear data does not decode: %v", err)
		}
		for _, s := range cd.Subjects {
			if s.ID != "" {
				t.Fatalf("subject id %q left in clear", s.ID)
			}
		}
		if cd.DisclosedBy != "" || cd.Justification != "" || len(cd.Records) != 0 {
			t.Fatalf("personal fields left in clear: %+v", cd)
		}
	})
}

// BenchmarkSplitPersonal cuts the personal values out of the workload's
// disclosures, as Append does for each: one op is one event.
func BenchmarkSplitPersonal(b *testing.B) {
	w := newWorkload(1)
	start := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	evs := w.batch(b, start)
	var clear, patch []byte
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		var err error
		if clear, patch, err = appendSplit(clear[:0], patch[:0], evs[i%len(evs)]); err != nil {
			b.Fatal(err)
		}
	}
}
