package witness

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/sharelog/sharelog/internal/checkpoint"
)

// memTree is a Merkle tree in memory: the Tree of the table test below,
// whose sizes the test sets at will. (The tests with stores cannot grow two
// ledgers identically: see witness_test.go.)
type memTree struct {
	hashes []tlog.Hash
	size   int64
	latest []byte
}

func (m *memTree) ReadHashes(idx []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(idx))
	for i, x := range idx {
		out[i] = m.hashes[x]
	}
	return out, nil
}

// add appends a leaf.
func (m *memTree) add(leaf string) {
	hs, err := tlog.StoredHashes(m.size, []byte(leaf), m)
	if err != nil {
		panic(err)
	}
	m.hashes = append(m.hashes, hs...)
	m.size++
}

func (m *memTree) Count() uint64 { return uint64(m.size) }
func (m *memTree) RootAt(_ context.Context, size int64) (tlog.Hash, error) {
	if size > m.size {
		return tlog.Hash{}, fmt.Errorf("size %d > %d", size, m.size)
	}
	return tlog.TreeHash(size, m)
}
func (m *memTree) LatestCheckpoint(context.Context) ([]byte, error) { return m.latest, nil }

// treeOf returns a tree of the leaves named prefix0 to prefix<n-1>.
func treeOf(prefix string, n int) *memTree {
	m := &memTree{}
	for i := range n {
		m.add(fmt.Sprintf("%s%d", prefix, i))
	}
	return m
}

// signer returns a new checkpoint key.
func signer(t testing.TB, name string) (note.Signer, string) {
	t.Helper()
	s, vkey, _, err := checkpoint.LoadOrCreateKey(filepath.Join(t.TempDir(), "k"), "", name)
	if err != nil {
		t.Fatal(err)
	}
	return s, vkey
}

// message is what replica with key s and verifier key vkey publishes for
// tree at size.
func message(t *testing.T, s note.Signer, vkey string, tree *memTree, size int64) []byte {
	t.Helper()
	root, err := tree.RootAt(context.Background(), size)
	if err != nil {
		t.Fatal(err)
	}
	signed, err := checkpoint.Sign(checkpoint.Checkpoint{Origin: s.Name(), Size: size, Root: root}, s)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(Message{Key: vkey, Checkpoint: string(signed)})
	return b
}

// TestWitnessChecks drives one Witness's checks by hand: checkpoints above
// its size kept and checked when it catches up (the oldest and the latest),
// a rewritten tree named at a smaller size, two roots for one size named
// before this tree can say which is right, and its own checkpoint published
// only when its key signed it.
func TestWitnessChecks(t *testing.T) {
	ctx := context.Background()
	own := treeOf("leaf", 10)
	_, ownKey := signer(t, "sharelog/me")
	w, err := New(Config{Replica: "me", Tree: own, Key: ownKey, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ahead := treeOf("leaf", 16) // an honest replica ahead of this one
	ps, pkey := signer(t, "sharelog/p")
	checked := func(name string) (match, mismatch float64) {
		return value(w.checks.WithLabelValues(name, "match")), value(w.checks.WithLabelValues(name, "mismatch"))
	}

	w.receive(ctx, SubjectPrefix+"p", message(t, ps, pkey, ahead, 12))
	w.receive(ctx, SubjectPrefix+"p", message(t, ps, pkey, ahead, 13))
	w.receive(ctx, SubjectPrefix+"p", message(t, ps, pkey, ahead, 14))
	if m, _ := checked("p"); m != 0 || len(w.peers["p"].pending) != 2 {
		t.Fatalf("checkpoints above this tree: %v checked, %d kept; want none checked, 2 kept", m, len(w.peers["p"].pending))
	}
	own.add("leaf10")
	own.add("leaf11")
	w.recheck(ctx)
	if m, _ := checked("p"); m != 1 || w.peers["p"].pending[0].Size != 14 {
		t.Errorf("caught up to 12: %v checked, kept %+v; want 12 checked, 14 kept", m, w.peers["p"].pending)
	}
	own.add("leaf12")
	own.add("leaf13")
	w.recheck(ctx)
	if m, mm := checked("p"); m != 2 || mm != 0 || len(w.peers["p"].pending) != 0 || w.Ready() != nil {
		t.Errorf("caught up to 14: %v match, %v mismatch, %d kept, ready %v", m, mm, len(w.peers["p"].pending), w.Ready())
	}

	// q's tree was rewritten at leaf 3; it is at size 8, below this one.
	rewritten := treeOf("leaf", 3)
	for i := 3; i < 8; i++ {
		rewritten.add(fmt.Sprintf("other%d", i))
	}
	qs, qkey := signer(t, "sharelog/q")
	w.receive(ctx, SubjectPrefix+"q", message(t, qs, qkey, rewritten, 8))
	ours, _ := own.RootAt(ctx, 8)
	theirs, _ := rewritten.RootAt(ctx, 8)
	want := Difference{Replica: "q", Size: 8, Theirs: theirs, Ours: ours}
	if d := w.Differences(); len(d) != 1 || d[0] != want {
		t.Errorf("differences %+v, want %+v", d, want)
	}
	if value(w.mismatch.WithLabelValues("q")) != 1 {
		t.Error("no mismatch gauge for q")
	}
	// One agrees (p), one differs (q): 2 of 3 with this one, ready.
	if err := w.Ready(); err != nil {
		t.Errorf("Ready with p agreeing and q differing = %v", err)
	}
	// A later checkpoint of q that matches does not clear the alarm.
	w.receive(ctx, SubjectPrefix+"q", message(t, qs, qkey, ahead, 9))
	if len(w.Differences()) != 1 || value(w.mismatch.WithLabelValues("q")) != 1 {
		t.Error("a later match cleared q's difference")
	}

	// r signs two roots for size 20, above this tree.
	rs, rkey := signer(t, "sharelog/r")
	other := treeOf("x", 20)
	w.receive(ctx, SubjectPrefix+"r", message(t, rs, rkey, treeOf("leaf", 20), 20))
	w.receive(ctx, SubjectPrefix+"r", message(t, rs, rkey, other, 20))
	first, _ := treeOf("leaf", 20).RootAt(ctx, 20)
	second, _ := other.RootAt(ctx, 20)
	d := w.Differences()
	if len(d) != 2 || d[1] != (Difference{Replica: "r", Size: 20, Theirs: second, Ours: first, TwoRoots: true}) {
		t.Errorf("differences %+v, want r's two roots", d)
	}
	if !strings.Contains(d[1].String(), "replica r signed two roots for size 20: ") {
		t.Errorf("two roots described as %q", d[1])
	}
	// Two of four differ (q, r): no majority.
	if err := w.Ready(); err == nil || !strings.Contains(err.Error(), "2 of 4 replicas checked, itself included, agree with it; it differs from q, r") {
		t.Errorf("Ready = %v", err)
	}

	// Its own checkpoint is published only when signed by its own key:
	// a copied ledger's checkpoint, signed by p, is not (and needs no
	// NATS: js is nil here).
	pRoot, _ := own.RootAt(ctx, 14)
	own.latest, _ = checkpoint.Sign(checkpoint.Checkpoint{Origin: "sharelog/p", Size: 14, Root: pRoot}, ps)
	w.publish(ctx)
	if w.published != -1 {
		t.Errorf("published = %d after a checkpoint signed by another key, want -1", w.published)
	}
}
