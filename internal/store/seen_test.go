package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"slices"
	"testing"

	"github.com/sharelog/sharelog/internal/ledger"
)

// acroDisc is a disclosure to ACRO with id id.
func acroDisc(tb testing.TB, id string) *ledger.Event {
	return disc{id: id, recipient: "acro", subjects: []ledger.Subject{subj("A1")}, at: day(1)}.event(tb)
}

// acroDiscs returns disclosures to ACRO with ids prefix0 to prefix<n-1>.
func acroDiscs(tb testing.TB, prefix string, n int) []*ledger.Event {
	var evs []*ledger.Event
	for i := range n {
		evs = append(evs, acroDisc(tb, fmt.Sprintf("%s%d", prefix, i)))
	}
	return evs
}

func isConflict(err error) bool {
	var ie *ledger.InvalidError
	return errors.As(err, &ie) && ie.Reason() == ledger.ReasonConflict
}

// changed returns ev with other content: the same source and id.
func changed(ev *ledger.Event) *ledger.Event {
	c := *ev
	c.Raw = bytes.Replace(ev.Raw, []byte("{"), []byte(`{"changed":true,`), 1)
	return &c
}

// appendOne appends ev in a batch of its own and commits it.
func appendOne(t *testing.T, s *Store, ev *ledger.Event) (ledger.Outcome, error) {
	t.Helper()
	b := s.Begin()
	defer b.Discard()
	out, err := b.Append(s.Applied()+1, ev)
	if out != ledger.Rejected && err != nil {
		t.Fatalf("Append(%s): %v", ev.ID, err)
	}
	if err := b.Commit(s.Applied() + 1); err != nil {
		t.Fatal(err)
	}
	return out, err
}

// TestSeenSkipsLookups: once the dedupe filter is built, a new event is
// recorded without looking its dedupe key up (the counter of lookups
// saved goes up by one per new event), while duplicates in the same
// batch and in the next are still found, and a conflict refused.
func TestSeenSkipsLookups(t *testing.T) {
	s := openTest(t, testConfig(t))
	s.seenWait()
	if s.seenCapacity() != seenMinCapacity {
		t.Fatalf("filter capacity %d, want %d", s.seenCapacity(), seenMinCapacity)
	}
	applyBatch(t, s, recipientEvent(t, "acro", "ACRO"))
	if got := s.seenSkipped(); got != 1 {
		t.Fatalf("lookups skipped after one new event = %d, want 1", got)
	}
	evs := acroDiscs(t, "d", 10)
	got := applyBatch(t, s, append(slices.Clone(evs), evs[3])...)
	want := append(slices.Repeat([]ledger.Outcome{ledger.Recorded}, 10), ledger.Duplicate)
	if !slices.Equal(got, want) {
		t.Fatalf("outcomes = %v, want %v", got, want)
	}
	if got := s.seenSkipped(); got != 11 {
		t.Fatalf("lookups skipped after 11 new events = %d, want 11", got)
	}
	if got := applyBatch(t, s, evs[0], evs[9], acroDisc(t, "e0")); !slices.Equal(got, []ledger.Outcome{ledger.Duplicate, ledger.Duplicate, ledger.Recorded}) {
		t.Fatalf("next batch = %v, want duplicate, duplicate, recorded", got)
	}
	if out, err := appendOne(t, s, changed(evs[5])); out != ledger.Rejected || !isConflict(err) {
		t.Fatalf("other content under a recorded (source, id) = %v, %v; want a conflict", out, err)
	}
	if got := s.seenSkipped(); got != 12 {
		t.Fatalf("lookups skipped = %d, want 12: duplicates and conflicts are looked up", got)
	}
	if s.Count() != 12 {
		t.Fatalf("count %d, want 12", s.Count())
	}
}

