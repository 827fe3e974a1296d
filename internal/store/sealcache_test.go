package store

import (
	"bytes"
	"context"
	"encoding/hex"
	"testing"

	"github.com/dgraph-io/badger/v4"

	"github.com/sharelog/sharelog/internal/ledger"
)

// TestSealerCache: entries sealed under a subject's key kept by the
// writer's cache open with the key derived from the keystore, each with a
// nonce of its own, whether the key was cached in an earlier batch or
// earlier in the same one; a forgetting takes the key out of the cache at
// once, even when its batch is then discarded, and the subject named again
// after its forgetting is sealed under its new key.
func TestSealerCache(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, testConfig(t))
	applyBatch(t, s, recipientEvent(t, "web", "Web"))
	a1 := []ledger.Subject{subj("A1")}
	named := func(id string, n int) *ledger.Event {
		return disc{id: id, recipient: "web", subjects: a1, at: day(n)}.event(t)
	}
	hash := func() []byte {
		t.Helper()
		h, err := s.SubjectHashOf(ctx, a1[0])
		if err != nil || h == "" {
			t.Fatalf("SubjectHashOf(A1) = %q, %v", h, err)
		}
		b, err := hex.DecodeString(h)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	// opened says that the disclosures ids open with A1's key from the
	// keystore (Disclosure does not use the writer's cache), and that their
	// sealed parts have pairwise different nonces.
	nonces := map[string]string{}
	opened := func(when string, ids ...string) {
		t.Helper()
		for _, id := range ids {
			rec, err := s.Disclosure(ctx, id, "cms")
			if err != nil || rec.Forgotten || len(rec.Disclosure.Subjects) != 1 || rec.Disclosure.Subjects[0] != a1[0] {
				t.Fatalf("%s: %s = %+v, %v; want it opened, naming A1", when, id, rec, err)
			}
			err = s.db.View(func(txn *badger.Txn) error {
				item, err := txn.Get(entryKey(rec.Seq))
				if err != nil {
					return err
				}
				v, err := entryValue(item)
				if err != nil {
					return err
				}
				h, ct, err := decodeEntryHeader(v)
				if err != nil || !h.sealed || len(ct) < nonceLen {
					t.Fatalf("%s: entry %d: sealed %v, %d bytes sealed, %v", when, rec.Seq, h.sealed, len(ct), err)
				}
				n := string(ct[:nonceLen])
				if other, ok := nonces[n]; ok {
					t.Fatalf("%s: %s has the nonce of %s", when, id, other)
				}
				nonces[n] = id
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	cached := func(when string, h []byte, want bool) {
		t.Helper()
		s.writer.Lock()
		defer s.writer.Unlock()
		if got := s.sealers.get(h) != nil; got != want {
			t.Fatalf("%s: A1's key in the cache: %v, want %v", when, got, want)
		}
	}

	applyBatch(t, s, named("d1", 1))
	h1 := hash()
	cached("named once", h1, true)
	applyBatch(t, s, named("d2", 2), named("d3", 3)) // from the cache
	opened("named in two batches", "d1", "d2", "d3")

	// A forgetting discarded: the key leaves the cache, and comes back.
	b := s.Begin()
	if out, err := b.Append(s.Applied()+1, forgetEvent(t, hex.EncodeToString(h1), ledger.ForgetRetention, "")); out != ledger.Recorded || err != nil {
		b.Discard()
		t.Fatalf("forget: %v %v", out, err)
	}
	b.Discard()
	cached("after a discarded forgetting", h1, false)
	applyBatch(t, s, named("d4", 4))
	cached("named after a discarded forgetting", h1, true)
	opened("named after a discarded forgetting", "d4")

	// Forgotten and named again in one batch: a new key, and the old one
	// gone from the cache.
	fg := forgetEvent(t, hex.EncodeToString(h1), ledger.ForgetRetention, "")
	fg.ID += "-committed"
	applyBatch(t, s, fg, named("d5", 5))
	h2 := hash()
	if bytes.Equal(h1, h2) {
		t.Fatal("A1 named after its forgetting kept its old hash")
	}
	cached("forgotten", h1, false)
	cached("named again", h2, true)
	opened("named in the batch of its forgetting", "d5")
	if rec, err := s.Disclosure(ctx, "d1", "cms"); err != nil || !rec.Forgotten {
		t.Fatalf("d1 after the forgetting = %+v, %v; want it forgotten", rec, err)
	}
}
