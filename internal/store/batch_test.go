package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/sharelog/sharelog/internal/ledger"
)

func TestAppendOutcomes(t *testing.T) {
	mk := func(tb testing.TB, id, recipient string) *ledger.Event {
		return disc{id: id, recipient: recipient, subjects: []ledger.Subject{subj("A1")}, at: day(1)}.event(tb)
	}
	other := func(tb testing.TB, source, id string) *ledger.Event {
		return newEvent(tb, ledger.TypeErasure, source, id, &ledger.Erasure{RequestHeader: ledger.RequestHeader{Request: "req-" + id, Subject: subj("A1"), DecidedAt: day(2)}})
	}
	tests := []struct {
		name    string
		batches [][]*ledger.Event
		want    [][]ledger.Outcome
		count   uint64
	}{
		{
			name:    "duplicate within a batch",
			batches: [][]*ledger.Event{{recipientEvent(t, "acro", "ACRO"), mk(t, "d1", "acro"), mk(t, "d1", "acro")}},
			want:    [][]ledger.Outcome{{ledger.Recorded, ledger.Recorded, ledger.Duplicate}},
			count:   2,
		},
		{
			name:    "duplicate across batches",
			batches: [][]*ledger.Event{{recipientEvent(t, "acro", "ACRO"), mk(t, "d1", "acro")}, {mk(t, "d1", "acro"), mk(t, "d2", "acro")}},
			want:    [][]ledger.Outcome{{ledger.Recorded, ledger.Recorded}, {ledger.Duplicate, ledger.Recorded}},
			count:   3,
		},
		{
			name: "same id from another source is not a duplicate",
			batches: [][]*ledger.Event{{recipientEvent(t, "acro", "ACRO"), mk(t, "d1", "acro"),
				disc{source: "web", id: "d1", recipient: "acro", subjects: []ledger.Subject{subj("A1")}, at: day(1)}.event(t)}},
			want:  [][]ledger.Outcome{{ledger.Recorded, ledger.Recorded, ledger.Recorded}},
			count: 3,
		},
		{
			name:    "unknown recipient rejected",
			batches: [][]*ledger.Event{{mk(t, "d1", "acro")}},
			want:    [][]ledger.Outcome{{ledger.Rejected}},
			count:   0,
		},
		{
			name:    "recipient registered later in the batch does not count",
			batches: [][]*ledger.Event{{mk(t, "d1", "acro"), recipientEvent(t, "acro", "ACRO"), mk(t, "d1", "acro")}},
			want:    [][]ledger.Outcome{{ledger.Rejected, ledger.Recorded, ledger.Recorded}},
			count:   2,
		},
		{
			name:    "recipient registered in an earlier batch",
			batches: [][]*ledger.Event{{recipientEvent(t, "acro", "ACRO")}, {mk(t, "d1", "acro"), mk(t, "d2", "nope")}},
			want:    [][]ledger.Outcome{{ledger.Recorded}, {ledger.Recorded, ledger.Rejected}},
			count:   2,
		},
		{
			name:    "other types recorded and deduplicated",
			batches: [][]*ledger.Event{{other(t, "dpo", "e1"), other(t, "dpo", "e1")}, {other(t, "dpo", "e1"), other(t, "dpo", "e2")}},
			want:    [][]ledger.Outcome{{ledger.Recorded, ledger.Duplicate}, {ledger.Duplicate, ledger.Recorded}},
			count:   2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openTest(t, testConfig(t))
			for i, batch := range tt.batches {
				got := applyBatch(t, s, batch...)
				if !slices.Equal(got, tt.want[i]) {
					t.Errorf("batch %d outcomes = %v, want %v", i, got, tt.want[i])
				}
			}
			if got := s.Count(); got != tt.count {
				t.Errorf("Count() = %d, want %d", got, tt.count)
			}
			var n uint64
			for _, b := range tt.batches {
				n += uint64(len(b))
			}
			if got := s.Applied(); got != n {
				t.Errorf("Applied() = %d, want %d", got, n)
			}
		})
	}
}