// TestSeenWhileBuilding: a reopened ledger finds its duplicates while the
// filter's build is held before its scan (every key looked up, none
// skipped), and after it ends, events appended during the build and before
// it alike; a discarded batch leaves nothing recorded.
func TestSeenWhileBuilding(t *testing.T) {
	cfg := testConfig(t)
	s, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	before := acroDiscs(t, "b", 20)
	applyBatch(t, s, recipientEvent(t, "acro", "ACRO"))
	applyBatch(t, s, before[:10]...)
	applyBatch(t, s, before[10:]...)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	gate := make(chan chan struct{})
	cfg.seenGate = gate
	s = openTest(t, cfg)
	release := <-gate // the build has its snapshot and waits
	during := acroDiscs(t, "w", 5)
	if got := applyBatch(t, s, before[0], during[0], during[1], before[19], during[0]); !slices.Equal(got,
		[]ledger.Outcome{ledger.Duplicate, ledger.Recorded, ledger.Recorded, ledger.Duplicate, ledger.Duplicate}) {
		t.Fatalf("while building = %v", got)
	}
	if out, err := appendOne(t, s, changed(before[7])); out != ledger.Rejected || !isConflict(err) {
		t.Fatalf("conflict while building = %v, %v", out, err)
	}
	b := s.Begin()
	if out, err := b.Append(s.Applied()+1, during[4]); out != ledger.Recorded || err != nil {
		t.Fatal(out, err)
	}
	b.Discard()
	if s.seenCapacity() != 0 || s.seenSkipped() != 0 {
		t.Fatalf("filter in use before its build ended: capacity %d, %d lookups skipped", s.seenCapacity(), s.seenSkipped())
	}

	close(release)
	s.seenWait()
	if s.seenCapacity() == 0 {
		t.Fatal("no filter after the build")
	}
	evs := append(slices.Clone(before), during[0], during[1], during[2], during[4])
	want := append(slices.Repeat([]ledger.Outcome{ledger.Duplicate}, 22), ledger.Recorded, ledger.Recorded)
	if got := applyBatch(t, s, evs...); !slices.Equal(got, want) {
		t.Fatalf("after the build = %v, want %v", got, want)
	}
	if got := s.seenSkipped(); got != 1 {
		t.Fatalf("lookups skipped = %d, want 1 (during[2]; during[4] was in a discarded batch: it costs a lookup)", got)
	}
	if out, err := appendOne(t, s, changed(during[1])); out != ledger.Rejected || !isConflict(err) {
		t.Fatalf("conflict after the build = %v, %v", out, err)
	}
	if s.Count() != 1+20+2+2 {
		t.Fatalf("count %d, want 25", s.Count())
	}
}

// TestSeenCloseWhileBuilding: Close stops a build held before its scan.
func TestSeenCloseWhileBuilding(t *testing.T) {
	cfg := testConfig(t)
	cfg.seenGate = make(chan chan struct{})
	s, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s.seenWait()
}

// TestSeenGrows: a filter whose keys outgrow its capacity is replaced by
// one twice as large, built while the writer goes on adding to both;
// no duplicate is missed before, during or after.
func TestSeenGrows(t *testing.T) {
	cfg := testConfig(t)
	cfg.seenCapacity = 8
	gate := make(chan chan struct{})
	cfg.seenGate = gate
	s := openTest(t, cfg)
	close(<-gate)
	s.seenWait()
	if s.seenCapacity() != 8 {
		t.Fatalf("capacity %d, want 8", s.seenCapacity())
	}
	evs := append([]*ledger.Event{recipientEvent(t, "acro", "ACRO")}, acroDiscs(t, "d", 8)...)
	applyBatch(t, s, evs...) // 9 keys in a filter for 8: a build of one for 18 starts once the batch ends
	if !s.seenGrowing() {
		t.Fatal("9 keys in a filter for 8, and no larger one is built")
	}
	release := <-gate // the build has its snapshot and waits: the writer adds to both filters
	more := acroDiscs(t, "m", 4)
	if got := applyBatch(t, s, append(slices.Clone(more), evs[1], evs[8])...); !slices.Equal(got,
		[]ledger.Outcome{ledger.Recorded, ledger.Recorded, ledger.Recorded, ledger.Recorded, ledger.Duplicate, ledger.Duplicate}) {
		t.Fatalf("outcomes = %v", got)
	}
	if c := s.seenCapacity(); c != 8 {
		t.Fatalf("capacity %d while the larger filter is built, want 8", c)
	}
	close(release)
	s.seenWait()
	if c := s.seenCapacity(); c != 18 {
		t.Fatalf("capacity after growing %d, want 18", c)
	}
	all := append(slices.Clone(evs), more...)
	if got := applyBatch(t, s, all...); !slices.Equal(got, slices.Repeat([]ledger.Outcome{ledger.Duplicate}, len(all))) {
		t.Fatalf("replays after growing = %v", got)
	}
	skipped := s.seenSkipped()
	if got := applyBatch(t, s, acroDisc(t, "n0")); got[0] != ledger.Recorded {
		t.Fatal(got)
	}
	if s.seenSkipped() != skipped+1 {
		t.Fatal("the grown filter does not skip the lookup of a new event")
	}
}

