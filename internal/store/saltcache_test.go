package store

import (
	"context"
	"testing"

	"github.com/sharelog/sharelog/internal/ledger"
)

// TestSaltCacheForget: the writer's cache of salts never gives a forgotten
// subject's salt, whether the subject is named again in the next batch or
// later in the batch that forgets it, nor the salt a discarded batch made;
// and a discarded forgetting leaves the committed salt in use.
func TestSaltCacheForget(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, testConfig(t))
	applyBatch(t, s, recipientEvent(t, "web", "Web"))
	a1 := []ledger.Subject{subj("A1")}
	named := func(id string, n int) *ledger.Event {
		return disc{id: id, recipient: "web", subjects: a1, at: day(n)}.event(t)
	}
	// check says that disclosure id is readable with A1's stored salt, that
	// Who finds want disclosures of A1, and returns A1's keyed hash.
	check := func(when, id string, want int) string {
		t.Helper()
		rec, err := s.Disclosure(ctx, id, "cms")
		if err != nil || rec.Forgotten || len(rec.Disclosure.Subjects) != 1 || rec.Disclosure.Subjects[0] != a1[0] {
			t.Fatalf("%s: %s = %+v, %v; want it opened, naming A1", when, id, rec, err)
		}
		if who, err := s.Who(ctx, a1[0]); err != nil || who.Disclosures != want {
			t.Fatalf("%s: Who(A1) = %+v, %v; want %d disclosures", when, who, err, want)
		}
		h, err := s.SubjectHashOf(ctx, a1[0])
		if err != nil || h == "" {
			t.Fatalf("%s: SubjectHashOf(A1) = %q, %v", when, h, err)
		}
		return h
	}
	forget := func(h, suffix string) *ledger.Event {
		ev := forgetEvent(t, h, ledger.ForgetRetention, "")
		ev.ID += suffix
		return ev
	}

	applyBatch(t, s, named("d1", 1))
	applyBatch(t, s, named("d2", 2)) // the salt from the cache
	h1 := check("named twice", "d2", 2)

	// A forgetting discarded: the committed salt stays in use.
	b := s.Begin()
	if out, err := b.Append(s.Applied()+1, forget(h1, "-discarded")); out != ledger.Recorded || err != nil {
		t.Fatalf("forget: %v %v", out, err)
	}
	b.Discard()
	applyBatch(t, s, named("d3", 3))
	if h := check("after a discarded forgetting", "d3", 3); h != h1 {
		t.Fatalf("A1's hash changed from %s to %s without a forgetting", h1, h)
	}

	// Forgotten, then named in the next batch: a new salt.
	applyBatch(t, s, forget(h1, ""))
	applyBatch(t, s, named("d4", 4))
	h2 := check("named in the batch after its forgetting", "d4", 1)
	if h2 == h1 {
		t.Fatal("A1 named after its forgetting kept its old hash")
	}

	// Forgotten and named again in one batch, then named in the next.
	applyBatch(t, s, forget(h2, "-2"), named("d5", 5))
	h3 := check("named in the batch of its forgetting", "d5", 1)
	applyBatch(t, s, named("d6", 6))
	if h := check("named in the batch after", "d6", 2); h3 == h2 || h != h3 {
		t.Fatalf("hashes %s, then %s and %s; want a new one, then the same", h2, h3, h)
	}

	// B2 first named in a discarded batch, then in a committed one.
	b2 := disc{id: "b1", recipient: "web", subjects: []ledger.Subject{subj("B2")}, at: day(7)}.event(t)
	b = s.Begin()
	if out, err := b.Append(s.Applied()+1, b2); out != ledger.Recorded || err != nil {
		t.Fatalf("append: %v %v", out, err)
	}
	b.Discard()
	applyBatch(t, s, b2)
	if rec, err := s.Disclosure(ctx, "b1", "cms"); err != nil || rec.Forgotten || rec.Disclosure.Subjects[0] != subj("B2") {
		t.Fatalf("b1 = %+v, %v; want it opened, naming B2", rec, err)
	}
}
