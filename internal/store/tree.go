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
	prefixTreeHash   = 'h' // h index(8)  -> hash(32): tlog stored hash number index
	prefixCheckpoint = 'c' // c size(8)   -> signed checkpoint note of that tree size
)

// treeHashKey is the key of tlog's stored hash number index.
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

// txnHashes reads stored tree hashes in a Badger transaction; in a batch it
// sees the batch's own pending hashes.
type txnHashes struct{ txn *badger.Txn }

// ReadHashes implements tlog.HashReader.
func (r txnHashes) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, idx := range indexes {
		item, err := r.txn.Get(treeHashKey(idx))
		if err != nil {
			if errors.Is(err, badger.ErrKeyNotFound) {
				return nil, fmt.Errorf("store: tree hash %d missing", idx)
			}
			return nil, err
		}
		if err := item.Value(func(v []byte) error {
			if len(v) != tlog.HashSize {
				return fmt.Errorf("store: tree hash %d: %w", idx, errCorrupt)
			}
			copy(out[i][:], v)
			return nil
		}); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// treeEdge is the right edge of the Merkle tree at size entries: the newest
// stored hash of each level, the only hashes tlog.StoredHashes reads when
// leaf size is added. The writer keeps it in memory so that appending reads
// no tree hash from Badger: the store holds the edge of its last commit
// (Store.edge), and a batch works on a copy of its own, which the store takes
// at Commit, so that a discarded batch leaves no trace in it.
type treeEdge struct {
	size int64
	f    frontier
}

// loadTreeEdge reads the right edge of the tree of size entries in txn:
// one stored hash per level.
func loadTreeEdge(txn *badger.Txn, size int64) (*treeEdge, error) {
	e := &treeEdge{size: size}
	for level := 0; size>>level > 0; level++ {
		idx := tlog.StoredHashIndex(level, size>>level-1)
		h, err := txnHashes{txn}.ReadHashes([]int64{idx})
		if err != nil {
			return nil, err
		}
		e.f.set(level, idx, h[0])
	}
	return e, nil
}

// clone returns a copy of e that can be changed without changing e.
func (e *treeEdge) clone() *treeEdge {
	return &treeEdge{size: e.size, f: append(frontier(nil), e.f...)}
}

// addLeaf adds the entry value of entry seq to the tree: it writes the tree
// hashes that become known with leaf seq-1 (about two on average), reading
// the ones it combines them with from the batch's edge of the tree.
func (b *Batch) addLeaf(seq uint64, value []byte) error {
	n := int64(seq - 1)
	if b.edge == nil {
		e := b.s.edge
		if e == nil || e.size != n {
			// First batch since Open, or a commit whose outcome is
			// unknown: the edge is read from what Badger holds.
			var err error
			if e, err = loadTreeEdge(b.txn, n); err != nil {
				return b.fail(fmt.Errorf("store: tree: %w", err))
			}
		}
		b.edge = e.clone()
	}
	if b.edge.size != n {
		return b.fail(fmt.Errorf("store: tree: leaf %d added to a tree of size %d", n, b.edge.size))
	}
	hashes, err := tlog.StoredHashes(n, value, &b.edge.f)
	if err != nil {
		return b.fail(fmt.Errorf("store: tree: %w", err))
	}
	base := tlog.StoredHashIndex(0, n)
	for i := range hashes {
		if err := b.set(treeHashKey(base+int64(i)), hashes[i][:]); err != nil {
			return err
		}
		b.edge.f.set(i, base+int64(i), hashes[i])
	}
	b.edge.size = n + 1
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
		root, err = tlog.TreeHash(size, txnHashes{txn})
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
		root, err = tlog.TreeHash(size, txnHashes{txn})
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
		r := txnHashes{txn}
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
		proof, err := tlog.ProveTree(to, from, txnHashes{txn})
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
