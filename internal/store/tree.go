package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/sharelog/sharelog/internal/checkpoint"
	"github.com/sharelog/sharelog/internal/ledger"
)

// Key kinds of the Merkle tree over the entries (see doc.go and package
// checkpoint).
const (
	prefixTile       = 'T' // T level(1) n(8) -> 256 hashes(32 each): full tile n of tile level (tileHeight)
	prefixTreeHash   = 'h' // h index(8)      -> hash(32): tlog stored hash number index, as ledgers kept it before tiles
	prefixCheckpoint = 'c' // c size(8)       -> signed checkpoint note of that tree size
)

// The tree is stored in tiles, as the Go checksum database and Tessera store
// theirs (tlog.Tile of height tileHeight): tile n of tile level L holds, in
// order, the 256 hashes of tree level 8L numbered from 256n; the hashes of
// the levels between are hashed again from them when read. A tile is written
// once, by the batch that fills it, and never rewritten. The hashes of the
// partial tile at the right edge of each tile level (at most 255 per level)
// are not stored: the writer keeps them in memory (treeTail), and anyone
// else recomputes them from the last entries' values (leaf hashes) and from
// the full tiles of the level below (the root of each), see loadTail. So a
// commit writes no tree key, except once every 256 entries.
//
// Ledgers written before tiles kept one 'h' key per stored hash. They are
// read as they are, never converted (Verify opens ledgers read-only): a full
// tile with no 'T' key is read from the 'h' keys of its 256 hashes, and the
// ledger grows in tiles; its 'h' hashes of the levels between tile levels
// are no longer read (Verify still compares them).
const (
	tileHeight = 8
	tileWidth  = 1 << tileHeight           // hashes in a full tile
	tileBytes  = tileWidth * tlog.HashSize // bytes of a full tile
)

// errTileMissing is a full tile that is not stored.
var errTileMissing = errors.New("missing")

// tileKey is the key of full tile n of tile level level.
func tileKey(level int, n int64) []byte {
	k := make([]byte, 10)
	k[0] = prefixTile
	k[1] = byte(level)
	binary.BigEndian.PutUint64(k[2:], uint64(n))
	return k
}

// treeHashKey is the key of tlog's stored hash number index in ledgers
// written before tiles.
func treeHashKey(index int64) []byte {
	k := make([]byte, 9)
	k[0] = prefixTreeHash
	binary.BigEndian.PutUint64(k[1:], uint64(index))
	return k
}

func checkpointKey(size int64) []byte {
	k := make([]byte, 9)
	k[0] = prefixCheckpoint
	binary.BigEndian.PutUint64(k[1:], uint64(size))
	return k
}

// tileFull reports whether tile n of tile level level is full in the tree
// of size entries, so stored.
func tileFull(size int64, level int, n int64) bool {
	return (n+1)*tileWidth <= size>>(tileHeight*level)
}

// readTile reads full tile n of tile level level in txn: its 'T' value, or
// in a ledger written before tiles the 'h' keys of its hashes.
func readTile(txn *badger.Txn, level int, n int64) ([]byte, error) {
	item, err := txn.Get(tileKey(level, n))
	if err == nil {
		data, err := item.ValueCopy(nil)
		if err != nil {
			return nil, err
		}
		if len(data) != tileBytes {
			return nil, fmt.Errorf("tree tile %d/%d holds %d bytes, not %d hashes: %w", level, n, len(data), tileWidth, errCorrupt)
		}
		return data, nil
	}
	if !errors.Is(err, badger.ErrKeyNotFound) {
		return nil, err
	}
	data := make([]byte, 0, tileBytes)
	for k := range int64(tileWidth) {
		item, err := txn.Get(treeHashKey(tlog.StoredHashIndex(level*tileHeight, n*tileWidth+k)))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil, fmt.Errorf("tree tile %d/%d %w", level, n, errTileMissing)
		}
		if err != nil {
			return nil, err
		}
		if item.ValueSize() != tlog.HashSize {
			return nil, fmt.Errorf("tree tile %d/%d: hash %d is not a hash: %w", level, n, k, errCorrupt)
		}
		if err := item.Value(func(v []byte) error { data = append(data, v...); return nil }); err != nil {
			return nil, err
		}
	}
	return data, nil
}

