package store

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/bits-and-blooms/bloom/v3"
	"github.com/dgraph-io/badger/v4"
)

// This file keeps a Bloom filter of the ledger's dedupe keys (d H16(id)
// H16(source)) in memory, so that Append skips the Badger lookup of the
// dedupe key of an event the ledger has certainly never recorded: almost
// every event, whose lookup otherwise misses after searching the memtables
// and the tables' own Bloom filters (about 6% of ingest's CPU at 1M
// events, on the writer's serial path).
//
// The filter is trusted only once it holds every d key of the ledger. Open
// starts it empty and builds it in the background: a key-only scan of the
// d prefix on a read snapshot, while the writer adds every d key it writes
// when it writes it, in the batch, before commit. Until the scan ends,
// Append looks every key up in Badger, as before. Members never wrong the
// ledger, only cost a lookup: the keys of a discarded batch stay in, and
// a false positive (about 1%) is a lookup that misses. No key is ever
// missing: d keys are never deleted (forgetting keeps them, so a replay of
// a forgotten event is still a duplicate), and the store is the only
// writer of d keys but Restore, which starts the filter once Badger has
// loaded the backup.
//
// The snapshot is taken holding s.writer, right after the filter to build
// is installed: every batch that added d keys before that point has ended,
// committed (Badger's read transaction waits for commits that hold a
// timestamp, so the snapshot sees them) or discarded (nothing to find);
// every batch after adds its keys itself. A change that releases s.writer
// before a batch's commit has its timestamp must keep that true.
//
// The filter is sized for twice the ledger's entries at Open (one d key
// per entry), seenMinCapacity at least, at seenFalsePositive: 9.6 bits
// per key of capacity (k = 7). When the keys outgrow that, a filter for
// twice as many is built in the background the same way, the writer adding
// to both, and replaces it; the full one meanwhile answers with more false
// positives, never a false negative.
const (
	seenFalsePositive = 0.01
	seenMinCapacity   = 4 << 20 // 4.8 MiB of filter
	seenChunk         = 4096    // keys the scan adds to the filter at a time
)

// seen is the filter and its builds. Its fields are guarded by mu: the
// writer tests and adds (holding s.writer as well), a build adds the
// scanned keys and installs the filter it built.
type seen struct {
	mu      sync.Mutex
	cur     *bloom.BloomFilter // holds every d key of the ledger; nil until the first build ends
	curCap  uint               // keys cur was sized for
	curN    uint               // keys added to cur, at least the d keys it holds
	next    *bloom.BloomFilter // being built; nil when no build runs
	nextCap uint
	nextN   uint
	growing bool          // a build is starting or running
	failed  bool          // a build failed: stay with cur (or with no filter) until the ledger is opened again
	built   chan struct{} // closed when the last build started has ended
	closing bool          // Close was called: no build starts
	skipped uint64        // Badger lookups the filter saved (tests read it)
	builds  sync.WaitGroup

	gate chan<- chan struct{} // Config.seenGate: tests hold a build before its scan
}

// mayHave reports whether the ledger or an open batch may hold the dedupe
// key dkey: false means it certainly holds it nowhere. The writer calls
// it.
func (f *seen) mayHave(dkey []byte) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cur == nil || f.cur.Test(dkey[1:]) {
		return true
	}
	f.skipped++
	return false
}

// add records the dedupe key dkey, written in the writer's batch, in the
// filter and in the one being built. It reports whether the filter has
// outgrown its capacity and a larger one is to be built: growing is then
// set, and the caller starts the build.
func (f *seen) add(dkey []byte) (grow bool) {
	// The key is already 32 bytes of SHA-256: the filter hashes them again
	// (murmur3, tens of nanoseconds), as its API takes no hashes.
	k := dkey[1:]
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cur != nil {
		f.cur.Add(k)
		f.curN++
	}
	if f.next != nil {
		f.next.Add(k)
		f.nextN++
	}
	if f.cur == nil || f.curN <= f.curCap || f.growing || f.failed || f.closing {
		return false
	}
	f.starting()
	return true
}

// starting marks a build as started. The caller holds mu.
func (f *seen) starting() {
	f.growing = true
	f.built = make(chan struct{})
}

// ended marks the build as ended. The caller holds mu.
func (f *seen) ended() {
	f.next, f.growing = nil, false
	close(f.built)
}