func TestAppendRejectedError(t *testing.T) {
	s := openTest(t, testConfig(t))
	b := s.Begin()
	defer b.Discard()
	o, err := b.Append(1, disc{id: "d1", recipient: "met-police", subjects: []ledger.Subject{subj("A1")}, at: day(1)}.event(t))
	if o != ledger.Rejected {
		t.Fatalf("outcome = %v, want rejected", o)
	}
	var ie *ledger.InvalidError
	if !errors.As(err, &ie) {
		t.Fatalf("error = %T %v, want *ledger.InvalidError", err, err)
	}
	want := []ledger.Problem{{Reason: ledger.ReasonUnknownRecipient, Field: "data.recipient", Detail: `recipient "met-police" is not registered`}}
	if !slices.Equal(ie.Problems, want) {
		t.Errorf("problems = %v, want %v", ie.Problems, want)
	}
	if strings.Contains(err.Error(), "A1") {
		t.Errorf("error %q names the subject", err)
	}
	if b.Len() != 0 {
		t.Errorf("Len() = %d, want 0", b.Len())
	}
	// The batch stays usable after a rejection.
	if o, err := b.Append(2, recipientEvent(t, "met-police", "Met")); o != ledger.Recorded || err != nil {
		t.Fatalf("Append after rejection = %v, %v", o, err)
	}
	if err := b.Commit(2); err != nil {
		t.Fatal(err)
	}
	if s.Count() != 1 || s.Applied() != 2 {
		t.Errorf("Count, Applied = %d, %d; want 1, 2", s.Count(), s.Applied())
	}
}

func TestDedupeAfterReopen(t *testing.T) {
	cfg := testConfig(t)
	s, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ev := disc{id: "d1", recipient: "acro", subjects: []ledger.Subject{subj("A1")}, at: day(1)}
	applyBatch(t, s, recipientEvent(t, "acro", "ACRO"), ev.event(t))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openTest(t, cfg)
	if s.Applied() != 2 || s.Count() != 2 {
		t.Fatalf("after reopen Applied, Count = %d, %d; want 2, 2", s.Applied(), s.Count())
	}
	if _, err := s.Recipient(context.Background(), "acro"); err != nil {
		t.Fatalf("registry not reloaded: %v", err)
	}
	got := applyBatch(t, s, ev.event(t), disc{id: "d2", recipient: "acro", subjects: []ledger.Subject{subj("A1")}, at: day(2)}.event(t))
	want := []ledger.Outcome{ledger.Duplicate, ledger.Recorded}
	if !slices.Equal(got, want) {
		t.Errorf("outcomes = %v, want %v", got, want)
	}
	if s.Count() != 3 {
		t.Errorf("Count() = %d, want 3", s.Count())
	}
}

func TestDiscardLeavesNothing(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, testConfig(t))
	applyBatch(t, s, recipientEvent(t, "acro", "ACRO"))

	b := s.Begin()
	ev := disc{id: "d1", recipient: "acro", subjects: []ledger.Subject{subj("A1")}, at: day(1)}.event(t)
	for i, e := range []*ledger.Event{ev, recipientEvent(t, "police", "Police")} {
		if o, err := b.Append(uint64(2+i), e); o != ledger.Recorded || err != nil {
			t.Fatalf("Append = %v, %v", o, err)
		}
	}
	b.Discard()
	b.Discard() // idempotent

	if s.Count() != 1 || s.Applied() != 1 {
		t.Errorf("Count, Applied = %d, %d; want 1, 1", s.Count(), s.Applied())
	}
	if _, err := s.Entry(ctx, 2); ledger.ErrorCode(err) != ledger.ENOTFOUND {
		t.Errorf("Entry(2) error = %v, want not_found", err)
	}
	if _, err := s.Recipient(ctx, "police"); ledger.ErrorCode(err) != ledger.ENOTFOUND {
		t.Errorf("Recipient(police) error = %v, want not_found", err)
	}
	who, err := s.Who(ctx, subj("A1"))
	if err != nil || len(who.Recipients) != 0 || who.Disclosures != 0 {
		t.Errorf("Who = %+v, %v; want empty", who, err)
	}
	if _, err := b.Append(9, ev); err == nil {
		t.Error("Append on a discarded batch succeeded")
	}
	// The dedupe record was discarded too: the event is new.
	if got := applyBatch(t, s, ev); !slices.Equal(got, []ledger.Outcome{ledger.Recorded}) {
		t.Errorf("re-append outcomes = %v, want [recorded]", got)
	}
	if s.Count() != 2 {
		t.Errorf("Count() = %d, want 2", s.Count())
	}
}

