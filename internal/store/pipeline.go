package store

import (
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"
)

// This file lets the one writer append a batch while Badger writes and
// syncs the one before (CommitNext): see "Writing" in doc.go.
//
// Badger opens a transaction at a read timestamp that waits for every
// commit issued before it, so the next batch's transaction is opened just
// before this batch's commit is issued, and its snapshot lacks this batch's
// writes. The next batch starts from this batch's state kept in memory
// (applied stream sequence, count, Merkle tail, indexedBy, recipients,
// profiles; salts through the store's cache), and everything it reads from
// Badger is checked by Badger's conflict detection (Options.DetectConflicts):
// the commit of a transaction that read a key another transaction committed
// after its read timestamp fails with badger.ErrConflict, here
// ErrSpeculationFailed. Conflict detection covers the keys read, not the
// keys another commit adds to a range scanned, so a speculative batch does
// not scan (iterator): it fails with ErrSpeculationFailed instead.

// CommitNext commits the batch as Commit does, without waiting for Badger
// to write and sync it, and returns the next batch, opened before this
// one's commit and starting where it ends: the caller appends the
// following events to it while Badger writes this one. The next batch's
// Commit, CommitNext and Discard wait for this one's commit first, and a
// failure of it fails the next batch too: at most one commit is in flight,
// and commits complete in order.
//
// Once the commit is issued, done (when not nil) is called with its
// outcome, from another goroutine, before the next batch's commit is
// issued: when the batch is durable (Badger's readers see it), just before
// Applied, Count and WaitApplied reflect it, or with the error that failed
// it. An error CommitNext returns itself (the batch's, or its
// predecessor's) means no commit was issued.
//
// The next batch's snapshot lacks this batch's writes: when it reads a key
// this batch wrote, or scans keys, its Append or commit fails with an error
// wrapping ErrSpeculationFailed, and its events must be applied again once
// this batch is settled.
//
// The one writer's lock passes to the next batch. CommitNext commits and
// waits like Commit, returning a nil batch (and the commit's error, done
// being called too), when the ledger takes shared secrets (Config.Secrets:
// replicas fold the stream one batch at a time) or when Compact or the
// dedupe filter's growth waits for the writer (lockWriter).
func (b *Batch) CommitNext(lastStreamSeq uint64, done func(error)) (*Batch, error) {
	if b.s.secrets != nil || b.s.writerWanted.Load() > 0 {
		return nil, b.commit(lastStreamSeq, done)
	}
	if err := b.check(); err != nil {
		b.Discard()
		return nil, err
	}
	if err := b.settle(); err != nil {
		b.Discard()
		return nil, err
	}
	if err := b.seal(lastStreamSeq); err != nil {
		b.Discard()
		return nil, err
	}
	next := b.s.begin(b) // now: once b's commit is issued, Badger would make it wait for it
	// The next batch may need the salts b read or made: they are Badger's
	// once b commits, and leave the cache again if it fails (settle).
	b.cacheSalts()
	b.done = true // the writer's lock is next's now
	b.issue(done)
	return next, nil
}

// lockWriter takes the one writer's lock from outside the batches: a
// pipeline passes it from batch to batch (CommitNext) until it sees it
// wanted.
func (s *Store) lockWriter() {
	s.writerWanted.Add(1)
	s.writer.Lock()
	s.writerWanted.Add(-1)
}

// issue issues the batch's commit; committed runs when it is durable or
// has failed.
func (b *Batch) issue(done func(error)) {
	b.onDone = done
	b.finished = make(chan struct{})
	b.txn.CommitWith(b.committed)
}

// committed publishes a durable batch (in commit order: the next batch's
// commit waits for it), or forgets what the store knows of one that failed.
func (b *Batch) committed(err error) {
	s := b.s
	if err == nil {
		if b.tail != nil {
			s.tail.Store(b.tail)
		}
		if b.markIndexedBy {
			s.indexedBy.Store(b.indexedBy)
		}
		for h, p := range b.profiles {
			s.profiles.put([]byte(h), p)
		}
		// The registry before onDone: the ingest's hook wakes the notice
		// dispatcher, which looks up the recipients of the obligations
		// this batch opened, and may have registered.
		if b.after != nil {
			s.recipients.Store(b.after)
		}
		if b.onDone != nil {
			b.onDone(nil) // before WaitApplied callers wake: they see its effects
		}
		s.published(b.lastStreamSeq, b.count)
	} else {
		s.tail.Store(nil) // whether Badger holds the batch is unknown: read the tail again
		if b.spec && errors.Is(err, badger.ErrConflict) {
			err = fmt.Errorf("%w: %w", ErrSpeculationFailed, err)
		}
		err = fmt.Errorf("store: commit: %w", err)
		if b.onDone != nil {
			b.onDone(err)
		}
	}
	b.result = err
	close(b.finished)
}

// settle waits for the commit of the batch's predecessor, if one is in
// flight, and returns its error, which fails the batch. The salts of a
// failed predecessor leave the store's cache (CommitNext put them in), and
// so do the keys it put in the cache of keys to seal with.
func (b *Batch) settle() error {
	p := b.prev
	if p == nil {
		return nil
	}
	b.prev = nil
	<-p.finished
	if p.result == nil {
		return nil
	}
	p.uncacheSalts()
	p.uncacheSealers()
	return b.fail(fmt.Errorf("store: the batch before failed: %w", p.result))
}

// Settle waits for the commit of the batch's predecessor (CommitNext), if
// one is in flight, and returns its error, which fails the batch: an error
// wrapping ErrSpeculationFailed says its events must be applied again. A
// batch that ends with Discard without committing must be settled first
// when its predecessor's outcome matters: Discard does not say it.
func (b *Batch) Settle() error {
	if err := b.check(); err != nil {
		return err
	}
	return b.settle()
}

// settled is settle when the predecessor's commit has completed, and nil
// at once while it is in flight: Append stops early on a batch that will
// fail with its predecessor.
func (b *Batch) settled() error {
	if b.prev == nil {
		return nil
	}
	select {
	case <-b.prev.finished:
		return b.settle()
	default:
		return nil
	}
}

// iterator opens an iterator on the batch's transaction: every scan of a
// batch goes through it. A speculative batch cannot trust a scan (Badger
// checks the keys read, not those another commit adds to the range), so
// it fails with ErrSpeculationFailed.
func (b *Batch) iterator(opt badger.IteratorOptions) (*badger.Iterator, error) {
	if b.spec {
		return nil, b.fail(fmt.Errorf("%w: a scan of keys with prefix %q", ErrSpeculationFailed, opt.Prefix[:min(len(opt.Prefix), 1)]))
	}
	return b.txn.NewIterator(opt), nil
}
