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
	prefixTile       = 'T' // T level(1) n(8) -> hashes(32 each): tile n of that tile level (tileHeight)
	prefixTreeHash   = 'h' // h index(8)      -> hash(32): tlog stored hash number index, as ledgers kept it before tiles
	prefixCheckpoint = 'c' // c size(8)       -> signed checkpoint note of that tree size
)

// The tree is stored in tiles, as the Go checksum database and Tessera
// store theirs (tlog.Tile): tile n of tile level L holds, in order, the up to
// 256 hashes of tree level 8L from number 256n; the levels between are hashed
// again from them when read. A batch writes the tiles it changed: full tiles
// once, the partial tile at the right edge of each level again until it is
// full (its value grows; its width is its length / 32).
//
// Ledgers written before kept one 'h' key per stored hash. Their tree is
// read as it is, never rewritten (Verify opens ledgers read-only): a tile
// is read as its 'T' value followed by the 'h' hashes of its level and
// positions after it, so that their full tiles are read from 'h' keys, and
// the first batch that extends their partial tiles writes them as 'T' keys.
// Their 'h' hashes of the levels between tile levels are no longer read.
const (
	tileHeight = 8
	tileWidth  = 1 << tileHeight // hashes in a full tile
	tileCache  = 64              // tiles a tiles reader keeps before dropping those it has not changed
)

// tileKey is the key of tile n of tile level level.
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

// tileID names a tile: its tile level and number.
type tileID struct {
	level int
	n     int64
}

// tiles reads the tree's stored hashes from its tiles in a Badger
// transaction (a tlog.HashReader), and in a batch adds leaves to them. It
// keeps the tiles it read or changed, and the last hash it added at each
// tree level: the only ones tlog reads to add the next leaf or to hash the
// tree, so that a batch reads tiles only for its first leaf.
type tiles struct {
	txn   *badger.Txn
	cache map[tileID][]byte // tile data read or changed in txn
	dirty map[tileID]bool   // changed, to write by flush
	last  [64]struct {      // the last hash added at each tree level
		index int64 // its stored hash index
		hash  tlog.Hash
		ok    bool
	}
}

func newTiles(txn *badger.Txn) *tiles {
	return &tiles{txn: txn, cache: make(map[tileID][]byte), dirty: make(map[tileID]bool)}
}

// tile returns the data of tile id as stored: its 'T' value, followed by
// the 'h' hashes a ledger written before tiles holds after it. The data is
// shorter than a full tile's at the right edge, and empty beyond it.
func (t *tiles) tile(id tileID) ([]byte, error) {
	if data, ok := t.cache[id]; ok {
		return data, nil
	}
	var data []byte
	item, err := t.txn.Get(tileKey(id.level, id.n))
	switch {
	case errors.Is(err, badger.ErrKeyNotFound):
	case err != nil:
		return nil, err
	default:
		if data, err = item.ValueCopy(make([]byte, 0, tileWidth*tlog.HashSize)); err != nil {
			return nil, err
		}
		if len(data)%tlog.HashSize != 0 || len(data) > tileWidth*tlog.HashSize {
			return nil, fmt.Errorf("tree tile %d/%d holds %d bytes, not whole hashes: %w", id.level, id.n, len(data), errCorrupt)
		}
	}
	for k := len(data) / tlog.HashSize; k < tileWidth; k++ {
		item, err := t.txn.Get(treeHashKey(tlog.StoredHashIndex(id.level*tileHeight, id.n*tileWidth+int64(k))))
		if errors.Is(err, badger.ErrKeyNotFound) {
			break
		}
		if err != nil {
			return nil, err
		}
		if item.ValueSize() != tlog.HashSize {
			return nil, fmt.Errorf("tree hash of tile %d/%d not a hash: %w", id.level, id.n, errCorrupt)
		}
		if err := item.Value(func(v []byte) error { data = append(data, v...); return nil }); err != nil {
			return nil, err
		}
	}
	if len(t.cache) >= tileCache {
		for k := range t.cache {
			if !t.dirty[k] {
				delete(t.cache, k)
			}
		}
	}
	t.cache[id] = data
	return data, nil
}

