package store

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/sharelog/sharelog/internal/ledger"
)

// This file holds forgetting: what org.sharelog.subject.forgotten.v1 does
// to the ledger, and the physical erasure that follows.
//
// Forgetting a subject, in the transaction of its entry, deletes:
//
//   - the subject's salt (a L16) and locator (z K16): with the salt goes
//     the subject's key, which seals the personal part of every entry
//     naming only this subject (requests, answers and holds are listed by
//     y K16 seq, disclosures by their subject index keys s K16 at seq,
//     and in ledgers written before indexedByKey by y too), and no identifier hashes to the keyed
//     hash any more, so the pseudonymous records left cannot be linked to
//     the person. The clear part of each entry stays, and so does every
//     Merkle leaf, since entry values are never rewritten;
//   - the data key (k seq) of every entry naming the subject with others:
//     a disclosure of several people becomes unreadable for all of them.
//     Their subject indexes stay, so Who still answers for the others;
//   - its index entries: subject index (s), obligations by subject (j),
//     requests by subject (g), erasure markers (x) and the sealed notices
//     (n) of its obligations.
//
// It keeps the obligations (o), the request records (q, now with
// ForgottenAt) and the disclosure's clear facts: the evidence that every
// recipient was told. Exemption justifications in the obligations and the
// reasons of subject holds are blanked.
//
// A forgetting is Rejected (ReasonConflict) for a subject the ledger does
// not know (never seen, or already forgotten) and for one an active legal
// hold covers (holds.go). Only sharelog forgets: the event is refused
// unless it arrived on sharelog.in.notify.
//
// Each forgetting leaves a scrub record (i seq) naming the SHARELOG_IN
// messages of the subject's entries and its notices, which still hold the
// identifier in plain text; the retention job deletes them from JetStream
// (SecureDeleteMsg) and then the record (ScrubDone).

// scrubRecord names what JetStream still holds of a forgotten subject.
type scrubRecord struct {
	StreamSeqs []uint64 `json:"streamSeqs"`         // SHARELOG_IN messages of the subject's entries, their later deliveries and refused messages naming the subject
	Notices    []string `json:"notices"`            // notice ids, as sent on SHARELOG_NOTICES
	Rejected   []uint64 `json:"rejected,omitempty"` // SHARELOG_REJECTED messages naming the subject
}

