package store

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/sharelog/sharelog/internal/ledger"
	"github.com/sharelog/sharelog/internal/ledger/ledgertest"
)

// These tests drive pipelined commits (CommitNext) on a real Badger: a
// batch opened before its predecessor's commit sees a snapshot without the
// predecessor's writes, and must either start from the predecessor's state
// kept in memory or fail with ErrSpeculationFailed, to be applied again.

// appendSeqs appends evs to b at the stream sequences after b.Applied(),
// and returns the outcomes, the last sequence and the first fatal error.
func appendSeqs(b *Batch, evs ...*ledger.Event) ([]ledger.Outcome, uint64, error) {
	seq := b.Applied()
	var out []ledger.Outcome
	for _, ev := range evs {
		seq++
		o, err := b.Append(seq, ev)
		if o == 0 {
			return out, seq, err
		}
		out = append(out, o)
	}
	return out, seq, nil
}

// mustAppend is appendSeqs failing t on a fatal error.
func mustAppend(t *testing.T, b *Batch, evs ...*ledger.Event) ([]ledger.Outcome, uint64) {
	t.Helper()
	out, last, err := appendSeqs(b, evs...)
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	return out, last
}

// commitNext commits b with CommitNext and returns the next batch and a
// channel that receives b's outcome once it is durable or failed.
func commitNext(t *testing.T, b *Batch, last uint64) (*Batch, chan error) {
	t.Helper()
	done := make(chan error, 1)
	next, err := b.CommitNext(last, func(err error) { done <- err })
	if err != nil || next == nil {
		t.Fatalf("CommitNext(%d) = %v, %v", last, next, err)
	}
	return next, done
}

func isSpeculation(err error) bool { return errors.Is(err, ErrSpeculationFailed) }

// TestCommitNextDuplicateInNextBatch: an event recorded in batch N and
// delivered again in N+1, whose snapshot lacks N's dedupe record: N+1
// takes it for new, and its commit fails with ErrSpeculationFailed; applied
// again after N, it is a duplicate, and the ledger holds it once.
func TestCommitNextDuplicateInNextBatch(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, testConfig(t))
	applyBatch(t, s, recipientEvent(t, "acro", "ACRO"))
	x := disc{id: "x", recipient: "acro", subjects: []ledger.Subject{subj("A1")}, at: day(1)}.event(t)
	b := s.Begin()
	_, last := mustAppend(t, b, x)
	next, done := commitNext(t, b, last)
	if out, _ := mustAppend(t, next, x); out[0] != ledger.Recorded {
		t.Fatalf("in the speculative batch: %v, want Recorded (its snapshot lacks x)", out[0])
	}
	if err := <-done; err != nil {
		t.Fatalf("batch N: %v", err)
	}
	if err := next.Commit(last + 1); !isSpeculation(err) {
		t.Fatalf("Commit of N+1 = %v, want ErrSpeculationFailed", err)
	}
	if s.Applied() != last || s.Count() != 2 {
		t.Fatalf("after the failed commit: applied %d, count %d; want %d, 2", s.Applied(), s.Count(), last)
	}
	again := s.Begin()
	if out, _ := mustAppend(t, again, x); out[0] != ledger.Duplicate {
		t.Fatalf("applied again: %v, want Duplicate", out[0])
	}
	if err := again.Commit(last + 1); err != nil {
		t.Fatal(err)
	}
	if s.Count() != 2 {
		t.Errorf("count %d, want 2: x recorded twice", s.Count())
	}
	if w, err := s.Who(ctx, subj("A1")); err != nil || w.Disclosures != 1 {
		t.Errorf("Who(A1) = %+v, %v; want one disclosure", w, err)
	}
}

// TestCommitNextSubjectNamedAgain: a subject first named in N and named
// again in N+1 takes N's salt from the store's cache (CommitNext puts N's
// salts there for N+1), so N+1 commits without a new salt.
func TestCommitNextSubjectNamedAgain(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, testConfig(t))
	applyBatch(t, s, recipientEvent(t, "acro", "ACRO"))
	a := []ledger.Subject{subj("NEW-1")}
	b := s.Begin()
	_, last := mustAppend(t, b, disc{id: "d1", recipient: "acro", subjects: a, at: day(1)}.event(t))
	next, done := commitNext(t, b, last)
	_, last = mustAppend(t, next, disc{id: "d2", recipient: "acro", subjects: a, at: day(2)}.event(t))
	if err := next.Commit(last); err != nil {
		t.Fatalf("Commit of N+1: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if w, err := s.Who(ctx, a[0]); err != nil || w.Disclosures != 2 {
		t.Errorf("Who = %+v, %v; want both disclosures under one keyed hash", w, err)
	}
	for seq := uint64(2); seq <= 3; seq++ {
		if e, err := s.Entry(ctx, seq); err != nil || e.Forgotten || e.Event.Data.(*ledger.Disclosure).Subjects[0] != a[0] {
			t.Errorf("entry %d does not open with the subject's key: %+v, %v", seq, e, err)
		}
	}
}

