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

// syntheticLeaf is the record hash of leaf n of the synthetic trees.
func syntheticLeaf(n int64) tlog.Hash {
	return tlog.RecordHash(binary.BigEndian.AppendUint64([]byte("leaf "), uint64(n)))
}

// TestTilesMatchTlog adds 70,000 leaves (three tile levels) in batches of
// uneven sizes, each its own transaction, and checks that the stored tiles
// are exactly tlog's tiles of height 8 of the tree (tlog.NewTiles,
// tlog.ReadTileData over every stored hash computed by tlog alone), that no
// other key is written, and that hashes, roots and proofs read back from the
// tiles are tlog's.
func TestTilesMatchTlog(t *testing.T) {
	db, err := badger.Open(badgerOptions(t.TempDir(), testConfig(t).Logger).WithSyncWrites(false))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var ref memTree
	var n int64
	sizes := []int64{1, 1, 254, 255, 1, 1000, 3, 65536 - 1515, 1, 3000, 1463, 0}
	for _, size := range sizes {
		err := db.Update(func(txn *badger.Txn) error {
			tree := newTiles(txn)
			for range size {
				leaf := syntheticLeaf(n)
				if err := tree.add(n, leaf); err != nil {
					return err
				}
				ref = ref.add(t, n, leaf)
				n++
			}
			return tree.flush(txn.Set)
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
			data, err := tlog.ReadTileData(tile, ref)
			if err != nil {
				return err
			}
			want[string(tileKey(tile.L, tile.N))] = data
		}
		if len(want) != 274+2+1 { // level 0: 273 full, one of 112; level 1: one full, one of 17; level 2: one of 1
			t.Errorf("tlog lists %d tiles", len(want))
		}
		it := txn.NewIterator(badger.IteratorOptions{})
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
				t.Errorf("key %x written, not a tile of the tree", k)
			} else if string(v) != string(w) {
				t.Errorf("tile %x: %d bytes differ from tlog's %d", k, len(v), len(w))
			}
		}
		if got != len(want) {
			t.Errorf("%d keys stored, want the %d tiles", got, len(want))
		}

		tree := newTiles(txn)
		for _, idx := range []int64{0, 1, 2, 510, 511, 4000, 65535, tlog.StoredHashIndex(8, 255), tlog.StoredHashIndex(16, 0), int64(len(ref)) - 1} {
			h, err := tree.ReadHashes([]int64{idx})
			if err != nil {
				return err
			}
			if h[0] != ref[idx] {
				t.Errorf("hash %d read from tiles differs from tlog's", idx)
			}
		}
		for _, size := range []int64{1, 2, 255, 256, 257, 65536, 65537, 69999, 70000} {
			root, err := tlog.TreeHash(size, tree)
			if err != nil {
				return err
			}
			want, _ := tlog.TreeHash(size, ref)
			if root != want {
				t.Errorf("root of size %d from tiles differs from tlog's", size)
			}
			for _, leaf := range []int64{0, size / 2, size - 1} {
				p, err := tlog.ProveRecord(size, leaf, tree)
				if err != nil {
					return err
				}
				if err := tlog.CheckRecord(p, size, want, leaf, ref[tlog.StoredHashIndex(0, leaf)]); err != nil {
					t.Errorf("inclusion of %d in %d: %v", leaf, size, err)
				}
			}
			p, err := tlog.ProveTree(70000, size, tree)
			if err != nil {
				return err
			}
			last, _ := tlog.TreeHash(70000, ref)
			if err := tlog.CheckTree(p, 70000, last, size, want); err != nil {
				t.Errorf("consistency of %d with 70000: %v", size, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestTreeTilesKeysPerBatch: a batch writes the tiles it changed, once each,
// and nothing of the tree else.
func TestTreeTilesKeysPerBatch(t *testing.T) {
	s := openTest(t, testConfig(t))
	var evs []*ledger.Event
	for i := range 300 {
		evs = append(evs, recipientEvent(t, fmt.Sprintf("r%d", i), "R"))
	}
	applyBatch(t, s, evs[:250]...)
	applyBatch(t, s, evs[250:]...) // completes tile 0/0 and starts 0/1 and 1/0
	var keys []string
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixTile}, AllVersions: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			keys = append(keys, fmt.Sprintf("%d/%d:%d@%d", it.Item().Key()[1], binary.BigEndian.Uint64(it.Item().Key()[2:]), it.Item().ValueSize()/tlog.HashSize, it.Item().Version()))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Versions newest first: the first batch wrote tile 0/0 with 250
	// hashes, the second rewrote it full and wrote 0/1 and 1/0.
	v1, v2 := s.db.MaxVersion()-1, s.db.MaxVersion()
	if got, want := fmt.Sprint(keys), fmt.Sprint([]string{
		fmt.Sprintf("0/0:256@%d", v2), fmt.Sprintf("0/0:250@%d", v1), fmt.Sprintf("0/1:44@%d", v2), fmt.Sprintf("1/0:1@%d", v2),
	}); got != want {
		t.Errorf("tile versions = %s\nwant %s", got, want)
	}
}

// bigSignedLedger is a closed ledger of 600 entries, in batches of
// uneven sizes, with a checkpoint signed after each; it returns its config
// and the checkpoints' verifier.
func bigSignedLedger(t *testing.T) (Config, note.Verifier) {
	t.Helper()
	cfg := testConfig(t)
	s, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	signer, vkey, _, err := checkpoint.LoadOrCreateKey(filepath.Join(t.TempDir(), "checkpoint.key"), "", "sharelog/test")
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	cpr := checkpoint.NewCheckpointer(s, signer, cfg.Logger)
	n := 0
	for _, size := range []int{1, 7, 250, 300, 42} {
		var evs []*ledger.Event
		for range size {
			n++
			evs = append(evs, recipientEvent(t, fmt.Sprintf("r%d", n), "Recipient"))
		}
		applyBatch(t, s, evs...)
		if _, err := cpr.Checkpoint(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return cfg, v
}

// TestVerifyTiles: Verify names what was changed in the tiles of a ledger
// with two tile levels.
func TestVerifyTiles(t *testing.T) {
	level8 := tlog.StoredHashIndex(8, 0) // the hash of leaves 0 to 255, first of tile 1/0
	tests := []struct {
		name   string
		tamper func(t *testing.T, txn *badger.Txn) error
		want   string
		kind   TamperKind
	}{
		{
			name: "hash of a tile level altered",
			tamper: func(t *testing.T, txn *badger.Txn) error {
				v := get(t, txn, tileKey(1, 0))
				v[0] ^= 1
				return txn.Set(tileKey(1, 0), v)
			},
			want: fmt.Sprintf("tree hash altered at entry 256: tree hash %d differs from the one recomputed", level8), kind: TamperTreeHash,
		},
		{
			name:   "tile of a tile level deleted",
			tamper: func(t *testing.T, txn *badger.Txn) error { return txn.Delete(tileKey(1, 0)) },
			want:   fmt.Sprintf("tree hash altered at entry 256: tree hash %d missing", level8), kind: TamperTreeHash,
		},
		{
			name: "leaf in a full tile altered",
			tamper: func(t *testing.T, txn *badger.Txn) error {
				v := get(t, txn, tileKey(0, 1))
				v[100*tlog.HashSize+5] ^= 1 // leaf 356
				return txn.Set(tileKey(0, 1), v)
			},
			want: "entry 357 modified", kind: TamperModified,
		},
		{
			name: "tile not a whole number of hashes",
			tamper: func(t *testing.T, txn *badger.Txn) error {
				return txn.Set(tileKey(0, 1), get(t, txn, tileKey(0, 1))[:100])
			},
			want: "tree hash altered at entry 257: tree tile 0/1 holds 100 bytes, not whole hashes: corrupt value", kind: TamperTreeHash,
		},
		{
			name:   "full tile deleted",
			tamper: func(t *testing.T, txn *badger.Txn) error { return txn.Delete(tileKey(0, 1)) },
			want:   "extra entry inserted at 257", kind: TamperInserted,
		},
		{
			name: "tile beyond the tree",
			tamper: func(t *testing.T, txn *badger.Txn) error {
				return txn.Set(tileKey(0, 5), make([]byte, tlog.HashSize))
			},
			want: "entry 601 missing (deleted)", kind: TamperDeleted,
		},
		{
			name: "edge tile longer than the tree",
			tamper: func(t *testing.T, txn *badger.Txn) error {
				return txn.Set(tileKey(1, 0), append(get(t, txn, tileKey(1, 0)), make([]byte, tlog.HashSize)...))
			},
			want: "entry 601 missing (deleted)", kind: TamperDeleted,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, v := bigSignedLedger(t)
			res, err := Verify(context.Background(), VerifyConfig{Dir: cfg.Dir, Verifier: v})
			if err != nil || res.Size != 600 || res.Checkpoints != 5 {
				t.Fatalf("before tampering: %+v, %v", res, err)
			}
			l := &signedLedger{cfg: cfg, verifier: v}
			l.tamper(t, func(txn *badger.Txn) error { return tt.tamper(t, txn) })
			res, err = l.verify(t)
			var te *TamperError
			if !errors.As(err, &te) {
				t.Fatalf("Verify = %v, %v; want a TamperError", res, err)
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("Verify error = %q\nwant %q", got, tt.want)
			}
			if te.Kind != tt.kind {
				t.Errorf("Kind = %s, want %s", te.Kind, tt.kind)
			}
		})
	}
}

// The ledger in testdata/tree-per-hash was written by sharelog before
// tiles (commit 8f8d459, one 'h' key per stored hash), as bigSignedLedger
// writes one: 600 recipient entries in batches of 1, 7, 250, 300 and 42,
// a checkpoint signed after each.
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
// keys read and never rewritten.
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

	// It grows: its partial tiles are written as tiles, taking the old
	// hashes they hold; the tree is tlog's over all its entries.
	for batch, size := range []int{100, 200} {
		var evs []*ledger.Event
		for i := range size {
			evs = append(evs, recipientEvent(t, fmt.Sprintf("new%d-%d", batch, i), "Recipient"))
		}
		applyBatch(t, s, evs...)
	}
	var ref memTree
	for seq := uint64(1); seq <= 900; seq++ {
		e, err := s.entryValue(seq)
		if err != nil {
			t.Fatal(err)
		}
		ref = ref.add(t, int64(seq-1), tlog.RecordHash(e))
	}
	for _, size := range []int64{700, 900} {
		root, _ := tlog.TreeHash(size, ref)
		cps = append(cps, checkpoint.Checkpoint{Origin: cps[0].Origin, Size: size, Root: root})
	}
	if size, root, err := s.TreeHead(ctx); err != nil || size != 900 || root != cps[6].Root {
		t.Fatalf("TreeHead after growing = %d %s %v, want 900 %s", size, root, err, cps[6].Root)
	}
	checkProofs(cps)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if n := countKeys(t, cfg.Dir, prefixTreeHash); n != int(tlog.StoredHashCount(600)) {
		t.Errorf("%d 'h' keys after growing, want the %d written before tiles", n, tlog.StoredHashCount(600))
	}
	// Tiles 0/2 (leaves 512 to 767: 88 old hashes, then new ones), 0/3
	// (768 to 899) and 1/0 (3 hashes: 2 old, 1 new) are tiles now; 0/0 and
	// 0/1 stay in 'h' keys.
	if n := countKeys(t, cfg.Dir, prefixTile); n != 3 {
		t.Errorf("%d tiles after growing, want 3", n)
	}
	res, err = Verify(ctx, VerifyConfig{Dir: cfg.Dir, Verifier: v})
	if err != nil || res.Size != 900 || res.Root != cps[6].Root || res.Checkpoints != 5 {
		t.Errorf("Verify after growing = %+v, %v; want size 900, root %s, 5 checkpoints", res, err, cps[6].Root)
	}
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
				v := get(t, txn, entryKey(300))
				v[len(v)-3] ^= 1
				return txn.Set(entryKey(300), v)
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
			want: "extra entry inserted at 300",
		},
		{
			name: "rolled back",
			tamper: func(t *testing.T, txn *badger.Txn) error {
				for seq := uint64(559); seq <= 600; seq++ {
					if err := txn.Delete(entryKey(seq)); err != nil {
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
					if err := txn.Delete(entryKey(seq)); err != nil {
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

// entryValue reads entry seq's stored value (the leaf data).
func (s *Store) entryValue(seq uint64) ([]byte, error) {
	var v []byte
	err := s.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(entryKey(seq))
		if err != nil {
			return err
		}
		v, err = item.ValueCopy(nil)
		return err
	})
	return v, err
}

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
