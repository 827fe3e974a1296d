package store

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"

	"github.com/sharelog/sharelog/internal/ledger"
)

// This file keeps legal holds (org.sharelog.hold.v1 and
// org.sharelog.hold.released.v1) as ledger.Decide planned them: a hold's
// record (l hold) keeps its scope with the subject only as a keyed hash,
// and its reason, placer and review date for Who and Status. The rules of
// holds, and which holds cover a subject, are in internal/ledger
// (holds.go, decide.go).

func (b *Batch) putHold(rec *ledger.HoldRecord) error {
	v, err := json.Marshal(rec)
	if err != nil {
		return b.fail(fmt.Errorf("store: encode hold: %w", err))
	}
	return b.set(holdKey(rec.Hold), v)
}

func getHold(txn *badger.Txn, hold string) (*ledger.HoldRecord, error) {
	item, err := txn.Get(holdKey(hold))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("store: read hold: %w", err)
	}
	var h ledger.HoldRecord
	if err := item.Value(func(v []byte) error { return json.Unmarshal(v, &h) }); err != nil {
		return nil, fmt.Errorf("store: read hold: %w", err)
	}
	return &h, nil
}

// holdsCovering returns the ids of the active holds covering the subject
// with this keyed hash, sorted (ledger.SubjectHolds).
func (s *Store) holdsCovering(txn *badger.Txn, subjectHash []byte) ([]string, error) {
	return ledger.SubjectHolds(s.state(txn), subjectHash)
}

// subjectSummaries reads the subject index of one subject, with the
// disclosure time of each summary.
func subjectSummaries(txn *badger.Txn, subjectHash []byte) ([]summary, error) {
	it := txn.NewIterator(subjectScan(subjectHash))
	defer it.Close()
	return readSummaries(txn, it)
}

// subjectScan is the iterator over the subject index of one subject.
func subjectScan(subjectHash []byte) badger.IteratorOptions {
	return badger.IteratorOptions{Prefix: subjectPrefix(subjectHash), PrefetchValues: true, PrefetchSize: 64}
}

// readSummaries reads the summaries it (subjectScan, on txn) iterates.
func readSummaries(txn *badger.Txn, it *badger.Iterator) ([]summary, error) {
	var out []summary
	pr := newProfiles(txn, nil) // profiles.go
	for it.Rewind(); it.Valid(); it.Next() {
		at, _ := splitPos(it.Item().Key())
		var s summary
		err := it.Item().Value(func(v []byte) error {
			v, err := pr.expand(v)
			if err == nil {
				s, err = decodeSummary(v)
			}
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("store: subject index: %w", err)
		}
		s.at = decodeTime(at)
		out = append(out, s)
	}
	return out, nil
}