// collidingSubject returns a subject whose salt takes the same slot of the
// store's salt cache as subj's.
func collidingSubject(t *testing.T, s *Store, subj ledger.Subject) ledger.Subject {
	t.Helper()
	h := newSubjectHasher(s.secret)
	slot := func(x ledger.Subject) uint64 { return binary.BigEndian.Uint64(h.hash(x)) % saltCacheSlots }
	want := slot(subj)
	for i := range 64 * saltCacheSlots {
		c := ledger.Subject{Scheme: "dbs-ref", ID: fmt.Sprintf("C%08d", i)}
		if slot(c) == want && c != subj {
			return c
		}
	}
	t.Fatal("no subject takes the same slot")
	return ledger.Subject{}
}

// TestCommitNextSubjectNamedAgainUncached: when N's salt of a new subject
// is not in the cache (another subject of N took its slot), N+1 takes it
// from the salts N made, not from its snapshot, which has none.
func TestCommitNextSubjectNamedAgainUncached(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, testConfig(t))
	applyBatch(t, s, recipientEvent(t, "acro", "ACRO"))
	p := subj("NEW-1")
	q := collidingSubject(t, s, p)
	ev := func(id string, who ledger.Subject, d int) *ledger.Event {
		return disc{id: id, recipient: "acro", subjects: []ledger.Subject{who}, at: day(d)}.event(t)
	}
	b := s.Begin()
	_, last := mustAppend(t, b, ev("d1", p, 1), ev("d2", q, 2)) // q's salt takes p's slot
	next, done := commitNext(t, b, last)
	if s.salts.get(newSubjectHasher(s.secret).hash(p)) != nil {
		t.Fatal("p's salt is in the cache: the test shows nothing")
	}
	_, last = mustAppend(t, next, ev("d3", p, 3))
	if err := next.Commit(last); err != nil {
		t.Fatalf("Commit of N+1: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if w, err := s.Who(ctx, p); err != nil || w.Disclosures != 2 {
		t.Errorf("Who(p) = %+v, %v; want 2 disclosures under N's salt", w, err)
	}
}

// TestCommitNextFailedSaltsLeaveTheCache: a batch whose commit fails
// leaves no salt it made in the store's cache, where CommitNext put it
// for the next batch: applied again, the subject gets a salt Badger holds.
func TestCommitNextFailedSaltsLeaveTheCache(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, testConfig(t))
	applyBatch(t, s, recipientEvent(t, "acro", "ACRO"))
	x, fresh := subj("X-1"), subj("FRESH-1")
	ev := func(id string, who ledger.Subject, d int) *ledger.Event {
		return disc{id: id, recipient: "acro", subjects: []ledger.Subject{who}, at: day(d)}.event(t)
	}
	a := s.Begin()
	_, last := mustAppend(t, a, ev("d1", x, 1))
	b, doneA := commitNext(t, a, last)
	// d1 again, whose dedupe record a wrote: b's commit will fail.
	_, last = mustAppend(t, b, ev("d1", x, 1), ev("d2", fresh, 2))
	c, doneB := commitNext(t, b, last)
	if _, _, err := appendSeqs(c, ev("d3", fresh, 3)); err != nil && !isSpeculation(err) {
		t.Fatal(err)
	}
	if err := c.Commit(last + 1); !isSpeculation(err) {
		t.Fatalf("Commit after the failed batch = %v, want ErrSpeculationFailed", err)
	}
	if err := <-doneA; err != nil {
		t.Fatal(err)
	}
	if err := <-doneB; !isSpeculation(err) {
		t.Fatalf("batch b: %v, want ErrSpeculationFailed", err)
	}
	if out := applyBatch(t, s, ev("d1", x, 1), ev("d2", fresh, 2)); !slices.Equal(out, []ledger.Outcome{ledger.Duplicate, ledger.Recorded}) {
		t.Fatalf("applied again: %v", out)
	}
	applyBatch(t, s, ev("d3", fresh, 3))
	if h, err := s.SubjectHashOf(ctx, fresh); err != nil || h == "" {
		t.Fatalf("the subject is not known: %q, %v", h, err)
	}
	if w, err := s.Who(ctx, fresh); err != nil || w.Disclosures != 2 {
		t.Errorf("Who = %+v, %v; want 2 disclosures", w, err)
	}
	for seq := s.Count() - 1; seq <= s.Count(); seq++ {
		if e, err := s.Entry(ctx, seq); err != nil || e.Forgotten || e.Event.Data.(*ledger.Disclosure).Subjects[0] != fresh {
			t.Errorf("entry %d does not open with the subject's key: %+v, %v", seq, e, err)
		}
	}
}