// tileRoot returns the hash of the subtree whose leaves are the hashes of a
// full tile: the hash of the next tile level that the tile gives.
func tileRoot(data []byte) tlog.Hash {
	hs := make([]tlog.Hash, tileWidth)
	for i := range hs {
		copy(hs[i][:], data[i*tlog.HashSize:])
	}
	for len(hs) > 1 {
		for i := range len(hs) / 2 {
			hs[i] = tlog.NodeHash(hs[2*i], hs[2*i+1])
		}
		hs = hs[:len(hs)/2]
	}
	return hs[0]
}

// treeTail is the tree of size entries as far as it is not stored: the
// partial tile at the right edge of each tile level (partial[L] holds the
// (size>>8L)%256 hashes of tree level 8L after the level's full tiles), and
// the newest stored hash of each tree level (f, the only hashes
// tlog.StoredHashes reads when the next leaf is added; nil in a reader's).
//
// The writer keeps the tail of its last commit (Store.tail); a batch works
// on a copy of it, which the store takes at Commit, so that a discarded
// batch leaves no trace in it. A tail is never changed once the store holds
// it: a batch's copy shares its partial tiles' arrays (capacity 256 hashes)
// and appends to them past their length, which no reader of the store's
// tail reads, and a full tile's array is handed to Badger and replaced.
type treeTail struct {
	size    int64
	f       frontier
	partial [][]byte
}

// clone returns a copy of t that its batch can extend without changing t.
func (t *treeTail) clone() *treeTail {
	return &treeTail{size: t.size, f: append(frontier(nil), t.f...), partial: append([][]byte(nil), t.partial...)}
}

// loadTail returns the tail of the tree of size entries as committed in
// txn: the partial tiles' hashes are taken from hint (another tail of the
// same ledger, of any size, or nil) as far as it has them, and recomputed
// for the rest: tree level 0 from the entry values, the levels above from
// the roots of the full tiles below. With frontier, it reads the newest
// hash of each level too, which the writer needs.
func loadTail(txn *badger.Txn, size int64, hint *treeTail, frontier bool) (*treeTail, error) {
	t := &treeTail{size: size}
	for level := 0; size>>(tileHeight*level) > 0; level++ {
		c := size >> (tileHeight * level)
		start := c / tileWidth * tileWidth
		p := make([]byte, 0, tileBytes)
		k := start
		if hint != nil && level < len(hint.partial) && (hint.size>>(tileHeight*level))/tileWidth*tileWidth == start {
			m := min(int64(len(hint.partial[level])/tlog.HashSize), c-start)
			p = append(p, hint.partial[level][:m*tlog.HashSize]...)
			k += m
		}
		for ; k < c; k++ {
			var h tlog.Hash
			if level == 0 {
				item, err := getEntryItem(txn, uint64(k+1))
				if errors.Is(err, badger.ErrKeyNotFound) {
					return nil, fmt.Errorf("entry %d missing", k+1)
				}
				if err != nil {
					return nil, err
				}
				v, err := entryValue(item)
				if err != nil {
					return nil, fmt.Errorf("entry %d: %w", k+1, err)
				}
				h = tlog.RecordHash(v)
			} else {
				data, err := readTile(txn, level-1, k)
				if err != nil {
					return nil, err
				}
				h = tileRoot(data)
			}
			p = append(p, h[:]...)
		}
		t.partial = append(t.partial, p)
	}
	if frontier {
		r := &treeReader{txn: txn, tail: t}
		for level := 0; size>>level > 0; level++ {
			idx := tlog.StoredHashIndex(level, size>>level-1)
			h, err := r.ReadHashes([]int64{idx})
			if err != nil {
				return nil, err
			}
			t.f.set(level, idx, h[0])
		}
	}
	return t, nil
}