// forget destroys the subject's keys and purges its indexes (see above).
func (b *Batch) forget(seq uint64, f *ledger.ForgetEffect) error {
	h, d := f.SubjectHash, f.Event
	loc, err := b.get(subjectLocKey(h))
	if err != nil {
		return b.fail(err)
	}
	var scrub scrubRecord
	var ownKeys []uint64 // stream seqs of the entries sealed under their own data key
	// The entries sealed for the subject: their stream messages to scrub,
	// and the data keys of those naming others too.
	keys, err := b.keysWithPrefix(sealedForPrefix(h))
	if err != nil {
		return err
	}
	// Disclosures are listed by the subject index; those written before
	// indexedByKey by y as well: each entry is handled once.
	sums, err := b.keysWithPrefix(subjectPrefix(h))
	if err != nil {
		return err
	}
	sealedFor := make(map[uint64]bool, len(keys))
	for _, k := range keys {
		sealedFor[binary.BigEndian.Uint64(k[len(k)-8:])] = true
	}
	for _, k := range sums {
		if s := binary.BigEndian.Uint64(k[len(k)-8:]); !sealedFor[s] {
			keys = append(keys, sealedForKey(h, s)) // written below for one naming others
		}
	}
	for _, k := range keys {
		s := binary.BigEndian.Uint64(k[len(k)-8:])
		eh, err := getEntryHeader(b.txn, nil, s)
		if err != nil {
			return b.fail(fmt.Errorf("store: forget: entry %d: %w", s, err))
		}
		scrub.StreamSeqs = append(scrub.StreamSeqs, eh.streamSeq)
		if err := b.scrubDeliveries(&scrub, s); err != nil { // replay.go
			return err
		}
		if eh.ref.subject == nil {
			// Sealed under its own data key: this entry names others too.
			if err := b.del(dataKeyKey(s)); err != nil {
				return err
			}
			ownKeys = append(ownKeys, eh.streamSeq)
			// The y key stays, or is written now for a disclosure that
			// had only its subject index key: it links the keyed hash,
			// which nothing can link to the person once the salt is
			// gone, to the entries that named it, so that verify can
			// still replay an entry naming several people after one of
			// them was forgotten.
			if !sealedFor[s] {
				if err := b.set(k, nil); err != nil {
					return err
				}
			}
		}
	}
	slices.Sort(ownKeys) // in stream order, as the y keys gave them
	// Subject index.
	for _, k := range sums {
		if err := b.del(k); err != nil {
			return err
		}
	}
	// Obligations by subject, and their sealed notices.
	obs, err := b.keysWithPrefix(subjectObligationPrefix(h))
	if err != nil {
		return err
	}
	for _, k := range obs {
		notice := string(k[1+subjectHashLen:])
		scrub.Notices = append(scrub.Notices, notice)
		if err := b.del(noticeKey(notice)); err != nil {
			return err
		}
		o, err := b.obligation(notice)
		if err != nil {
			return b.fail(err)
		}
		if o != nil && o.Forget() {
			if err := b.putObligation(o); err != nil {
				return err
			}
		}
		if err := b.del(k); err != nil {
			return err
		}
	}
	// Requests by subject: kept, marked forgotten.
	reqs, err := b.keysWithPrefix(subjectRequestPrefix(h))
	if err != nil {
		return err
	}
	for _, k := range reqs {
		rec, err := b.request(string(k[1+subjectHashLen:]))
		if err != nil {
			return b.fail(err)
		}
		if rec != nil {
			rec.Forget(f.At)
			if err := b.putRequest(rec); err != nil {
				return err
			}
		}
		if err := b.del(k); err != nil {
			return err
		}
	}
	// Released holds on the subject: reasons and who placed them may name people.
	hexHash := hex.EncodeToString(h)
	holds, err := b.keysWithPrefix([]byte{prefixHold})
	if err != nil {
		return err
	}
	for _, k := range holds {
		hr, err := getHold(b.txn, string(k[1:]))
		if err != nil {
			return b.fail(err)
		}
		if hr != nil && hr.SubjectHash == hexHash {
			hr.Forget()
			if err := b.putHold(hr); err != nil {
				return err
			}
		}
	}
	if err := b.scrubRefused(&scrub, loc); err != nil { // replay.go
		return err
	}
	if b.s.secrets != nil {
		// A replica: the shared secrets hold them too (secrets.go).
		names, err := b.shredNames(h, ownKeys)
		if err != nil {
			return err
		}
		v, err := json.Marshal(names)
		if err != nil {
			return b.fail(err)
		}
		if err := b.set(shredKey(seq), v); err != nil {
			return err
		}
	}
	for _, k := range [][]byte{erasureKey(h), subjectLocKey(h), saltKey(loc)} {
		if err := b.del(k); err != nil {
			return err
		}
	}
	b.dropSalt(loc)            // nor reads it from the store's cache (saltcache.go)
	b.s.sealers.drop(h)        // nor keeps its key (sealcache.go)
	delete(b.salts, string(h)) // nothing later in the batch seals under it
	for subj, known := range b.hashes {
		if string(known) == string(h) {
			delete(b.hashes, subj) // nor finds it by its identifier
		}
	}
	// A conflicting delivery is both a later delivery and a refused
	// message naming the subject: name each message once.
	slices.Sort(scrub.StreamSeqs)
	scrub.StreamSeqs = slices.Compact(scrub.StreamSeqs)
	v, err := json.Marshal(&scrub)
	if err != nil {
		return b.fail(err)
	}
	if err := b.set(scrubKey(seq), v); err != nil {
		return err
	}
	b.s.log.Info("subject forgotten", "reason", d.Reason, "request", d.Request, "purpose", d.Purpose,
		"entries", len(keys), "disclosures", len(sums), "notices", len(obs), "requests", len(reqs))
	return nil
}

// keysWithPrefix returns copies of the keys with prefix in the batch's view.
func (b *Batch) keysWithPrefix(prefix []byte) ([][]byte, error) {
	var out [][]byte
	it, err := b.iterator(badger.IteratorOptions{Prefix: prefix})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		out = append(out, it.Item().KeyCopy(nil))
	}
	return out, nil
}

// del deletes key in the batch's transaction.
func (b *Batch) del(key []byte) error { return b.written(b.txn.Delete(key)) }

// Scrub is what JetStream still holds of one forgotten subject: the
// SHARELOG_IN stream sequences of its entries and the ids of its notices.
// Seq is the forgetting's entry.
type Scrub struct {
	Seq        uint64
	StreamSeqs []uint64
	Notices    []string
	// Rejected are SHARELOG_REJECTED sequences of refused messages that
	// named the subject.
	Rejected []uint64
}