func TestCommitWithoutEntries(t *testing.T) {
	cfg := testConfig(t)
	s, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	b := s.Begin()
	if err := b.Commit(7); err != nil {
		t.Fatal(err)
	}
	if s.Applied() != 7 || s.Count() != 0 {
		t.Errorf("Applied, Count = %d, %d; want 7, 0", s.Applied(), s.Count())
	}
	s.Close()
	s = openTest(t, cfg)
	if s.Applied() != 7 || s.Count() != 0 {
		t.Errorf("after reopen Applied, Count = %d, %d; want 7, 0", s.Applied(), s.Count())
	}
}

func TestStreamSeqOrder(t *testing.T) {
	s := openTest(t, testConfig(t))
	applyBatch(t, s, recipientEvent(t, "acro", "ACRO")) // applied = 1

	tests := []struct {
		name    string
		appends []uint64
		commit  uint64
		wantErr bool
	}{
		{name: "append at applied", appends: []uint64{1}, wantErr: true},
		{name: "append not increasing", appends: []uint64{5, 5}, wantErr: true},
		{name: "commit below appended", appends: []uint64{5}, commit: 4, wantErr: true},
		{name: "commit below applied", commit: 0, wantErr: true},
		{name: "gaps allowed", appends: []uint64{3, 9}, commit: 12},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			applied, count := s.Applied(), s.Count()
			b := s.Begin()
			defer b.Discard()
			var err error
			for i, seq := range tt.appends {
				ev := newEvent(t, ledger.TypeHold, "dpo", tt.name+string(rune('a'+i)), &ledger.Hold{Hold: tt.name + string(rune('a'+i)), Reason: "r"})
				if _, err = b.Append(seq, ev); err != nil {
					break
				}
			}
			if err == nil {
				err = b.Commit(tt.commit)
			} else if cerr := b.Commit(tt.commit); cerr == nil {
				t.Error("Commit after a failed Append succeeded")
			}
			if (err != nil) != tt.wantErr {
				t.Fatalf("error = %v, want error %v", err, tt.wantErr)
			}
			if tt.wantErr && (s.Applied() != applied || s.Count() != count) {
				t.Errorf("failed batch changed Applied, Count to %d, %d", s.Applied(), s.Count())
			}
			if !tt.wantErr && (s.Applied() != tt.commit || s.Count() != count+uint64(len(tt.appends))) {
				t.Errorf("Applied, Count = %d, %d; want %d, %d", s.Applied(), s.Count(), tt.commit, count+uint64(len(tt.appends)))
			}
		})
	}
}

func TestSeqDense(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, testConfig(t))
	applyBatch(t, s, recipientEvent(t, "acro", "ACRO"))
	// Stream seqs 2..7; 3 is a duplicate and 5 is rejected.
	evs := []*ledger.Event{
		disc{id: "d1", recipient: "acro", subjects: []ledger.Subject{subj("A1")}, at: day(1)}.event(t),
		disc{id: "d1", recipient: "acro", subjects: []ledger.Subject{subj("A1")}, at: day(1)}.event(t),
		disc{id: "d2", recipient: "acro", subjects: []ledger.Subject{subj("A1")}, at: day(1)}.event(t),
		disc{id: "d3", recipient: "nope", subjects: []ledger.Subject{subj("A1")}, at: day(1)}.event(t),
	}
	applyBatch(t, s, evs...)
	applyBatch(t, s, disc{id: "d4", recipient: "acro", subjects: []ledger.Subject{subj("A1")}, at: day(1)}.event(t))

	want := []struct {
		streamSeq uint64
		id        string
	}{{1, "rcp-acro-ACRO"}, {2, "d1"}, {4, "d2"}, {6, "d4"}}
	if s.Count() != uint64(len(want)) {
		t.Fatalf("Count() = %d, want %d", s.Count(), len(want))
	}
	for i, w := range want {
		e, err := s.Entry(ctx, uint64(i+1))
		if err != nil {
			t.Fatalf("Entry(%d): %v", i+1, err)
		}
		if e.Seq != uint64(i+1) || e.StreamSeq != w.streamSeq || e.Event.ID != w.id {
			t.Errorf("Entry(%d) = seq %d stream %d id %s; want seq %d stream %d id %s",
				i+1, e.Seq, e.StreamSeq, e.Event.ID, i+1, w.streamSeq, w.id)
		}
		if e.RecordedAt.IsZero() {
			t.Errorf("Entry(%d) has no RecordedAt", i+1)
		}
	}
	if _, err := s.Entry(ctx, 5); ledger.ErrorCode(err) != ledger.ENOTFOUND {
		t.Errorf("Entry(5) error = %v, want not_found", err)
	}
}

