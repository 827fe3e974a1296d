package store

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/sharelog/sharelog/internal/ledger"
)

// ForgetCandidates returns the subjects the ledger may forget at now, each
// once, with the holds that stop it (HeldBy; empty when it can go now):
//
//   - the subject of an erasure of all its data (no categories) once every
//     obligation of the erasure is acknowledged or exempted
//     (ledger.ForgetErasureClosed), or once p.ErasureAfter has passed since
//     its decision (ledger.ForgetErasureTimeout). An erasure of some
//     categories only leaves the rest of the person's record, so it never
//     forgets them;
//   - a subject every one of whose disclosures is past its retention period
//     (ledger.ForgetRetention, with the purpose and regime of the last).
//
// It scans the requests and the subject index: its cost grows with the
// ledger. Candidates come sorted by subject hash.
func (s *Store) ForgetCandidates(ctx context.Context, now time.Time, p ledger.ForgetPolicy) ([]ledger.ForgetCandidate, error) {
	found := map[string]*ledger.ForgetCandidate{}
	err := s.view(ctx, func(txn *badger.Txn) error {
		st := s.state(txn)
		// Erasures.
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixRequest}, PrefetchValues: true, PrefetchSize: 64})
		var erasures []ledger.RequestRecord
		for it.Rewind(); it.Valid(); it.Next() {
			var r ledger.RequestRecord
			if err := it.Item().Value(func(v []byte) error { return json.Unmarshal(v, &r) }); err != nil {
				it.Close()
				return fmt.Errorf("store: read request: %w", err)
			}
			if r.Type == ledger.TypeErasure {
				erasures = append(erasures, r)
			}
		}
		it.Close()
		for _, r := range erasures {
			if err := ctx.Err(); err != nil {
				return err
			}
			if ok, err := st.Known(r.Subject); err != nil || !ok {
				if err != nil {
					return err
				}
				continue
			}
			obs, err := readObligations(txn, r.Notices)
			if err != nil {
				return err
			}
			reason, ok := p.ErasureForgets(&r, obs, now)
			if !ok {
				continue
			}
			h := hex.EncodeToString(r.Subject)
			if found[h] == nil {
				found[h] = &ledger.ForgetCandidate{SubjectHash: h, Reason: reason, Request: r.Request}
			}
		}
		// Retention: the subject index, one subject's run of keys at a time.
		if len(p.Retention) > 0 {
			pr := newProfiles(txn, &s.profiles) // profiles.go
			it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixSubject}, PrefetchValues: true, PrefetchSize: 256})
			defer it.Close()
			var cur []byte
			var sums []ledger.DisclosureSummary
			flush := func() {
				if cur == nil {
					return
				}
				if last, ok := p.RetentionForgets(sums, now); ok {
					h := hex.EncodeToString(cur)
					if found[h] == nil {
						found[h] = &ledger.ForgetCandidate{SubjectHash: h, Reason: ledger.ForgetRetention, Purpose: last.Purpose, Regime: last.Regime}
					}
				}
			}
			n := 0
			for it.Rewind(); it.Valid(); it.Next() {
				if n++; n%ctxCheckEvery == 0 {
					if err := ctx.Err(); err != nil {
						return err
					}
				}
				k := it.Item().Key()
				if len(k) != 1+subjectHashLen+posLen {
					return fmt.Errorf("store: subject index: %w", errCorrupt)
				}
				h := k[1 : 1+subjectHashLen]
				if cur == nil || string(h) != string(cur) {
					flush()
					cur, sums = slices.Clone(h), sums[:0]
				}
				at, _ := splitPos(k)
				var sum summary
				if err := it.Item().Value(func(v []byte) error {
					v, err := pr.expand(v)
					if err == nil {
						sum, err = decodeSummary(v)
					}
					return err
				}); err != nil {
					return fmt.Errorf("store: subject index: %w", err)
				}
				sum.at = decodeTime(at)
				sums = append(sums, sum.domain())
			}
			flush()
		}
		for h, c := range found {
			hb, _ := hex.DecodeString(h)
			held, err := ledger.SubjectHolds(st, hb)
			if err != nil {
				return err
			}
			c.HeldBy = held
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]ledger.ForgetCandidate, 0, len(found))
	for _, c := range found {
		out = append(out, *c)
	}
	slices.SortFunc(out, func(a, b ledger.ForgetCandidate) int { return strings.Compare(a.SubjectHash, b.SubjectHash) })
	return out, nil
}

// Holds returns every legal hold in the ledger, active and released,
// sorted by id.
func (s *Store) Holds(ctx context.Context) ([]ledger.HoldRecord, error) {
	var out []ledger.HoldRecord
	err := s.view(ctx, func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixHold}, PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			var h ledger.HoldRecord
			if err := it.Item().Value(func(v []byte) error { return json.Unmarshal(v, &h) }); err != nil {
				return err
			}
			out = append(out, h)
		}
		return nil
	})
	return out, err
}
