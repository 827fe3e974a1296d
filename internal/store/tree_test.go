package store

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/dgraph-io/badger/v4"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/sharelog/sharelog/internal/checkpoint"
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

	// Across tiles: a batch that fills tile 0/0, a discarded one that
	// would have filled 0/1, one that fills it exactly, a reopen on a tile
	// boundary; the root is tlog's over the entries each time.
	checkRoot := func(when string) {
		t.Helper()
		var ref memTree
		var n int64
		err := s.db.View(func(txn *badger.Txn) error {
			it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixEntry}, PrefetchValues: true})
			defer it.Close()
			for it.Rewind(); it.Valid(); it.Next() {
				v, err := entryValue(it.Item())
				if err != nil {
					return err
				}
				ref = ref.add(t, n, tlog.RecordHash(v))
				n++
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		want, _ := tlog.TreeHash(n, ref)
		if size, root, err := s.TreeHead(ctx); err != nil || size != n || root != want {
			t.Fatalf("%s: TreeHead = %d %v %v, want %d %v", when, size, root, err, n, want)
		}
	}
	applyBatch(t, s, events(111, "fills tile 0/0")...)
	check("a batch that filled a tile", 300)
	checkRoot("a batch that filled a tile")
	discard(events(300, "discarded across tile 0/1"))
	checkRoot("after a discarded batch that filled a tile")
	applyBatch(t, s, events(212, "fills tile 0/1 exactly")...)
	check("a batch that filled a tile exactly", 512)
	checkRoot("a batch that filled a tile exactly")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, cfg)
	checkRoot("reopened on a tile boundary")
	applyBatch(t, s, events(1, "after a reopen on a tile boundary")...)
	check("after a reopen on a tile boundary", 513)
	checkRoot("after a reopen on a tile boundary")
	tiles := 0
	err = s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixTile}})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			tiles++
		}
		return nil
	})
	if err != nil || tiles != 2 {
		t.Errorf("%d tiles stored (%v), want 0/0 and 0/1", tiles, err)
	}
}

// memTree is the tree over some records computed by tlog alone: every
// stored hash, in memory, in stored hash index order.
type memTree []tlog.Hash

func (m memTree) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, idx := range indexes {
		if idx >= int64(len(m)) {
			return nil, fmt.Errorf("hash %d not in the reference tree", idx)
		}
		out[i] = m[idx]
	}
	return out, nil
}

func (m memTree) add(t testing.TB, n int64, leaf tlog.Hash) memTree {
	hs, err := tlog.StoredHashesForRecordHash(n, leaf, m)
	if err != nil {
		t.Fatal(err)
	}
	return append(m, hs...)
}

