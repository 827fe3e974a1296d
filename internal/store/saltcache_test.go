package store

import (
	"bytes"
	"context"
	"testing"

	"github.com/sharelog/sharelog/internal/ledger"
)

// TestSaltCacheForgetting: the writer's salt cache answers for subjects
// committed batches read or made, and never for a forgotten subject: a
// disclosure after the forgetting makes a new salt, and the subject is
// found again under its new keyed hash only.
func TestSaltCacheForgetting(t *testing.T) {
	ctx := context.Background()
	s := propFixture(t)
	loc := string(newSubjectHasher(s.secret).hash(subj("A1")))
	old := saltOf(t, s, subj("A1"))
	if cached, ok := s.salts.Get(loc); !ok || !bytes.Equal(cached, old) {
		t.Fatalf("cached salt of A1 = %x, %v; want the stored %x", cached, ok, old)
	}

	applyBatch(t, s, erasure(t, "e1", "er-1", subj("A1"), day(10)))
	closeAll(t, s, "er-1")
	h, err := s.SubjectHashOf(ctx, subj("A1"))
	if err != nil || h == "" {
		t.Fatalf("SubjectHashOf(A1) = %q, %v", h, err)
	}
	if out, err := applyOne(t, s, forgetEvent(t, h, ledger.ForgetErasureClosed, "er-1")); out != ledger.Recorded {
		t.Fatalf("forget = %v, %v", out, err)
	}
	if _, ok := s.salts.Get(loc); ok {
		t.Fatal("the forgotten subject's salt is still cached")
	}

	applyBatch(t, s, disc{id: "d9", recipient: "web", subjects: []ledger.Subject{subj("A1")}, at: day(21)}.event(t))
	fresh := saltOf(t, s, subj("A1"))
	if bytes.Equal(fresh, old) {
		t.Fatal("A1 disclosed after forgetting kept its old salt")
	}
	if cached, ok := s.salts.Get(loc); !ok || !bytes.Equal(cached, fresh) {
		t.Errorf("cached salt of A1 = %x, %v; want the new stored %x", cached, ok, fresh)
	}
	who, err := s.Who(ctx, subj("A1"))
	if err != nil || who.Disclosures != 1 {
		t.Errorf("Who(A1) after the new disclosure = %+v, %v; want the one disclosure", who, err)
	}
	h2, err := s.SubjectHashOf(ctx, subj("A1"))
	if err != nil || h2 == "" || h2 == h {
		t.Errorf("SubjectHashOf(A1) after = %q, %v; want a new hash, not %q", h2, err, h)
	}
}