// TestCommitNextErasureOfPredecessorsDisclosure: an erasure in N+1 of a
// subject disclosed to a recipient in N reads the subject's disclosures,
// a scan N+1 cannot trust: Append fails with ErrSpeculationFailed, and
// applied again the erasure opens obligations for N's recipient too.
func TestCommitNextErasureOfPredecessorsDisclosure(t *testing.T) {
	s := openTest(t, testConfig(t))
	a := []ledger.Subject{subj("A1")}
	applyBatch(t, s, rcp(t, "acro", "manual", "", 0), rcp(t, "police", "manual", "", 0),
		disc{id: "d0", recipient: "acro", subjects: a, at: day(1)}.event(t))
	b := s.Begin()
	_, last := mustAppend(t, b, disc{id: "d1", recipient: "police", subjects: a, at: day(2)}.event(t))
	next, done := commitNext(t, b, last)
	er := erasure(t, "e1", "E1", a[0], day(3))
	if _, _, err := appendSeqs(next, er); !isSpeculation(err) {
		t.Fatalf("erasure in the speculative batch: %v, want ErrSpeculationFailed", err)
	}
	if err := next.Commit(last + 1); !isSpeculation(err) {
		t.Fatalf("Commit = %v, want the batch's ErrSpeculationFailed", err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if out := applyBatch(t, s, er); out[0] != ledger.Recorded {
		t.Fatalf("applied again: %v", out[0])
	}
	var told []string
	for _, o := range mustStatus(t, s, "E1").Obligations {
		told = append(told, o.Recipient)
	}
	if slices.Sort(told); !slices.Equal(told, []string{"acro", "police"}) {
		t.Errorf("erasure told %v, want acro and police", told)
	}
}

// TestCommitNextRecipientRegisteredBefore: a recipient registered in N is
// in N+1's registry (chained from N), so a disclosure to it in N+1 is
// recorded and committed without being applied again.
func TestCommitNextRecipientRegisteredBefore(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, testConfig(t))
	b := s.Begin()
	_, last := mustAppend(t, b, recipientEvent(t, "newco", "New Co"))
	next, done := commitNext(t, b, last)
	out, last := mustAppend(t, next, disc{id: "d1", recipient: "newco", subjects: []ledger.Subject{subj("A1")}, at: day(1)}.event(t))
	if out[0] != ledger.Recorded {
		t.Fatalf("disclosure to newco in N+1: %v", out[0])
	}
	if err := next.Commit(last); err != nil {
		t.Fatalf("Commit of N+1: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if r, err := s.Recipient(ctx, "newco"); err != nil || r.Name != "New Co" {
		t.Errorf("Recipient(newco) = %+v, %v", r, err)
	}
	if w, err := s.Who(ctx, subj("A1")); err != nil || len(w.Recipients) != 1 || w.Recipients[0].Name != "New Co" {
		t.Errorf("Who(A1) = %+v, %v; want newco by name", w, err)
	}
}

// TestCommitNextForgetOfPredecessorsSubject: the forgetting in N+1 of a
// subject N made known reads the subject's records from a snapshot
// without them: it fails with ErrSpeculationFailed, and applied again it
// forgets the subject with N's disclosure.
func TestCommitNextForgetOfPredecessorsSubject(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, testConfig(t))
	applyBatch(t, s, recipientEvent(t, "acro", "ACRO"))
	p := subj("GONE-1")
	b := s.Begin()
	_, last := mustAppend(t, b, disc{id: "d1", recipient: "acro", subjects: []ledger.Subject{p}, at: day(1)}.event(t))
	next, done := commitNext(t, b, last)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	h, err := s.SubjectHashOf(ctx, p)
	if err != nil || h == "" {
		t.Fatalf("hash of the subject N made: %q, %v", h, err)
	}
	f := forgetEvent(t, h, "retention", "")
	if _, _, err := appendSeqs(next, f); !isSpeculation(err) {
		t.Fatalf("forgetting in the speculative batch: %v, want ErrSpeculationFailed", err)
	}
	next.Discard()
	if out := applyBatch(t, s, f); out[0] != ledger.Recorded {
		t.Fatalf("applied again: %v", out[0])
	}
	if h, err := s.SubjectHashOf(ctx, p); err != nil || h != "" {
		t.Errorf("after forgetting, the subject is still known: %q, %v", h, err)
	}
	if e, err := s.Entry(ctx, 2); err != nil || !e.Forgotten {
		t.Errorf("N's disclosure after forgetting: %+v, %v; want it forgotten", e, err)
	}
}

// speculativeAfterErasure returns a ledger where acro received A1's data
// and a batch opened by CommitNext after one that opened erasure E1 (so
// notice E1/acro), committed: the batch's snapshot lacks the notice.
func speculativeAfterErasure(t *testing.T) (*Store, *Batch) {
	t.Helper()
	s := openTest(t, testConfig(t))
	a := []ledger.Subject{subj("A1")}
	applyBatch(t, s, rcp(t, "acro", "manual", "", 0), disc{id: "d0", recipient: "acro", subjects: a, at: day(1)}.event(t))
	b := s.Begin()
	_, last := mustAppend(t, b, erasure(t, "e1", "E1", a[0], day(2)))
	next, done := commitNext(t, b, last)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	return s, next
}

// TestCommitNextRefusalIsSpeculative: an ack, in N+1, of a notice N
// opened finds no obligation in N+1's snapshot. A speculative batch does
// not refuse (the ingest loop republishes refusals before commit): it
// defers the refusal with ErrRefusalDeferred, keeping the disclosure
// appended before the ack. The ack's rules read the obligation N wrote, so
// the commit of what the batch holds is refused too, and applied again
// after N both are recorded.
func TestCommitNextRefusalIsSpeculative(t *testing.T) {
	s, next := speculativeAfterErasure(t)
	d1 := disc{id: "d1", recipient: "acro", subjects: []ledger.Subject{subj("B1")}, at: day(3)}.event(t)
	a1 := ack(t, "ack-1", ledger.NoticeID("E1", "acro"), "done", "acro")
	out, seq, err := appendSeqs(next, d1, a1)
	if !errors.Is(err, ErrRefusalDeferred) || !isSpeculation(err) || len(out) != 1 || out[0] != ledger.Recorded {
		next.Discard()
		t.Fatalf("disclosure and ack in the speculative batch: %v, %v; want the disclosure recorded, then ErrRefusalDeferred", out, err)
	}
	if err := next.Commit(seq - 1); !isSpeculation(err) {
		t.Fatalf("commit of the disclosure before the deferred refusal: %v, want ErrSpeculationFailed (the ack read what N wrote)", err)
	}
	if out := applyBatch(t, s, d1, a1); out[0] != ledger.Recorded || out[1] != ledger.Recorded {
		t.Fatalf("applied again: %v", out)
	}
	if st := mustStatus(t, s, "E1"); st.Obligations[0].State != ledger.StateAcknowledged {
		t.Errorf("obligation %+v, want acknowledged", st.Obligations[0])
	}
}

// TestCommitNextRefusalDeferred: a disclosure, in N+1, to a recipient
// nobody registered is refused on any snapshot. The speculative batch
// defers the refusal and commits the disclosure before it, which read
// nothing N wrote; the refused one, applied again on a new batch, is
// refused there.
func TestCommitNextRefusalDeferred(t *testing.T) {
	ctx := context.Background()
	s, next := speculativeAfterErasure(t)
	d1 := disc{id: "d1", recipient: "acro", subjects: []ledger.Subject{subj("B1")}, at: day(3)}.event(t)
	d2 := disc{id: "d2", recipient: "nobody", subjects: []ledger.Subject{subj("B2")}, at: day(3)}.event(t)
	_, seq, err := appendSeqs(next, d1, d2)
	if !errors.Is(err, ErrRefusalDeferred) {
		next.Discard()
		t.Fatalf("disclosure to nobody in the speculative batch: %v, want ErrRefusalDeferred", err)
	}
	if err := next.Commit(seq - 1); err != nil {
		t.Fatalf("commit of the disclosure before the deferred refusal: %v", err)
	}
	if got := s.Applied(); got != seq-1 {
		t.Errorf("applied %d, want %d: the refused event is not applied yet", got, seq-1)
	}
	if e, err := s.Entry(ctx, s.Count()); err != nil || e.Event.ID != "d1" {
		t.Fatalf("last entry %+v, %v; want d1", e, err)
	}
	if out := applyBatch(t, s, d2); out[0] != ledger.Rejected {
		t.Fatalf("applied again: %v, want rejected", out[0])
	}
}

// TestCommitNextNothingAfterDeferredRefusal: a batch that deferred a
// refusal takes no more events (the refused one must be applied first), and
// what it held is then not committed.
func TestCommitNextNothingAfterDeferredRefusal(t *testing.T) {
	s, next := speculativeAfterErasure(t)
	d1 := disc{id: "d1", recipient: "acro", subjects: []ledger.Subject{subj("B1")}, at: day(3)}.event(t)
	_, seq, err := appendSeqs(next, d1, ack(t, "ack-1", ledger.NoticeID("E1", "acro"), "done", "acro"))
	if !errors.Is(err, ErrRefusalDeferred) {
		next.Discard()
		t.Fatalf("ack in the speculative batch: %v, want ErrRefusalDeferred", err)
	}
	d2 := disc{id: "d2", recipient: "acro", subjects: []ledger.Subject{subj("B2")}, at: day(3)}.event(t)
	if _, err := next.Append(seq+1, d2); err == nil || isSpeculation(err) {
		t.Errorf("append after a deferred refusal: %v, want a fatal error", err)
	}
	if err := next.Commit(seq + 1); err == nil {
		t.Error("commit after a refused append succeeded")
	}
	next.Discard()
	if got := s.Count(); got != 3 {
		t.Errorf("%d entries, want 3: the failed batch recorded nothing", got)
	}
}

// TestCommitNextFailureDiscardsNext: when N's commit fails, N+1, opened
// before it, fails too and records nothing, whatever it appended: here N
// is itself speculative and re-records an event of N-1.
func TestCommitNextFailureDiscardsNext(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, testConfig(t))
	applyBatch(t, s, recipientEvent(t, "acro", "ACRO"))
	ev := func(id string, d int) *ledger.Event {
		return disc{id: id, recipient: "acro", subjects: []ledger.Subject{subj(id)}, at: day(d)}.event(t)
	}
	a := s.Begin()
	_, last := mustAppend(t, a, ev("x", 1))
	applied, count := last, s.Count()+1
	b, doneA := commitNext(t, a, last)
	_, last = mustAppend(t, b, ev("x", 1), ev("y", 2)) // x again: N-1 wrote its dedupe record
	c, doneB := commitNext(t, b, last)
	// b's commit fails at once: c's Append may see it already.
	if _, _, err := appendSeqs(c, ev("z", 3)); err != nil && !isSpeculation(err) {
		t.Fatal(err)
	}
	if err := c.Commit(last + 1); !isSpeculation(err) {
		t.Fatalf("Commit of the batch after the failed one = %v, want ErrSpeculationFailed", err)
	}
	if err := <-doneA; err != nil {
		t.Fatal(err)
	}
	if err := <-doneB; !isSpeculation(err) {
		t.Fatalf("the failed batch: %v", err)
	}
	if s.Applied() != applied || s.Count() != count {
		t.Fatalf("applied %d, count %d; want %d, %d: a failed batch or the one after it was recorded", s.Applied(), s.Count(), applied, count)
	}
	for _, id := range []string{"y", "z"} {
		if _, err := s.Lookup(ctx, "cms", id); ledger.ErrorCode(err) != ledger.ENOTFOUND {
			t.Errorf("Lookup(%s) = %v, want not found", id, err)
		}
	}
	if out := applyBatch(t, s, ev("x", 1), ev("y", 2), ev("z", 3)); !slices.Equal(out, []ledger.Outcome{ledger.Duplicate, ledger.Recorded, ledger.Recorded}) {
		t.Errorf("applied again: %v", out)
	}
}