// treeReader reads the stored hashes of the tree up to tail's size (a
// tlog.HashReader for any size up to it): from the full tiles in txn, which
// must hold every entry of the tail, and from the tail's partial tiles.
type treeReader struct {
	txn  *badger.Txn
	tail *treeTail
	// the last full tile read
	last struct {
		level int
		n     int64
		data  []byte
	}
}

// ReadHashes implements tlog.HashReader.
func (r *treeReader) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, idx := range indexes {
		tile := tlog.TileForIndex(tileHeight, idx)
		var data []byte
		switch {
		case tileFull(r.tail.size, tile.L, tile.N):
			if r.last.data == nil || r.last.level != tile.L || r.last.n != tile.N {
				d, err := readTile(r.txn, tile.L, tile.N)
				if err != nil {
					return nil, fmt.Errorf("store: %w", err)
				}
				r.last.level, r.last.n, r.last.data = tile.L, tile.N, d
			}
			data = r.last.data
		case tile.L < len(r.tail.partial) && (r.tail.size>>(tileHeight*tile.L))/tileWidth == tile.N:
			data = r.tail.partial[tile.L]
		}
		if len(data) < tile.W*tlog.HashSize {
			return nil, fmt.Errorf("store: tree hash %d missing in a tree of size %d", idx, r.tail.size)
		}
		h, err := tlog.HashFromTile(tile, data, idx)
		if err != nil {
			return nil, fmt.Errorf("store: tree hash %d: %w", idx, err)
		}
		out[i] = h
	}
	return out, nil
}

// txnTree returns a reader of the tree as committed in txn, and its size.
// The partial tiles are the writer's when it has committed that size, else
// recomputed with the writer's as a hint (loadTail).
func (s *Store) txnTree(txn *badger.Txn) (*treeReader, int64, error) {
	size, err := treeSize(txn)
	if err != nil {
		return nil, 0, err
	}
	tail := s.tail.Load()
	if tail == nil || tail.size != size {
		if tail, err = loadTail(txn, size, tail, false); err != nil {
			return nil, 0, fmt.Errorf("store: tree: %w", err)
		}
	}
	return &treeReader{txn: txn, tail: tail}, size, nil
}

// readTree returns a reader of the tree as committed in txn, without a
// store (Verify, ReadKept), and its size.
func readTree(txn *badger.Txn) (*treeReader, int64, error) {
	size, err := treeSize(txn)
	if err != nil {
		return nil, 0, err
	}
	tail, err := loadTail(txn, size, nil, false)
	if err != nil {
		return nil, 0, fmt.Errorf("store: tree: %w", err)
	}
	return &treeReader{txn: txn, tail: tail}, size, nil
}

// addLeaf adds the entry value of entry seq to the tree (leaf seq-1): the
// hashes it completes go to the batch's tail, and a tile they fill is
// written in the batch.
func (b *Batch) addLeaf(seq uint64, value []byte) error {
	n := int64(seq - 1)
	if b.tail == nil {
		t := b.base
		if t == nil || t.size != n {
			// First batch since Open, or a commit whose outcome is
			// unknown: the tail is read from what Badger holds.
			var err error
			if t, err = loadTail(b.txn, n, nil, true); err != nil {
				return b.fail(fmt.Errorf("store: tree: %w", err))
			}
		}
		b.tail = t.clone()
	}
	if err := b.tail.add(n, tlog.RecordHash(value), b.set); err != nil {
		return b.fail(fmt.Errorf("store: tree: %w", err))
	}
	return nil
}