// PendingScrubs lists the scrubs forgettings left, oldest first.
func (s *Store) PendingScrubs(ctx context.Context) ([]Scrub, error) {
	var out []Scrub
	err := s.view(ctx, func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixScrub}, PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			var r scrubRecord
			if err := it.Item().Value(func(v []byte) error { return json.Unmarshal(v, &r) }); err != nil {
				return err
			}
			out = append(out, Scrub{Seq: binary.BigEndian.Uint64(it.Item().Key()[1:]), StreamSeqs: r.StreamSeqs, Notices: r.Notices, Rejected: r.Rejected})
		}
		return nil
	})
	return out, err
}

// ScrubDone deletes the scrub record of forgetting seq, once JetStream no
// longer holds its messages. Like checkpoints it is written beside the one
// writer, under a key kind no batch writes except the forgetting that
// creates it.
func (s *Store) ScrubDone(seq uint64) error {
	s.side.RLock()
	defer s.side.RUnlock()
	err := s.db.Update(func(txn *badger.Txn) error { return txn.Delete(scrubKey(seq)) })
	if errors.Is(err, badger.ErrDBClosed) {
		return ledger.Errorf(ledger.EUNAVAILABLE, "ledger is closed")
	}
	return err
}

// CompactStats says what Compact did.
type CompactStats struct {
	Took time.Duration
	// LSMBefore and LSMAfter are Badger's LSM sizes in bytes.
	LSMBefore, LSMAfter int64
}

// Compact makes deletions physical: after it returns, no file of the
// ledger's directory holds the value of a key deleted before it was
// called (a forgotten subject's data keys and salt). Badger keeps deleted
// values until compaction rewrites the tables holding them, and in the
// write-ahead log of the memtable until it is flushed; Compact
//
//  1. waits for the open batch and holds off the next (and the
//     checkpoint and scrub writes),
//  2. flushes every memtable to a level-0 table and removes its log
//     (Badger's DropPrefix, on a sentinel key written for the purpose),
//     which also compacts level 0 into the base level, dropping the
//     superseded versions,
//  3. flattens the LSM tree into one level (Badger's Flatten), which
//     merges every key's versions and drops the deleted ones,
//  4. runs value-log GC until there is nothing to rewrite (values over
//     valueThreshold: entries, and larger index values).
//
// Its cost grows with the size of the ledger (Flatten rewrites the tables
// above the last level); ingest waits while it runs.
func (s *Store) Compact(ctx context.Context) (CompactStats, error) {
	start := time.Now()
	var st CompactStats
	if err := ctx.Err(); err != nil {
		return st, err
	}
	s.lockWriter()
	defer s.writer.Unlock()
	s.side.Lock()
	defer s.side.Unlock()
	st.LSMBefore, _ = s.db.Size()
	sentinel := []byte{prefixSentinel}
	if err := s.db.Update(func(txn *badger.Txn) error { return txn.Set(sentinel, nil) }); err != nil {
		return st, fmt.Errorf("store: compact: %w", err)
	}
	if err := s.db.DropPrefix(sentinel); err != nil {
		return st, fmt.Errorf("store: compact: flush: %w", err)
	}
	if err := s.db.Flatten(2); err != nil {
		return st, fmt.Errorf("store: compact: flatten: %w", err)
	}
	for {
		err := s.db.RunValueLogGC(0.01)
		if errors.Is(err, badger.ErrNoRewrite) || errors.Is(err, badger.ErrRejected) {
			break
		}
		if err != nil {
			return st, fmt.Errorf("store: compact: value log: %w", err)
		}
	}
	st.LSMAfter, _ = s.db.Size()
	st.Took = time.Since(start)
	return st, nil
}

// SubjectHashOf returns the keyed hash (hex) under which the ledger knows
// the subject, or "" when it does not know it. It is for tests and tools
// that hold the identifier anyway; the hash is not personal data once the
// subject is forgotten.
func (s *Store) SubjectHashOf(ctx context.Context, subj ledger.Subject) (string, error) {
	var h []byte
	err := s.view(ctx, func(txn *badger.Txn) error {
		var err error
		h, err = s.subjectHash(txn, subj)
		return err
	})
	if h == nil {
		return "", err
	}
	return hex.EncodeToString(h), err
}