// TestCommitNextOnClosedLedger: a commit that fails for a reason of its
// own (the ledger closed under it) fails the batch opened after it with
// that error, not ErrSpeculationFailed, and nothing is published.
func TestCommitNextOnClosedLedger(t *testing.T) {
	s := openTest(t, testConfig(t))
	applyBatch(t, s, recipientEvent(t, "acro", "ACRO"))
	applied := s.Applied()
	b := s.Begin()
	_, last := mustAppend(t, b, disc{id: "d1", recipient: "acro", subjects: []ledger.Subject{subj("A1")}, at: day(1)}.event(t))
	if err := s.db.Close(); err != nil {
		t.Fatal(err)
	}
	next, err := b.CommitNext(last, nil)
	if err != nil {
		t.Fatalf("CommitNext: %v", err)
	}
	err = next.Commit(last)
	if err == nil || isSpeculation(err) {
		t.Fatalf("Commit after a failed commit = %v, want that failure", err)
	}
	if s.Applied() != applied {
		t.Errorf("applied %d, want %d", s.Applied(), applied)
	}
}

// TestSideWritesBesideBatches: with conflict detection on, the writes made
// beside the one writer (checkpoints, scrub and shred records), which read
// nothing, commit beside a batch and a speculative batch, and neither
// batch's commit is refused for them.
func TestSideWritesBesideBatches(t *testing.T) {
	s := openTest(t, testConfig(t))
	applyBatch(t, s, recipientEvent(t, "acro", "ACRO"))
	side := func(n uint64) {
		t.Helper()
		if err := s.SaveCheckpoint(int64(n), []byte("signed")); err != nil {
			t.Fatal(err)
		}
		if err := s.ScrubDone(n); err != nil {
			t.Fatal(err)
		}
		if err := s.ShredDone(n); err != nil {
			t.Fatal(err)
		}
	}
	b := s.Begin()
	_, last := mustAppend(t, b, disc{id: "d1", recipient: "acro", subjects: []ledger.Subject{subj("A1")}, at: day(1)}.event(t))
	side(1)
	next, done := commitNext(t, b, last)
	side(2)
	_, last = mustAppend(t, next, disc{id: "d2", recipient: "acro", subjects: []ledger.Subject{subj("A1")}, at: day(2)}.event(t))
	side(3)
	if err := next.Commit(last); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	sizes, _, err := s.CheckpointSizes(context.Background(), 0, 10)
	if err != nil || !slices.Equal(sizes, []int64{1, 2, 3}) {
		t.Errorf("checkpoints %v, %v", sizes, err)
	}
}