// ReadHashes implements tlog.HashReader.
func (t *tiles) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, idx := range indexes {
		level, _ := tlog.SplitStoredHashIndex(idx)
		if l := &t.last[level]; l.ok && l.index == idx {
			out[i] = l.hash
			continue
		}
		tile := tlog.TileForIndex(tileHeight, idx)
		data, err := t.tile(tileID{tile.L, tile.N})
		if err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
		if len(data) < tile.W*tlog.HashSize {
			return nil, fmt.Errorf("store: tree hash %d missing", idx)
		}
		tile.W = len(data) / tlog.HashSize
		if out[i], err = tlog.HashFromTile(tile, data, idx); err != nil {
			return nil, fmt.Errorf("store: tree hash %d: %w", idx, err)
		}
	}
	return out, nil
}

// stored returns the stored hash number n of tree level level, a multiple
// of tileHeight, and whether it is stored.
func (t *tiles) stored(level int, n int64) (tlog.Hash, bool, error) {
	var h tlog.Hash
	data, err := t.tile(tileID{level / tileHeight, n / tileWidth})
	if err != nil {
		return h, false, err
	}
	off := int(n%tileWidth) * tlog.HashSize
	if len(data) < off+tlog.HashSize {
		return h, false, nil
	}
	copy(h[:], data[off:])
	return h, true, nil
}

// add adds leaf n, of record hash leaf, to the tree: it computes the hashes
// the leaf completes and appends those of tile levels to their tiles, which
// flush writes.
func (t *tiles) add(n int64, leaf tlog.Hash) error {
	hashes, err := tlog.StoredHashesForRecordHash(n, leaf, t)
	if err != nil {
		return err
	}
	for level, h := range hashes {
		t.last[level].index, t.last[level].hash, t.last[level].ok = tlog.StoredHashIndex(level, n>>level), h, true
		if level%tileHeight != 0 {
			continue
		}
		p := n >> level // the hash's number in its level
		id := tileID{level / tileHeight, p / tileWidth}
		data, err := t.tile(id)
		if err != nil {
			return err
		}
		if len(data) != int(p%tileWidth)*tlog.HashSize {
			return fmt.Errorf("tile %d/%d holds %d hashes, want %d before leaf %d: %w", id.level, id.n, len(data)/tlog.HashSize, p%tileWidth, n, errCorrupt)
		}
		t.cache[id] = append(data, h[:]...)
		t.dirty[id] = true
	}
	return nil
}

// flush writes the tiles changed since the last flush with set.
func (t *tiles) flush(set func(key, value []byte) error) error {
	for id := range t.dirty {
		if err := set(tileKey(id.level, id.n), t.cache[id]); err != nil {
			return err
		}
		delete(t.dirty, id)
	}
	return nil
}

// addLeaf adds the entry value of entry seq to the tree (leaf seq-1); the
// tiles it changes are written by flushTree when the batch commits.
func (b *Batch) addLeaf(seq uint64, value []byte) error {
	if b.tree == nil {
		b.tree = newTiles(b.txn)
	}
	if err := b.tree.add(int64(seq-1), tlog.RecordHash(value)); err != nil {
		return b.fail(fmt.Errorf("store: tree: %w", err))
	}
	return nil
}

// flushTree writes the tiles the batch changed, in its transaction.
func (b *Batch) flushTree() error {
	if b.tree == nil {
		return nil
	}
	return b.tree.flush(b.set)
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
		root, err = tlog.TreeHash(size, newTiles(txn))
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
		count, err := treeSize(txn)
		if err != nil {
			return err
		}
		if size < 0 || size > count {
			return ledger.Errorf(ledger.EINVALID, "need 0 <= size <= %d (the ledger's size), got %d", count, size)
		}
		root, err = tlog.TreeHash(size, newTiles(txn))
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
		count, err := treeSize(txn)
		if err != nil {
			return err
		}
		if size == 0 {
			size = count
		}
		if seq < 1 || seq > size || size > count {
			return ledger.Errorf(ledger.EINVALID, "need 1 <= seq <= size <= %d (the ledger's size), got seq %d, size %d", count, seq, size)
		}
		r := newTiles(txn)
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
		count, err := treeSize(txn)
		if err != nil {
			return err
		}
		if to == 0 {
			to = count
		}
		if from < 1 || from > to || to > count {
			return ledger.Errorf(ledger.EINVALID, "need 1 <= from <= to <= %d (the ledger's size), got from %d, to %d", count, from, to)
		}
		proof, err := tlog.ProveTree(to, from, newTiles(txn))
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