// add adds leaf n, of record hash leaf, to the tail of the tree of size n,
// and writes with set the tile it fills, if any.
func (t *treeTail) add(n int64, leaf tlog.Hash, set func(key, value []byte) error) error {
	if t.size != n {
		return fmt.Errorf("leaf %d added to a tree of size %d", n, t.size)
	}
	hashes, err := tlog.StoredHashesForRecordHash(n, leaf, &t.f)
	if err != nil {
		return err
	}
	base := tlog.StoredHashIndex(0, n)
	for i := range hashes {
		t.f.set(i, base+int64(i), hashes[i])
		if i%tileHeight != 0 {
			continue
		}
		level := i / tileHeight
		if level == len(t.partial) {
			t.partial = append(t.partial, make([]byte, 0, tileBytes))
		}
		t.partial[level] = append(t.partial[level], hashes[i][:]...)
		if len(t.partial[level]) == tileBytes {
			if err := set(tileKey(level, (n>>i)/tileWidth), t.partial[level]); err != nil {
				return err
			}
			t.partial[level] = make([]byte, 0, tileBytes)
		}
	}
	t.size = n + 1
	return nil
}

// treeSize returns the number of entries as committed in txn.
func treeSize(txn *badger.Txn) (int64, error) {
	item, err := txn.Get(metaKey)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	var count uint64
	err = item.Value(func(v []byte) error {
		var err error
		_, count, err = decodeMeta(v)
		return err
	})
	return int64(count), err
}

// TreeHead returns the size of the ledger's Merkle tree (its entry count)
// and its root hash, from one consistent read.
func (s *Store) TreeHead(ctx context.Context) (size int64, root tlog.Hash, err error) {
	err = s.view(ctx, func(txn *badger.Txn) error {
		if size, err = treeSize(txn); err != nil {
			return err
		}
		r, n, err := s.txnTree(txn)
		if err != nil {
			return err
		}
		size = n
		root, err = tlog.TreeHash(size, r)
		return err
	})
	return size, root, err
}

// RootAt returns the root hash of the ledger's Merkle tree at size size, an
// earlier size of the tree or its current one: what a checkpoint of that
// size must hold (package witness compares other replicas' checkpoints with
// it). It returns EINVALID unless 0 <= size <= Count().
func (s *Store) RootAt(ctx context.Context, size int64) (tlog.Hash, error) {
	var root tlog.Hash
	err := s.view(ctx, func(txn *badger.Txn) error {
		r, count, err := s.txnTree(txn)
		if err != nil {
			return err
		}
		if size < 0 || size > count {
			return ledger.Errorf(ledger.EINVALID, "need 0 <= size <= %d (the ledger's size), got %d", count, size)
		}
		root, err = tlog.TreeHash(size, r)
		return err
	})
	return root, err
}

// SaveCheckpoint stores the signed checkpoint of tree size size in its own
// transaction. Its key is disjoint from every key a batch writes, so it does
// not disturb the one writer (see package checkpoint).
func (s *Store) SaveCheckpoint(size int64, signed []byte) error {
	s.side.RLock()
	defer s.side.RUnlock()
	err := s.db.Update(func(txn *badger.Txn) error {
		return txn.Set(checkpointKey(size), signed)
	})
	if errors.Is(err, badger.ErrDBClosed) {
		return ledger.Errorf(ledger.EUNAVAILABLE, "ledger is closed")
	}
	if err != nil {
		return fmt.Errorf("store: save checkpoint: %w", err)
	}
	return nil
}

// CheckpointSizes returns the tree sizes of the signed checkpoints stored,
// in increasing order, from the first size greater than after; at most limit
// of them, and more when there are others past them.
func (s *Store) CheckpointSizes(ctx context.Context, after int64, limit int) (sizes []int64, more bool, err error) {
	err = s.view(ctx, func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixCheckpoint}})
		defer it.Close()
		for it.Seek(checkpointKey(after + 1)); it.Valid(); it.Next() {
			if len(sizes) == limit {
				more = true
				return nil
			}
			k := it.Item().Key()
			sizes = append(sizes, int64(binary.BigEndian.Uint64(k[1:])))
		}
		return nil
	})
	return sizes, more, err
}