// TestTilesMatchTlog adds 70,000 synthetic entries (three tile levels) in
// batches of uneven sizes, each its own transaction, the tail carried from
// one to the next as the writer does, or read again from Badger (loadTail) as
// after a reopen. It checks that the stored tiles are exactly tlog's full
// tiles of height 8 of the tree (tlog.ReadTileData over every stored hash
// computed by tlog alone), that nothing of the tree else is written, that a
// tail read again equals the one carried, and that hashes, roots and proofs
// read back from the tiles and the tail are tlog's at every size up to the
// tail's.
func TestTilesMatchTlog(t *testing.T) {
	db, err := badger.Open(badgerOptions(t.TempDir(), testConfig(t).Logger).WithSyncWrites(false))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var ref memTree
	var n int64
	tail := &treeTail{}
	sizes := []int64{1, 1, 254, 255, 1, 1000, 3, 20000, 20000, 65536 - 1515 - 40000, 1, 3000, 1463, 0}
	for i, size := range sizes {
		err := db.Update(func(txn *badger.Txn) error {
			if i%3 == 2 {
				// As after a reopen: the tail from Badger.
				loaded, err := loadTail(txn, n, nil, true)
				if err != nil {
					return err
				}
				if fmt.Sprint(loaded) != fmt.Sprint(tail) {
					t.Errorf("tail at %d read again differs from the one carried", n)
				}
				tail = loaded
			}
			tail = tail.clone()
			for range size {
				value := binary.BigEndian.AppendUint64([]byte("leaf "), uint64(n))
				if err := txn.Set(entryKey(uint64(n+1)), packEntry(value)); err != nil {
					return err
				}
				leaf := tlog.RecordHash(value)
				if err := tail.add(n, leaf, txn.Set); err != nil {
					return err
				}
				ref = ref.add(t, n, leaf)
				n++
			}
			return nil
		})
		if err != nil {
			t.Fatalf("after %d leaves: %v", n, err)
		}
	}
	if n != 70_000 {
		t.Fatalf("added %d leaves", n)
	}
	err = db.View(func(txn *badger.Txn) error {
		want := map[string][]byte{}
		for _, tile := range tlog.NewTiles(tileHeight, 0, n) {
			if tile.W != tileWidth {
				continue // partial: not stored
			}
			data, err := tlog.ReadTileData(tile, ref)
			if err != nil {
				return err
			}
			want[string(tileKey(tile.L, tile.N))] = data
		}
		if len(want) != 273+1 { // level 0: 273 full; level 1: one full
			t.Errorf("tlog lists %d full tiles", len(want))
		}
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixTile}})
		defer it.Close()
		got := 0
		for it.Rewind(); it.Valid(); it.Next() {
			k := it.Item().Key()
			v, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			got++
			if w, ok := want[string(k)]; !ok {
				t.Errorf("key %x written, not a full tile of the tree", k)
			} else if string(v) != string(w) {
				t.Errorf("tile %x: %d bytes differ from tlog's %d", k, len(v), len(w))
			}
		}
		if got != len(want) {
			t.Errorf("%d tiles stored, want the %d full ones", got, len(want))
		}

		for _, r := range []*treeReader{{txn: txn, tail: tail}, func() *treeReader {
			loaded, err := loadTail(txn, n, nil, false)
			if err != nil {
				t.Fatal(err)
			}
			return &treeReader{txn: txn, tail: loaded}
		}()} {
			for _, idx := range []int64{0, 1, 2, 510, 511, 4000, 65535, tlog.StoredHashIndex(8, 255), tlog.StoredHashIndex(16, 0), int64(len(ref)) - 1} {
				h, err := r.ReadHashes([]int64{idx})
				if err != nil {
					return err
				}
				if h[0] != ref[idx] {
					t.Errorf("hash %d read from tiles differs from tlog's", idx)
				}
			}
			for _, size := range []int64{1, 2, 255, 256, 257, 65536, 65537, 69999, 70000} {
				root, err := tlog.TreeHash(size, r)
				if err != nil {
					return err
				}
				want, _ := tlog.TreeHash(size, ref)
				if root != want {
					t.Errorf("root of size %d from tiles differs from tlog's", size)
				}
				for _, leaf := range []int64{0, size / 2, size - 1} {
					p, err := tlog.ProveRecord(size, leaf, r)
					if err != nil {
						return err
					}
					if err := tlog.CheckRecord(p, size, want, leaf, ref[tlog.StoredHashIndex(0, leaf)]); err != nil {
						t.Errorf("inclusion of %d in %d: %v", leaf, size, err)
					}
				}
				p, err := tlog.ProveTree(70000, size, r)
				if err != nil {
					return err
				}
				last, _ := tlog.TreeHash(70000, ref)
				if err := tlog.CheckTree(p, 70000, last, size, want); err != nil {
					t.Errorf("consistency of %d with 70000: %v", size, err)
				}
			}
		}
		// A tail of another size is a hint: what it holds of the partial
		// tiles is taken, the rest recomputed.
		for _, hintSize := range []int64{0, 1, 65535, 69000, 69999} {
			hint, err := loadTail(txn, hintSize, nil, false)
			if err != nil {
				return err
			}
			for _, size := range []int64{65536, 69999, 70000} {
				got, err := loadTail(txn, size, hint, false)
				if err != nil {
					return err
				}
				fresh, _ := loadTail(txn, size, nil, false)
				if fmt.Sprint(got.partial) != fmt.Sprint(fresh.partial) {
					t.Errorf("tail of %d with a hint of %d differs from the one read without", size, hintSize)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// The ledger in testdata/tree-per-hash was written by sharelog before tiles
// (commit 8f8d459, one 'h' key per stored hash): 600 recipient entries in
// batches of 1, 7, 250, 300 and 42, a checkpoint signed after each.
const (
	legacyRoot = "I3fLavRmpqStrXiytO7/ttuZZoIuzFeU4017XWVUfwk="
	legacyVKey = "sharelog/legacy-fixture+bf7c1e7f+AY9uFJj4mMUd1ugZwtKH+FBE4gYrSFz4F/3yxPxRGJxW"
)

// legacyLedger copies the ledger written with one key per stored hash.
func legacyLedger(t *testing.T) (Config, note.Verifier) {
	t.Helper()
	cfg := testConfig(t)
	if out, err := exec.Command("cp", "-r", filepath.Join("testdata", "tree-per-hash", "ledger"), cfg.Dir).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	v, err := note.NewVerifier(legacyVKey)
	if err != nil {
		t.Fatal(err)
	}
	return cfg, v
}

// countKeys counts the keys of the ledger in dir with the prefix.
func countKeys(t *testing.T, dir string, prefix byte) int {
	t.Helper()
	db, err := badger.Open(badgerOptions(dir, testConfig(t).Logger).WithReadOnly(true))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	n := 0
	err = db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefix}})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			n++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestLegacyTreeLedger: a ledger written with one key per stored hash
// verifies, serves its tree head and proofs, and grows in tiles, its old
// keys read (its full tiles from them) and never rewritten.
func TestLegacyTreeLedger(t *testing.T) {
	cfg, v := legacyLedger(t)
	if n := countKeys(t, cfg.Dir, prefixTreeHash); n != int(tlog.StoredHashCount(600)) {
		t.Fatalf("fixture holds %d 'h' keys, want %d", n, tlog.StoredHashCount(600))
	}
	if n := countKeys(t, cfg.Dir, prefixTile); n != 0 {
		t.Fatalf("fixture holds %d tiles", n)
	}
	ctx := context.Background()
	res, err := Verify(ctx, VerifyConfig{Dir: cfg.Dir, Verifier: v})
	if err != nil {
		t.Fatalf("Verify of the ledger written before tiles: %v", err)
	}
	if res.Size != 600 || res.Root.String() != legacyRoot || res.Checkpoints != 5 {
		t.Errorf("Verify = size %d root %s, %d checkpoints; want 600 %s, 5", res.Size, res.Root, res.Checkpoints, legacyRoot)
	}

	s := openTest(t, cfg)
	size, root, err := s.TreeHead(ctx)
	if err != nil || size != 600 || root.String() != legacyRoot {
		t.Fatalf("TreeHead = %d %s %v, want 600 %s", size, root, err, legacyRoot)
	}
	sizes, _, err := s.CheckpointSizes(ctx, 0, 10)
	if err != nil || fmt.Sprint(sizes) != "[1 8 258 558 600]" {
		t.Fatalf("checkpoint sizes = %v %v", sizes, err)
	}
	var cps []checkpoint.Checkpoint
	for _, size := range sizes {
		msg, err := s.Checkpoint(ctx, size)
		if err != nil {
			t.Fatal(err)
		}
		cp, err := checkpoint.Open(msg, v)
		if err != nil {
			t.Fatal(err)
		}
		cps = append(cps, cp)
	}
	checkProofs := func(cps []checkpoint.Checkpoint) {
		t.Helper()
		for i, cp := range cps {
			for _, seq := range []int64{1, cp.Size / 2, cp.Size - 1, cp.Size} {
				if seq < 1 {
					continue
				}
				p, err := s.InclusionProof(ctx, seq, cp.Size)
				if err != nil {
					t.Fatal(err)
				}
				if err := p.Verify(cp); err != nil {
					t.Errorf("inclusion of %d in %d: %v", seq, cp.Size, err)
				}
			}
			for _, to := range cps[i:] {
				p, err := s.ConsistencyProof(ctx, cp.Size, to.Size)
				if err != nil {
					t.Fatal(err)
				}
				if err := p.Verify(cp, to); err != nil {
					t.Errorf("consistency of %d with %d: %v", cp.Size, to.Size, err)
				}
			}
		}
	}
	checkProofs(cps)
	if err := s.CheckTree(ctx); err != nil {
		t.Errorf("CheckTree of the ledger written before tiles: %v", err)
	}

	// It grows: the tile its writer fills is written as a tile, taking
	// the old hashes it holds; the tree is tlog's over all its entries.
	for batch, size := range []int{100, 200} {
		var evs []*ledger.Event
		for i := range size {
			evs = append(evs, recipientEvent(t, fmt.Sprintf("new%d-%d", batch, i), "Recipient"))
		}
		applyBatch(t, s, evs...)
	}
	var ref memTree
	err = s.db.View(func(txn *badger.Txn) error {
		for seq := uint64(1); seq <= 900; seq++ {
			ref = ref.add(t, int64(seq-1), tlog.RecordHash(getEntry(t, txn, seq)))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, size := range []int64{700, 900} {
		root, _ := tlog.TreeHash(size, ref)
		cps = append(cps, checkpoint.Checkpoint{Origin: cps[0].Origin, Size: size, Root: root})
	}
	if size, root, err := s.TreeHead(ctx); err != nil || size != 900 || root != cps[6].Root {
		t.Fatalf("TreeHead after growing = %d %s %v, want 900 %s", size, root, err, cps[6].Root)
	}
	checkProofs(cps)
	if err := s.CheckTree(ctx); err != nil {
		t.Errorf("CheckTree after growing: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if n := countKeys(t, cfg.Dir, prefixTreeHash); n != int(tlog.StoredHashCount(600)) {
		t.Errorf("%d 'h' keys after growing, want the %d written before tiles", n, tlog.StoredHashCount(600))
	}
	// Tile 0/2 (leaves 512 to 767: 88 old hashes, then new ones) was
	// filled, so written; 0/0 and 0/1 stay in 'h' keys, 0/3 and 1/0 are
	// partial.
	if n := countKeys(t, cfg.Dir, prefixTile); n != 1 {
		t.Errorf("%d tiles after growing, want 1", n)
	}
	res, err = Verify(ctx, VerifyConfig{Dir: cfg.Dir, Verifier: v})
	if err != nil || res.Size != 900 || res.Root != cps[6].Root || res.Checkpoints != 5 {
		t.Errorf("Verify after growing = %+v, %v; want size 900, root %s, 5 checkpoints", res, err, cps[6].Root)
	}
	// Reopened, the tail is read from the tiles, the 'h' keys and the
	// entries.
	s = openTest(t, cfg)
	if size, root, err := s.TreeHead(ctx); err != nil || size != 900 || root != cps[6].Root {
		t.Fatalf("TreeHead after a reopen = %d %s %v, want 900 %s", size, root, err, cps[6].Root)
	}
	checkProofs(cps)
}

// TestVerifyLegacyTree: Verify names what was changed in the tree of a
// ledger written with one key per stored hash.
func TestVerifyLegacyTree(t *testing.T) {
	tests := []struct {
		name   string
		tamper func(t *testing.T, txn *badger.Txn) error
		want   string
	}{
		{
			name: "entry modified",
			tamper: func(t *testing.T, txn *badger.Txn) error {
				v := get(t, txn, entryV0Key(300))
				v[len(v)-3] ^= 1
				return txn.Set(entryV0Key(300), v)
			},
			want: "entry 300 modified",
		},
		{
			name: "leaf hash altered",
			tamper: func(t *testing.T, txn *badger.Txn) error {
				k := treeHashKey(tlog.StoredHashIndex(0, 299))
				v := get(t, txn, k)
				v[0] ^= 1
				return txn.Set(k, v)
			},
			want: "entry 300 modified",
		},
		{
			name: "hash of a tile level altered",
			tamper: func(t *testing.T, txn *badger.Txn) error {
				k := treeHashKey(tlog.StoredHashIndex(8, 1))
				v := get(t, txn, k)
				v[0] ^= 1
				return txn.Set(k, v)
			},
			want: fmt.Sprintf("tree hash altered at entry 512: tree hash %d differs from the one recomputed", tlog.StoredHashIndex(8, 1)),
		},
		{
			name: "leaf hash deleted",
			tamper: func(t *testing.T, txn *badger.Txn) error {
				return txn.Delete(treeHashKey(tlog.StoredHashIndex(0, 299)))
			},
			want: "tree hash altered at entry 257: tree tile 0/1 missing",
		},
		{
			name: "rolled back",
			tamper: func(t *testing.T, txn *badger.Txn) error {
				for seq := uint64(559); seq <= 600; seq++ {
					if err := txn.Delete(entryV0Key(seq)); err != nil {
						return err
					}
				}
				for i := tlog.StoredHashIndex(0, 558); i < tlog.StoredHashCount(600); i++ {
					if err := txn.Delete(treeHashKey(i)); err != nil {
						return err
					}
				}
				return setMetaCount(t, txn, 558)
			},
			want: "tree rolled back: checkpoint size 600 > ledger size 558",
		},
		{
			name: "entries deleted, their hashes left",
			tamper: func(t *testing.T, txn *badger.Txn) error {
				for seq := uint64(559); seq <= 600; seq++ {
					if err := txn.Delete(entryV0Key(seq)); err != nil {
						return err
					}
				}
				if err := txn.Delete(checkpointKey(600)); err != nil {
					return err
				}
				return setMetaCount(t, txn, 558)
			},
			want: "entry 559 missing (deleted)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, v := legacyLedger(t)
			l := &signedLedger{cfg: cfg, verifier: v}
			l.tamper(t, func(txn *badger.Txn) error { return tt.tamper(t, txn) })
			res, err := l.verify(t)
			if !errors.As(err, new(*TamperError)) || err.Error() != tt.want {
				t.Errorf("Verify = %+v, %v\nwant %q", res, err, tt.want)
			}
		})
	}
}

// TestTreeReadersWhileWriting: readers in their own transactions, while the
// writer commits batches that fill tiles, always see a tree consistent with
// the size they read: the root TreeHead gives is the one RootAt gives for that
// size later, and the proofs they get verify against it.
func TestTreeReadersWhileWriting(t *testing.T) {
	s := openTest(t, testConfig(t))
	ctx := context.Background()
	done := make(chan struct{})
	errs := make(chan error, 1)
	seen := map[int64]tlog.Hash{}
	go func() {
		defer close(errs)
		for {
			select {
			case <-done:
				return
			default:
			}
			size, root, err := s.TreeHead(ctx)
			if err != nil {
				errs <- err
				return
			}
			if size == 0 {
				continue
			}
			seen[size] = root
			cp := checkpoint.Checkpoint{Size: size, Root: root}
			p, err := s.InclusionProof(ctx, size/2+1, size)
			if err == nil {
				err = p.Verify(cp)
			}
			if err != nil {
				errs <- fmt.Errorf("inclusion of %d in %d: %w", size/2+1, size, err)
				return
			}
		}
	}()
	for i := range 40 {
		var evs []*ledger.Event
		for j := range 37 {
			evs = append(evs, recipientEvent(t, fmt.Sprint("r", i, "-", j), "R"))
		}
		applyBatch(t, s, evs...)
	}
	close(done)
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	if len(seen) < 2 {
		t.Logf("the reader saw %d sizes", len(seen))
	}
	for size, root := range seen {
		if got, err := s.RootAt(ctx, size); err != nil || got != root {
			t.Errorf("RootAt(%d) = %v %v, TreeHead gave %v", size, got, err, root)
		}
	}

	// A reader whose transaction began before the writer filled a tile and
	// moved on reads the tree of its own size.
	size, root, err := s.TreeHead(ctx)
	if err != nil {
		t.Fatal(err)
	}
	txn := s.db.NewTransaction(false)
	defer txn.Discard()
	for i := range 3 {
		var evs []*ledger.Event
		for j := range 100 {
			evs = append(evs, recipientEvent(t, fmt.Sprint("late", i, "-", j), "R"))
		}
		applyBatch(t, s, evs...)
	}
	r, got, err := s.txnTree(txn)
	if err != nil || got != size {
		t.Fatalf("old reader: size %d, %v; want %d", got, err, size)
	}
	if h, err := tlog.TreeHash(got, r); err != nil || h != root {
		t.Errorf("old reader: root %v, %v; want %v", h, err, root)
	}
}