// TestCompactStopsThePipeline: while Compact waits for the writer,
// CommitNext commits at once and lets go of it.
func TestCompactStopsThePipeline(t *testing.T) {
	s := openTest(t, testConfig(t))
	applyBatch(t, s, recipientEvent(t, "acro", "ACRO"))
	b := s.Begin()
	_, last := mustAppend(t, b, disc{id: "d1", recipient: "acro", subjects: []ledger.Subject{subj("A1")}, at: day(1)}.event(t))
	compacted := make(chan error, 1)
	go func() { _, err := s.Compact(context.Background()); compacted <- err }()
	for s.writerWanted.Load() == 0 {
		runtime.Gosched()
	}
	next, err := b.CommitNext(last, nil)
	if err != nil || next != nil {
		t.Fatalf("CommitNext while Compact waits = %v, %v; want no next batch", next, err)
	}
	if err := <-compacted; err != nil {
		t.Fatal(err)
	}
	if s.Applied() != last {
		t.Errorf("applied %d, want %d", s.Applied(), last)
	}
}

// pipelinedLedger drives the store as ledgertest.Ledger with every event
// in a batch opened by its predecessor's CommitNext, before that commit:
// each event is read against a snapshot without the event before it. It
// waits for each commit before returning the outcome, and applies an event
// again, on a batch begun after the last commit, when its batch fails with
// ErrSpeculationFailed.
type pipelinedLedger struct {
	badgerLedger
	next      *Batch
	reapplied int
}

