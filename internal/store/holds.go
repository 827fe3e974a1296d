package store

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/dgraph-io/badger/v4"

	"github.com/sharelog/sharelog/internal/ledger"
	"github.com/sharelog/sharelog/internal/vocab"
)

// This file holds the ledger rules of legal holds (org.sharelog.hold.v1 and
// org.sharelog.hold.released.v1), such as the IICSA moratorium on
// destruction. An active hold covering a subject (by the subject itself, or
// by the purpose or a category of any of its disclosures) stops the ledger
// from forgetting it, whether by erasure or by retention expiry; releasing
// the hold lets the waiting forgetting run at the next round of the
// retention job. The rules, each Rejected with nothing written:
//
//   - a hold id is placed once (ReasonConflict);
//   - a release must name a hold in the ledger (ReasonUnknownRequest) that
//     is still in place (ReasonConflict).
//
// A hold's record (l hold) keeps its scope with the subject only as a keyed
// hash, and its reason, placer and review date for Who and Status; a hold
// by subject has its entry sealed for the subject, and forgetting the
// subject (after the hold's release) blanks its record's reason and placer.

// planHold checks a hold or its release and returns what it writes and the
// subjects its entry names.
func (b *Batch) planHold(ev *ledger.Event) (apply func(uint64) error, names func() ([][]byte, error), err error) {
	switch d := ev.Data.(type) {
	case *ledger.Hold:
		prior, err := getHold(b.txn, d.Hold)
		if err != nil {
			return nil, nil, b.fail(err)
		}
		if prior != nil {
			return nil, nil, ledger.Invalid(ledger.ReasonConflict, "data.hold", "hold %q is already recorded (entry %d)", d.Hold, prior.Seq)
		}
		rec := &ledger.HoldRecord{Hold: d.Hold, Reason: d.Reason, PlacedBy: d.PlacedBy, ReviewAt: d.ReviewAt, PlacedAt: b.at}
		if d.Scope != nil {
			rec.Purpose, rec.Categories = d.Scope.Purpose, slices.Clone(d.Scope.Categories)
			if d.Scope.Subject != nil {
				subj := *d.Scope.Subject
				names = func() ([][]byte, error) {
					h, err := b.subjectHash(subj, true)
					if err != nil {
						return nil, err
					}
					rec.SubjectHash = hex.EncodeToString(h)
					return [][]byte{h}, nil
				}
			}
		}
		apply = func(seq uint64) error {
			rec.Seq = seq
			b.s.log.Info("legal hold placed", "hold", rec.Hold, "purpose", rec.Purpose, "categories", rec.Categories, "bySubject", rec.SubjectHash != "")
			return b.putHold(rec)
		}
		return apply, names, nil
	case *ledger.HoldReleased:
		rec, err := getHold(b.txn, d.Hold)
		if err != nil {
			return nil, nil, b.fail(err)
		}
		switch {
		case rec == nil:
			return nil, nil, ledger.Invalid(ledger.ReasonUnknownRequest, "data.hold", "hold %q is not in the ledger", d.Hold)
		case !rec.Active():
			return nil, nil, ledger.Invalid(ledger.ReasonConflict, "data.hold", "hold %q was already released", d.Hold)
		}
		if rec.SubjectHash != "" {
			names = func() ([][]byte, error) {
				h, _ := hex.DecodeString(rec.SubjectHash)
				if known, err := b.known(h); err != nil || !known {
					return nil, err
				}
				return [][]byte{h}, nil
			}
		}
		apply = func(uint64) error {
			at := b.at
			rec.ReleasedAt = &at
			b.s.log.Info("legal hold released", "hold", rec.Hold)
			return b.putHold(rec)
		}
		return apply, names, nil
	}
	return nil, nil, fmt.Errorf("store: append: %s event with data %T", ev.Type, ev.Data)
}

func (b *Batch) putHold(rec *ledger.HoldRecord) error {
	v, err := json.Marshal(rec)
	if err != nil {
		return b.fail(fmt.Errorf("store: encode hold: %w", err))
	}
	return b.set(holdKey(rec.Hold), v)
}

// known reports whether the subject with this keyed hash is still known
// (not forgotten) in the batch's view.
func (b *Batch) known(subjectHash []byte) (bool, error) {
	_, err := b.txn.Get(subjectLocKey(subjectHash))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return false, nil
	}
	return err == nil, err
}

// requestSubject returns the keyed hash of a request's subject, as the
// names of an entry about it; none when the subject was forgotten.
func (b *Batch) requestSubject(request string) ([][]byte, error) {
	rec, err := b.request(request)
	if err != nil || rec == nil || rec.Subject == nil {
		return nil, err
	}
	known, err := b.known(rec.Subject)
	if err != nil || !known {
		return nil, err
	}
	return [][]byte{rec.Subject}, nil
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
// with this keyed hash, sorted: by subject, or by the purpose and
// categories of any of its disclosures (a hold with both needs one
// disclosure matching both; categories match when either covers the other).
func holdsCovering(txn *badger.Txn, subjectHash []byte) ([]string, error) {
	var holds []ledger.HoldRecord
	it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixHold}, PrefetchValues: true, PrefetchSize: 64})
	for it.Rewind(); it.Valid(); it.Next() {
		var h ledger.HoldRecord
		if err := it.Item().Value(func(v []byte) error { return json.Unmarshal(v, &h) }); err != nil {
			it.Close()
			return nil, fmt.Errorf("store: read hold: %w", err)
		}
		if h.Active() {
			holds = append(holds, h)
		}
	}
	it.Close()
	if len(holds) == 0 || subjectHash == nil {
		return nil, nil
	}
	hexHash := hex.EncodeToString(subjectHash)
	var sums []summary // loaded when a hold needs them
	loaded := false
	var out []string
	for _, h := range holds {
		if h.SubjectHash != "" {
			if h.SubjectHash == hexHash {
				out = append(out, h.Hold)
			}
			continue
		}
		if h.Purpose == "" && len(h.Categories) == 0 {
			continue
		}
		if !loaded {
			var err error
			if sums, err = subjectSummaries(txn, subjectHash); err != nil {
				return nil, err
			}
			loaded = true
		}
		for _, s := range sums {
			if h.Purpose != "" && h.Purpose != s.purpose {
				continue
			}
			if len(h.Categories) > 0 && !categoriesOverlap(h.Categories, s.categories) {
				continue
			}
			out = append(out, h.Hold)
			break
		}
	}
	slices.Sort(out)
	return out, nil
}

func categoriesOverlap(a, b []string) bool {
	for _, x := range a {
		for _, y := range b {
			if vocab.Covers(x, y) || vocab.Covers(y, x) {
				return true
			}
		}
	}
	return false
}

// subjectSummaries reads the subject index of one subject, with the
// disclosure time of each summary.
func subjectSummaries(txn *badger.Txn, subjectHash []byte) ([]summary, error) {
	var out []summary
	it := txn.NewIterator(badger.IteratorOptions{Prefix: subjectPrefix(subjectHash), PrefetchValues: true, PrefetchSize: 64})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		at, _ := splitPos(it.Item().Key())
		var s summary
		err := it.Item().Value(func(v []byte) error {
			var err error
			s, err = decodeSummary(v)
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