// LatestCheckpoint returns the signed checkpoint of the largest tree size
// stored, or nil if there is none.
func (s *Store) LatestCheckpoint(ctx context.Context) ([]byte, error) {
	var out []byte
	err := s.view(ctx, func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixCheckpoint}, Reverse: true})
		defer it.Close()
		it.Seek(checkpointKey(-1)) // all ones: after every checkpoint key
		if !it.Valid() {
			return nil
		}
		var err error
		out, err = it.Item().ValueCopy(nil)
		return err
	})
	return out, err
}

// Checkpoint returns the signed checkpoint of tree size size, or the latest
// one when size is 0. It returns ENOTFOUND if there is none (checkpoints are
// signed at most once a second, so most sizes have none).
func (s *Store) Checkpoint(ctx context.Context, size int64) ([]byte, error) {
	if size < 0 {
		return nil, ledger.Errorf(ledger.EINVALID, "size must not be negative")
	}
	if size == 0 {
		cp, err := s.LatestCheckpoint(ctx)
		if err == nil && cp == nil {
			err = ledger.Errorf(ledger.ENOTFOUND, "no checkpoint signed yet")
		}
		return cp, err
	}
	var out []byte
	err := s.view(ctx, func(txn *badger.Txn) error {
		item, err := txn.Get(checkpointKey(size))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return ledger.Errorf(ledger.ENOTFOUND, "no checkpoint of tree size %d", size)
		}
		if err != nil {
			return err
		}
		out, err = item.ValueCopy(nil)
		return err
	})
	return out, err
}

// InclusionProof proves that entry seq is in the tree of size size, which
// defaults (0) to the current size. It returns EINVALID unless
// 1 <= seq <= size <= Count().
func (s *Store) InclusionProof(ctx context.Context, seq, size int64) (*checkpoint.InclusionProof, error) {
	var p *checkpoint.InclusionProof
	err := s.view(ctx, func(txn *badger.Txn) error {
		r, count, err := s.txnTree(txn)
		if err != nil {
			return err
		}
		if size == 0 {
			size = count
		}
		if seq < 1 || seq > size || size > count {
			return ledger.Errorf(ledger.EINVALID, "need 1 <= seq <= size <= %d (the ledger's size), got seq %d, size %d", count, seq, size)
		}
		leaf, err := r.ReadHashes([]int64{tlog.StoredHashIndex(0, seq-1)})
		if err != nil {
			return err
		}
		proof, err := tlog.ProveRecord(size, seq-1, r)
		if err != nil {
			return err
		}
		if proof == nil {
			proof = []tlog.Hash{}
		}
		p = &checkpoint.InclusionProof{Seq: seq, LeafIndex: seq - 1, TreeSize: size, LeafHash: leaf[0], Proof: proof}
		return nil
	})
	return p, err
}

// ConsistencyProof proves that the tree of size from is a prefix of the tree
// of size to, which defaults (0) to the current size. It returns EINVALID
// unless 1 <= from <= to <= Count().
func (s *Store) ConsistencyProof(ctx context.Context, from, to int64) (*checkpoint.ConsistencyProof, error) {
	var p *checkpoint.ConsistencyProof
	err := s.view(ctx, func(txn *badger.Txn) error {
		r, count, err := s.txnTree(txn)
		if err != nil {
			return err
		}
		if to == 0 {
			to = count
		}
		if from < 1 || from > to || to > count {
			return ledger.Errorf(ledger.EINVALID, "need 1 <= from <= to <= %d (the ledger's size), got from %d, to %d", count, from, to)
		}
		proof, err := tlog.ProveTree(to, from, r)
		if err != nil {
			return err
		}
		if proof == nil {
			proof = []tlog.Hash{}
		}
		p = &checkpoint.ConsistencyProof{From: from, To: to, Proof: proof}
		return nil
	})
	return p, err
}
