package store

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"testing"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/sharelog/sharelog/internal/ledger"
)

// TestRootAt: the root at each earlier size is the root TreeHead gave when
// the tree had that size, and sizes outside the tree are refused.
func TestRootAt(t *testing.T) {
	s := openTest(t, testConfig(t))
	ctx := context.Background()
	roots := map[int64]tlog.Hash{}
	if _, roots[0], _ = s.TreeHead(ctx); roots[0] != tlog.Hash(sha256.Sum256(nil)) {
		t.Fatalf("empty tree root = %v, want SHA-256 of nothing (RFC 9162)", roots[0])
	}
	for i := range 7 {
		applyBatch(t, s, recipientEvent(t, fmt.Sprintf("r%d", i), "R"))
		size, root, err := s.TreeHead(ctx)
		if err != nil {
			t.Fatal(err)
		}
		roots[size] = root
	}
	for size, want := range roots {
		if got, err := s.RootAt(ctx, size); err != nil || got != want {
			t.Errorf("RootAt(%d) = %v, %v; want %v", size, got, err, want)
		}
	}
	if roots[3] == roots[4] {
		t.Fatal("roots of different sizes equal")
	}
	for _, bad := range []int64{-1, 8} {
		if _, err := s.RootAt(ctx, bad); ledger.ErrorCode(err) != ledger.EINVALID {
			t.Errorf("RootAt(%d) = %v, want EINVALID", bad, err)
		}
	}
}

// TestTreeEdge: the tree's right edge, which the writer keeps in memory,
// stays the tree's through batches of every size, discarded batches, a
// batch that outgrew its transaction and was applied again in smaller ones,
// and a reopen: CheckTree recomputes every stored hash from the entries.
func TestTreeEdge(t *testing.T) {
	cfg := testConfig(t)
	s := openTest(t, cfg)
	ctx := context.Background()
	n := 0
	events := func(k int, reason string) []*ledger.Event {
		evs := make([]*ledger.Event, k)
		for i := range evs {
			n++
			id := fmt.Sprint("h", n)
			evs[i] = newEvent(t, ledger.TypeHold, "dpo", id, &ledger.Hold{Hold: id, Reason: reason})
		}
		return evs
	}
	check := func(when string, want uint64) {
		t.Helper()
		if err := s.CheckTree(ctx); err != nil {
			t.Fatalf("%s: %v", when, err)
		}
		if size, _, err := s.TreeHead(ctx); err != nil || size != int64(want) {
			t.Fatalf("%s: TreeHead size %d, %v; want %d", when, size, err, want)
		}
	}
	// discard appends evs in a batch and discards it.
	discard := func(evs []*ledger.Event) {
		b, _ := appendOpen(t, s, evs)
		b.Discard()
	}

	for _, k := range []int{1, 2, 3, 5, 8, 13} { // sizes 1 to 32
		applyBatch(t, s, events(k, "r")...)
	}
	check("batches of growing size", 32)

	discard(events(7, "discarded"))
	applyBatch(t, s) // a commit without entries
	applyBatch(t, s, events(3, "after a discard")...)
	check("after a discarded batch", 35)

	// A batch that outgrows its transaction (as in TestBatchTooBig: about
	// 10,500 holds), applied again in batches of 50.
	big := events(20_000, "litigation")
	b := s.Begin()
	seq := s.Applied()
	var err error
	for i := 0; i < len(big) && err == nil; i++ {
		seq++
		_, err = b.Append(seq, big[i])
	}
	b.Discard()
	if !errors.Is(err, ErrBatchTooBig) {
		t.Fatalf("error = %v, want ErrBatchTooBig", err)
	}
	for i := 0; i < 150; i += 50 {
		applyBatch(t, s, big[i:i+50]...)
	}
	check("after ErrBatchTooBig and smaller batches", 185)

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, cfg)
	discard(events(2, "discarded after reopen"))
	applyBatch(t, s, events(4, "after reopen")...)
	check("after a reopen", 189)
}