// TestSeenLedgerWrittenBefore: the filter of a ledger written before it
// existed (testdata/ledger-v0) holds every event it recorded: each sent
// again is a duplicate, or a conflict with other content, and a new event
// skips its lookup.
func TestSeenLedgerWrittenBefore(t *testing.T) {
	ctx := context.Background()
	cfg, _ := openLedgerV0(t)
	s := openTest(t, cfg)
	s.seenWait()
	var evs []*ledger.Event
	var plain *ledger.Event
	for seq := uint64(1); seq <= s.Count(); seq++ {
		e, err := s.Entry(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		ev := e.Event
		evs = append(evs, &ev)
		if ev.Type == ledger.TypeRecipient {
			plain = &ev
		}
	}
	if len(evs) != 48 || plain == nil {
		t.Fatalf("%d entries, recipient %v; want 48 and one", len(evs), plain)
	}
	if got := applyBatch(t, s, evs...); !slices.Equal(got, slices.Repeat([]ledger.Outcome{ledger.Duplicate}, 48)) {
		t.Fatalf("the old ledger's events sent again = %v, want 48 duplicates", got)
	}
	if out, err := appendOne(t, s, changed(plain)); out != ledger.Rejected || !isConflict(err) {
		t.Fatalf("other content = %v, %v; want a conflict", out, err)
	}
	if s.seenSkipped() != 0 {
		t.Fatalf("%d lookups skipped for recorded events", s.seenSkipped())
	}
	ev := newEvent(t, ledger.TypeRecipient, "admin", "new-recipient", &ledger.Recipient{
		ID: "newr", Name: "New", Role: ledger.RoleController, Channel: ledger.Channel{Type: "manual"}})
	if out, err := appendOne(t, s, ev); out != ledger.Recorded || err != nil {
		t.Fatal(out, err)
	}
	if s.seenSkipped() != 1 || s.Count() != 49 {
		t.Fatalf("new event: %d lookups skipped, count %d; want 1, 49", s.seenSkipped(), s.Count())
	}
}

// TestSeenRestored: a ledger restored from a backup builds its filter
// from the loaded keys: its events are duplicates, a new one skips the
// lookup.
func TestSeenRestored(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, testConfig(t))
	evs := append([]*ledger.Event{recipientEvent(t, "acro", "ACRO")}, acroDiscs(t, "d", 10)...)
	applyBatch(t, s, evs...)
	var buf bytes.Buffer
	if _, err := s.Backup(ctx, &buf); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t)
	cfg.KeyFile = filepath.Join(filepath.Dir(s.db.Opts().Dir), "site.key")
	r, err := Restore(cfg, &buf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	r.seenWait()
	if got := applyBatch(t, r, evs...); !slices.Equal(got, slices.Repeat([]ledger.Outcome{ledger.Duplicate}, len(evs))) {
		t.Fatalf("restored ledger: replays = %v", got)
	}
	if got := applyBatch(t, r, acroDisc(t, "new")); got[0] != ledger.Recorded || r.seenSkipped() != 1 {
		t.Fatalf("restored ledger: new event %v, %d lookups skipped; want recorded, 1", got, r.seenSkipped())
	}
}

// TestSeenGrowsThroughAPipeline: the build of a larger filter waits for the
// writer, which a pipeline passes from batch to batch (CommitNext) under a
// steady load: seeing it wanted, CommitNext commits and lets go, and the
// filter grows.
func TestSeenGrowsThroughAPipeline(t *testing.T) {
	cfg := testConfig(t)
	cfg.seenCapacity = 8
	s := openTest(t, cfg)
	s.seenWait()
	applyBatch(t, s, recipientEvent(t, "acro", "ACRO"))
	b := s.Begin()
	_, last := mustAppend(t, b, acroDiscs(t, "d", 9)...) // 10 keys in a filter for 8
	for s.writerWanted.Load() == 0 {
		runtime.Gosched()
	}
	next, err := b.CommitNext(last, nil)
	if err != nil || next != nil {
		t.Fatalf("CommitNext while the filter's growth waits = %v, %v; want no next batch", next, err)
	}
	s.seenWait()
	if c := s.seenCapacity(); c <= 8 {
		t.Fatalf("capacity %d after the pipeline let go, want more than 8", c)
	}
}