func (l *pipelinedLedger) Append(ev *ledger.Event, at time.Time) (ledger.Outcome, error) {
	for {
		b := l.next
		l.next = nil
		if b == nil {
			b = l.s.Begin()
		}
		seq := b.Applied() + 1
		o, err := b.AppendAt(seq, ev, at)
		if isSpeculation(err) {
			b.Discard()
			l.reapplied++
			continue
		}
		if o == 0 {
			b.Discard()
			return o, err
		}
		done := make(chan error, 1)
		next, cerr := b.CommitNext(seq, func(err error) { done <- err })
		if cerr != nil {
			l.t.Fatalf("CommitNext(%d): %v", seq, cerr)
		}
		if cerr := <-done; isSpeculation(cerr) {
			next.Discard()
			l.reapplied++
			continue
		} else if cerr != nil {
			l.t.Fatalf("commit %d: %v", seq, cerr)
		}
		l.next = next
		return o, err
	}
}

// TestConformancePipelined runs every scenario of the rules with each
// event in a speculative batch (pipelinedLedger): the outcomes and records
// are those of batches applied one after the other.
func TestConformancePipelined(t *testing.T) {
	for _, sc := range ledgertest.Scenarios() {
		t.Run(sc.Name, func(t *testing.T) {
			t.Parallel()
			cfg := testConfig(t)
			cfg.Deadlines = sc.Deadlines
			l := &pipelinedLedger{badgerLedger: badgerLedger{t: t, s: openTest(t, cfg)}}
			t.Cleanup(func() {
				if l.next != nil {
					l.next.Discard()
				}
			})
			ledgertest.Run(t, l, l.hash, sc)
			t.Logf("%d events applied again", l.reapplied)
		})
	}
}

