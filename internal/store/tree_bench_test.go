package store

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	mrand "math/rand/v2"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// BenchmarkTreeAppend measures the Merkle tree's part of Batch.Append
// alone: batches of leaves of 600-byte values (about an entry's size) added
// with addLeaf and committed, one transaction and one sync per batch, as the
// ingest loop does. One op is one leaf. It reports the process's CPU time
// per leaf (the commits and Badger's background work included), and the
// tree's keys and bytes (key and value) per leaf as they stand after the
// run, read back from Badger ('h': one key per stored hash; 'T': tiles),
// and the bytes the commits wrote for the tree (tiles rewritten included).
func BenchmarkTreeAppend(b *testing.B) {
	for _, size := range []int{1000, 10} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			s := openTest(b, testConfig(b))
			value := make([]byte, 600)
			rand.Read(value)
			var seq uint64
			var written int64
			cpu := cpuTime(b)
			b.ResetTimer()
			for seq < uint64(b.N) {
				bt := s.Begin()
				for range size {
					if seq == uint64(b.N) {
						break
					}
					seq++
					binary.BigEndian.PutUint64(value, seq) // every leaf differs
					if err := bt.addLeaf(seq, value); err != nil {
						b.Fatal(err)
					}
				}
				bt.count = seq
				for id := range bt.tree.dirty { // what the commit writes of the tree
					written += int64(len(tileKey(id.level, id.n)) + len(bt.tree.cache[id]))
				}
				if err := bt.Commit(seq); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			leaves := float64(b.N)
			b.ReportMetric(float64(cpuTime(b)-cpu)/float64(time.Microsecond)/leaves, "cpu-µs/leaf")
			keys, bytes := treeFootprint(b, s)
			b.ReportMetric(float64(keys)/leaves, "keys/leaf")
			b.ReportMetric(float64(bytes)/leaves, "B/leaf")
			b.ReportMetric(float64(written)/leaves, "written-B/leaf")
		})
	}
}

// treeFootprint counts the tree's keys and their key and value bytes.
func treeFootprint(tb testing.TB, s *Store) (keys, bytes int64) {
	err := s.db.View(func(txn *badger.Txn) error {
		for _, p := range []byte{'h', 'T'} {
			it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{p}})
			for it.Rewind(); it.Valid(); it.Next() {
				keys++
				bytes += int64(len(it.Item().Key())) + it.Item().ValueSize()
			}
			it.Close()
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return keys, bytes
}

// BenchmarkTreeReads times the reads of the tree over a ledger of 100,000
// leaves (added as BenchmarkTreeAppend adds them): TreeHead, an inclusion
// proof of a random leaf in the current tree, and a consistency proof from
// a random size.
func BenchmarkTreeReads(b *testing.B) {
	s := openTest(b, testConfig(b))
	value := make([]byte, 600)
	const leaves = 100_000
	for seq := uint64(0); seq < leaves; {
		bt := s.Begin()
		for range 1000 {
			seq++
			binary.BigEndian.PutUint64(value, seq)
			if err := bt.addLeaf(seq, value); err != nil {
				b.Fatal(err)
			}
		}
		bt.count = seq
		if err := bt.Commit(seq); err != nil {
			b.Fatal(err)
		}
	}
	ctx := context.Background()
	rng := mrand.New(mrand.NewPCG(1, 2))
	b.Run("TreeHead", func(b *testing.B) {
		for range b.N {
			if _, _, err := s.TreeHead(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("InclusionProof", func(b *testing.B) {
		for range b.N {
			if _, err := s.InclusionProof(ctx, 1+rng.Int64N(leaves), 0); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ConsistencyProof", func(b *testing.B) {
		for range b.N {
			if _, err := s.ConsistencyProof(ctx, 1+rng.Int64N(leaves), 0); err != nil {
				b.Fatal(err)
			}
		}
	})
}