// filterFor returns an empty filter for n keys.
func filterFor(n uint) *bloom.BloomFilter { return bloom.NewWithEstimates(n, seenFalsePositive) }

// startSeen starts building the filter of an opened ledger, sized for
// twice its entries. Nothing else uses the store yet.
func (s *Store) startSeen(cfg Config) {
	s.seen.gate = cfg.seenGate
	least := uint(seenMinCapacity)
	if cfg.seenCapacity > 0 {
		least = cfg.seenCapacity
	}
	capacity := max(2*uint(s.Count()), least)
	s.seen.mu.Lock()
	s.seen.starting()
	s.seen.mu.Unlock()
	s.buildSeen(filterFor(capacity), capacity)
}

// growSeen builds a filter for twice the keys the full one holds, in the
// background: it waits for the writer's batch to end.
func (s *Store) growSeen() {
	s.seen.mu.Lock()
	capacity := 2 * s.seen.curN
	s.seen.mu.Unlock()
	go func() {
		f := filterFor(capacity)
		s.lockWriter()
		defer s.writer.Unlock()
		s.buildSeen(f, capacity)
	}()
}

// buildSeen installs f, empty, as the filter the writer adds to, takes the
// snapshot to scan, and scans it in the background. The caller holds
// s.writer, or has the store to itself.
func (s *Store) buildSeen(f *bloom.BloomFilter, capacity uint) {
	sn := &s.seen
	sn.mu.Lock()
	if sn.closing {
		sn.ended()
		sn.mu.Unlock()
		return
	}
	sn.next, sn.nextCap, sn.nextN = f, capacity, 0
	sn.builds.Add(1)
	sn.mu.Unlock()
	txn := s.db.NewTransaction(false)
	go func() {
		defer sn.builds.Done()
		defer txn.Discard()
		start := time.Now()
		err := s.scanSeen(txn, f)
		sn.mu.Lock()
		defer sn.mu.Unlock()
		switch {
		case err == nil:
			sn.cur, sn.curCap, sn.curN = f, sn.nextCap, sn.nextN
			s.log.Info("dedupe filter built", "keys", sn.curN, "capacity", sn.curCap,
				"bytes", f.BitSet().Len()/8, "took", time.Since(start).Round(time.Millisecond))
		case !errors.Is(err, errClosed):
			sn.failed = true
			s.log.Error("dedupe filter not built: every append looks its event up in the ledger", "err", err)
		}
		sn.ended()
	}()
}

// errClosed stops a build when the store is closed.
var errClosed = errors.New("store: closed")

// scanSeen adds to f every d key txn sees, keys only, seenChunk at a time:
// the writer waits for the filter only while a chunk is added.
func (s *Store) scanSeen(txn *badger.Txn, f *bloom.BloomFilter) error {
	if s.seen.gate != nil { // tests: say the build is here, wait to be let go
		release := make(chan struct{})
		select {
		case s.seen.gate <- release:
		case <-s.closed:
			return errClosed
		}
		select {
		case <-release:
		case <-s.closed:
			return errClosed
		}
	}
	it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixDedupe}, PrefetchValues: false})
	defer it.Close()
	keys := make([]byte, 0, seenChunk*2*idHashLen)
	flush := func() {
		s.seen.mu.Lock()
		for k := keys; len(k) > 0; k = k[2*idHashLen:] {
			f.Add(k[:2*idHashLen])
			s.seen.nextN++
		}
		s.seen.mu.Unlock()
		keys = keys[:0]
	}
	for it.Rewind(); it.Valid(); it.Next() {
		k := it.Item().Key()
		if len(k) != 1+2*idHashLen {
			return fmt.Errorf("store: dedupe key of %d bytes: %w", len(k), errCorrupt)
		}
		keys = append(keys, k[1:]...)
		if len(keys) == cap(keys) {
			flush()
			select {
			case <-s.closed:
				return errClosed
			default:
			}
		}
	}
	flush()
	return nil
}

// closeSeen stops the builds, for Close: a running scan stops at its next
// chunk, and none starts.
func (s *Store) closeSeen() {
	s.seen.mu.Lock()
	s.seen.closing = true
	s.seen.mu.Unlock()
	s.seen.builds.Wait()
}