// pipeDriver applies batches of events as the ingest loop does: each
// batch's commit pipelined with the appending of the next (CommitNext), and
// after ErrSpeculationFailed the batch in flight and the current one
// applied again, the first committed at once so that the second goes to a
// batch begun after it. Event i is at stream sequence base+i+1.
type pipeDriver struct {
	t         testing.TB
	s         *Store
	base      uint64
	event     func(i int) *ledger.Event
	at        func(i int) time.Time
	out       []ledger.Outcome
	next      *Batch
	flight    []int
	reapplied int
}

func (d *pipeDriver) apply(idx []int, more bool) {
	d.t.Helper()
	err := d.try(idx, more)
	if isSpeculation(err) {
		d.reapplied++
		flight := d.flight
		d.stop()
		if err := d.try(flight, false); err != nil {
			d.t.Fatal(err)
		}
		err = d.try(idx, more)
	}
	if err != nil {
		d.t.Fatal(err)
	}
}

func (d *pipeDriver) try(idx []int, more bool) error {
	b := d.next
	d.next = nil
	if b == nil {
		b = d.s.Begin()
	}
	defer b.Discard()
	last := b.Applied()
	for _, i := range idx {
		seq := d.base + uint64(i) + 1
		if seq <= b.Applied() {
			continue
		}
		o, err := b.AppendAt(seq, d.event(i), d.at(i))
		if o == 0 {
			return err
		}
		d.out[i], last = o, seq
	}
	switch {
	case last == b.Applied():
		if err := b.Settle(); err != nil {
			return err
		}
	case !more:
		if err := b.Commit(last); err != nil {
			return err
		}
	default:
		next, err := b.CommitNext(last, nil)
		if err != nil {
			return err
		}
		d.next, d.flight = next, idx
		return nil
	}
	d.flight = nil
	return nil
}

// stop discards the open batch, after the commit in flight.
func (d *pipeDriver) stop() {
	if d.next != nil {
		d.next.Discard()
		d.next = nil
	}
}

// TestPipelinedLedgerVerifies: fullLedger's events, each in a batch
// opened before its predecessor's commit, give the outcomes they have
// applied one after the other, and a ledger that verifies: every derived
// record as the entries give it.
func TestPipelinedLedgerVerifies(t *testing.T) {
	cfg, v := fullLedgerWith(t, true)
	res, err := verifyState(t, cfg, v)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if res.Unchecked != 0 || res.Records < 100 {
		t.Errorf("Verify = %d records, %d unchecked", res.Records, res.Unchecked)
	}
}