func TestEntryRoundTrip(t *testing.T) {
	s := openTest(t, testConfig(t))
	ev := newEvent(t, ledger.TypeErasure, "dpo", "e1", &ledger.Erasure{RequestHeader: ledger.RequestHeader{Request: "req-1", Subject: subj("A1"), DecidedAt: day(3)}, Categories: []string{"user.contact"}, Ground: "art17-1-a"})
	ev.DataSchema = ""
	applyBatch(t, s, ev)
	e, err := s.Entry(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if string(e.Event.Raw) != string(ev.Raw) {
		t.Errorf("Raw = %s, want %s", e.Event.Raw, ev.Raw)
	}
	got, ok := e.Event.Data.(*ledger.Erasure)
	if !ok {
		t.Fatalf("Data is %T, want *ledger.Erasure", e.Event.Data)
	}
	want := ev.Data.(*ledger.Erasure)
	if got.Request != want.Request || got.Subject != want.Subject || !slices.Equal(got.Categories, want.Categories) ||
		got.Ground != want.Ground || !got.DecidedAt.Equal(want.DecidedAt) {
		t.Errorf("Data = %+v, want %+v", got, want)
	}
	if e.Event.Source != "dpo" || e.Event.ID != "e1" || e.Event.Type != ledger.TypeErasure || !e.Event.Time.Equal(ev.Time) {
		t.Errorf("context = %s %s %s %s", e.Event.Source, e.Event.ID, e.Event.Type, e.Event.Time)
	}
}

func TestRecipientReplaced(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t)
	s, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	applyBatch(t, s, recipientEvent(t, "acro", "ACRO v1"), recipientEvent(t, "met", "Met"))
	applyBatch(t, s, recipientEvent(t, "acro", "ACRO v2"))
	check := func(s *Store) {
		t.Helper()
		r, err := s.Recipient(ctx, "acro")
		if err != nil {
			t.Fatal(err)
		}
		if r.Name != "ACRO v2" {
			t.Errorf("Recipient(acro).Name = %q, want %q", r.Name, "ACRO v2")
		}
		rs, err := s.Recipients(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range rs {
			got = append(got, r.ID+"="+r.Name)
		}
		if want := []string{"acro=ACRO v2", "met=Met"}; !slices.Equal(got, want) {
			t.Errorf("Recipients() = %v, want %v", got, want)
		}
		if _, err := s.Recipient(ctx, "nope"); ledger.ErrorCode(err) != ledger.ENOTFOUND {
			t.Errorf("Recipient(nope) error = %v, want not_found", err)
		}
	}
	check(s)
	s.Close()
	check(openTest(t, cfg))
}

func TestBatchTooBig(t *testing.T) {
	s := openTest(t, testConfig(t))
	b := s.Begin()
	defer b.Discard()
	// Values under the value threshold count whole towards the
	// transaction's size (15% of a 32 MiB memtable), those over it (the
	// entries, in the value log) by their pointer: enough holds outgrow it.
	var err error
	for i := uint64(1); i < 100_000 && err == nil; i++ {
		ev := newEvent(t, ledger.TypeHold, "dpo", fmt.Sprint("h", i), &ledger.Hold{Hold: fmt.Sprint("h", i), Reason: "litigation"})
		_, err = b.Append(i, ev)
	}
	if !errors.Is(err, ErrBatchTooBig) {
		t.Fatalf("error = %v, want ErrBatchTooBig", err)
	}
	if err := b.Commit(500); !errors.Is(err, ErrBatchTooBig) {
		t.Errorf("Commit error = %v, want the batch's ErrBatchTooBig", err)
	}
	if s.Count() != 0 || s.Applied() != 0 {
		t.Errorf("Count, Applied = %d, %d; want 0, 0", s.Count(), s.Applied())
	}
}
