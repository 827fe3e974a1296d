package store

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/dgraph-io/badger/v4"

	"github.com/sharelog/sharelog/internal/ledger"
)

// TestReplayConflict: the same (source, id) sent again is a duplicate when
// its content is the same (in any JSON form) and a conflict when it
// differs, in a later batch or the same one; once the subject is forgotten
// the ledger cannot tell, and takes the replay as a duplicate. CheckReplay
// agrees.
func TestReplayConflict(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, testConfig(t))
	first := disc{id: "d1", recipient: "web", subjects: []ledger.Subject{subj("P1")}, at: day(1)}
	changed := first
	changed.categories = []string{"user.contact.address"}
	applyBatch(t, s, rcp(t, "web", "nats", "", 0), first.event(t))

	same := first.event(t)
	same.Raw = []byte(" " + string(same.Raw) + "\n") // another JSON form of the same content
	isConflict := func(err error) bool {
		var ie *ledger.InvalidError
		return errors.As(err, &ie) && ie.Reason() == ledger.ReasonConflict
	}
	if err := s.CheckReplay(ctx, same); err != nil {
		t.Errorf("CheckReplay(same) = %v", err)
	}
	if err := s.CheckReplay(ctx, changed.event(t)); !isConflict(err) {
		t.Errorf("CheckReplay(changed) = %v, want a conflict", err)
	}
	if out := applyBatch(t, s, same, changed.event(t)); !slices.Equal(out, []ledger.Outcome{ledger.Duplicate, ledger.Rejected}) {
		t.Errorf("replays = %v, want duplicate, rejected", out)
	}
	// Within one batch.
	second := disc{id: "d2", recipient: "web", subjects: []ledger.Subject{subj("P1"), subj("P2")}, at: day(2)}
	secondChanged := second
	secondChanged.categories = []string{"user.contact.address"}
	if out := applyBatch(t, s, second.event(t), second.event(t), secondChanged.event(t)); !slices.Equal(out, []ledger.Outcome{ledger.Recorded, ledger.Duplicate, ledger.Rejected}) {
		t.Errorf("one batch = %v, want recorded, duplicate, rejected", out)
	}
	if s.Count() != 3 {
		t.Errorf("count = %d, want 3", s.Count())
	}

	// The ledger cannot tell once the subject is forgotten (the entry's
	// personal part no longer opens): a replay is a duplicate.
	h, _ := s.SubjectHashOf(ctx, subj("P2"))
	fg := newEvent(t, ledger.TypeSubjectForgotten, "sharelog/retention", "forget-"+h, &ledger.SubjectForgotten{SubjectHash: h, Reason: ledger.ForgetRetention, At: day(25)})
	fg.Internal = true
	if out := applyBatch(t, s, fg); out[0] != ledger.Recorded {
		t.Fatalf("forget = %v", out)
	}
	if err := s.CheckReplay(ctx, secondChanged.event(t)); err != nil {
		t.Errorf("CheckReplay after forgetting = %v, want nil (cannot tell)", err)
	}
}

// TestForgetFindsEveryCopy: forgetting a subject names in its scrub the
// SHARELOG_IN sequences of its entries, of every later delivery of them
// (duplicates and conflicts), and of the refused messages naming it, with
// their SHARELOG_REJECTED sequences; another subject's refusals stay.
func TestForgetFindsEveryCopy(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, testConfig(t))
	d := disc{id: "d1", recipient: "web", subjects: []ledger.Subject{subj("GONE")}, at: day(1)}
	changed := d
	changed.categories = []string{"user.contact.address"}
	applyBatch(t, s, rcp(t, "web", "nats", "", 0), d.event(t)) // stream 1, 2
	applyBatch(t, s, d.event(t), changed.event(t))             // stream 3, 4
	b := s.Begin()
	if err := b.Refused([]ledger.Subject{subj("GONE"), subj("OTHER")}, 5, 71); err != nil {
		t.Fatal(err)
	}
	if err := b.Refused([]ledger.Subject{subj("OTHER")}, 6, 72); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(6); err != nil {
		t.Fatal(err)
	}
	h, _ := s.SubjectHashOf(ctx, subj("GONE"))
	fg := newEvent(t, ledger.TypeSubjectForgotten, "sharelog/retention", "forget-"+h, &ledger.SubjectForgotten{SubjectHash: h, Reason: ledger.ForgetRetention, At: day(25)})
	fg.Internal = true
	if out := applyBatch(t, s, fg); out[0] != ledger.Recorded {
		t.Fatalf("forget = %v", out)
	}
	scrubs, err := s.PendingScrubs(ctx)
	if err != nil || len(scrubs) != 1 {
		t.Fatalf("scrubs = %+v, %v", scrubs, err)
	}
	got := slices.Sorted(slices.Values(scrubs[0].StreamSeqs))
	if !slices.Equal(got, []uint64{2, 3, 4, 5}) || !slices.Equal(scrubs[0].Rejected, []uint64{71}) {
		t.Errorf("scrub = %+v, want SHARELOG_IN 2, 3, 4, 5 and SHARELOG_REJECTED 71", scrubs[0])
	}
	var left int
	s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixRefused}})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			left++
		}
		return nil
	})
	if left != 2 {
		t.Errorf("%d refusal records left, want OTHER's 2", left)
	}
}