// TestPipelinedDuplicatesVerify: batches of disclosures, each starting with
// deliveries again of events of the batch before (read by a batch whose
// snapshot lacks them), pipelined with real overlap of appending and
// committing: each event is recorded once, the others are duplicates,
// and the ledger verifies.
func TestPipelinedDuplicatesVerify(t *testing.T) {
	cfg := testConfig(t)
	s, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	registerBenchRecipients(t, s)
	w := newWorkload(7)
	start := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	const batches, size, again = 12, 300, 3
	var evs []*ledger.Event
	var idx [][]int
	var want []ledger.Outcome
	for k := range batches {
		var b []int
		if k > 0 {
			for _, j := range idx[k-1][again : 2*again] {
				b = append(b, len(evs))
				evs = append(evs, evs[j])
				want = append(want, ledger.Duplicate)
			}
		}
		for range size {
			b = append(b, len(evs))
			evs = append(evs, w.disclosure(t, start.Add(time.Duration(w.n)*time.Second)))
			want = append(want, ledger.Recorded)
		}
		idx = append(idx, b)
	}
	d := &pipeDriver{t: t, s: s, base: s.Applied(), out: make([]ledger.Outcome, len(evs)),
		event: func(i int) *ledger.Event { return evs[i] }, at: func(int) time.Time { return start }}
	count := s.Count()
	for k, b := range idx {
		d.apply(b, k < len(idx)-1)
	}
	if !slices.Equal(d.out, want) {
		t.Errorf("outcomes differ from those of batches applied one after the other")
	}
	if got := s.Count() - count; got != batches*size {
		t.Errorf("%d entries recorded, want %d", got, batches*size)
	}
	if d.reapplied == 0 {
		t.Error("no batch was applied again")
	}
	t.Logf("%d batches applied again", d.reapplied)
	v := signCheckpoint(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	res, err := verifyState(t, cfg, v)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if res.Size != int64(benchRecipients+batches*size) {
		t.Errorf("Verify: size %d", res.Size)
	}
}

// TestCommitNextForgottenKeyLeavesTheCache: N forgets a subject; N+1,
// begun before N's commit, names the subject again and reads its salt from
// its snapshot, so it seals under the forgotten key and puts the key in the
// store's cache of keys to seal with. N+1's commit fails (N deleted the
// salt it read), and the key leaves the cache with it: a forgotten key does
// not outlive its salt in memory.
func TestCommitNextForgottenKeyLeavesTheCache(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, testConfig(t))
	x := subj("GONE-2")
	ev := func(id string, d int) *ledger.Event {
		return disc{id: id, recipient: "acro", subjects: []ledger.Subject{x}, at: day(d)}.event(t)
	}
	applyBatch(t, s, recipientEvent(t, "acro", "ACRO"), ev("d1", 1))
	hx, err := s.SubjectHashOf(ctx, x)
	if err != nil || hx == "" {
		t.Fatalf("hash of the subject: %q, %v", hx, err)
	}
	h, err := hex.DecodeString(hx)
	if err != nil {
		t.Fatal(err)
	}
	n := s.Begin()
	_, last := mustAppend(t, n, forgetEvent(t, hx, "retention", ""))
	next, done := commitNext(t, n, last)
	if _, _, err := appendSeqs(next, ev("d2", 2)); err != nil {
		t.Fatalf("the disclosure in the speculative batch: %v", err)
	}
	if s.sealers.get(h) == nil {
		t.Fatal("the speculative batch did not seal under the subject's key from its snapshot: the case is not shown")
	}
	if err := next.Commit(last + 1); !isSpeculation(err) {
		t.Fatalf("Commit of the speculative batch = %v, want ErrSpeculationFailed", err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if s.sealers.get(h) != nil {
		t.Error("the forgotten subject's key is still in the cache after the batch that put it failed")
	}
}

// TestCommitRegistryBeforeDone: when a batch's done callback runs (the
// ingest loop's hook that wakes the notice dispatcher), the recipients the
// batch registered are in the registry: a notice of a request in the same
// batch to a recipient registered in it finds the recipient. Committed at
// once and pipelined alike.
func TestCommitRegistryBeforeDone(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, testConfig(t))
	a := []ledger.Subject{subj("A1")}
	lookup := func(id string, got *error) func(error) {
		return func(err error) {
			if err != nil {
				*got = err
				return
			}
			_, *got = s.Recipient(ctx, id)
		}
	}
	b := s.Begin()
	_, last := mustAppend(t, b, rcp(t, "acro", "nats", "", 0), disc{id: "d0", recipient: "acro", subjects: a, at: day(1)}.event(t),
		erasure(t, "e1", "E1", a[0], day(2)))
	var once error
	if err := b.CommitThen(last, lookup("acro", &once)); err != nil {
		t.Fatal(err)
	}
	if once != nil {
		t.Errorf("committed at once: the registry in the done callback: %v", once)
	}
	b = s.Begin()
	_, last = mustAppend(t, b, rcp(t, "police", "nats", "", 0))
	var piped error
	done := make(chan struct{})
	next, err := b.CommitNext(last, func(err error) { lookup("police", &piped)(err); close(done) })
	if err != nil {
		t.Fatal(err)
	}
	<-done
	if next != nil {
		next.Discard()
	}
	if piped != nil {
		t.Errorf("pipelined: the registry in the done callback: %v", piped)
	}
}
