package store

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/sharelog/sharelog/internal/ledger"
)

// RetentionRule keeps the disclosures made for Purpose (under Regime, or
// any regime when empty) for Months then Days after DisclosedAt, like the
// DBS notice's three months for general enquiries.
type RetentionRule struct {
	Purpose string `json:"purpose" yaml:"purpose"`
	Regime  string `json:"regime,omitempty" yaml:"regime"`
	Months  int    `json:"months,omitempty" yaml:"months"`
	Days    int    `json:"days,omitempty" yaml:"days"`
}

// Validate reports a rule without a purpose or a period.
func (r RetentionRule) Validate() error {
	switch {
	case r.Purpose == "":
		return errors.New("retention: a rule needs a purpose")
	case r.Months < 0 || r.Days < 0 || r.Months == 0 && r.Days == 0:
		return fmt.Errorf("retention: %s: give a positive number of months or days", r.Purpose)
	}
	return nil
}

// ForgetPolicy says when the ledger may forget a subject.
type ForgetPolicy struct {
	// ErasureAfter, when positive, lets the ledger forget the subject of an
	// erasure this long after its decision even while some recipients have
	// not answered. Zero: only once every obligation is closed.
	ErasureAfter time.Duration
	// Retention rules per purpose and regime. A subject expires when every
	// one of its disclosures is past the period of a rule; a disclosure no
	// rule covers is kept.
	Retention []RetentionRule
}

// rule returns the most specific rule for purpose and regime: one naming
// the regime before one for any regime.
func (p ForgetPolicy) rule(purpose, regime string) (RetentionRule, bool) {
	var any RetentionRule
	found := false
	for _, r := range p.Retention {
		if r.Purpose != purpose {
			continue
		}
		if r.Regime == regime {
			return r, true
		}
		if r.Regime == "" {
			any, found = r, true
		}
	}
	return any, found
}

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
func (s *Store) ForgetCandidates(ctx context.Context, now time.Time, p ForgetPolicy) ([]ledger.ForgetCandidate, error) {
	found := map[string]*ledger.ForgetCandidate{}
	err := s.view(ctx, func(txn *badger.Txn) error {
		known := func(h []byte) (bool, error) {
			_, err := txn.Get(subjectLocKey(h))
			if errors.Is(err, badger.ErrKeyNotFound) {
				return false, nil
			}
			return err == nil, err
		}
		// Erasures.
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixRequest}, PrefetchValues: true, PrefetchSize: 64})
		var erasures []requestRecord
		for it.Rewind(); it.Valid(); it.Next() {
			var r requestRecord
			if err := it.Item().Value(func(v []byte) error { return json.Unmarshal(v, &r) }); err != nil {
				it.Close()
				return fmt.Errorf("store: read request: %w", err)
			}
			if r.Type == ledger.TypeErasure && len(r.Categories) == 0 && r.ForgottenAt == nil {
				erasures = append(erasures, r)
			}
		}
		it.Close()
		for _, r := range erasures {
			if err := ctx.Err(); err != nil {
				return err
			}
			ok, err := known(r.Subject)
			if err != nil {
				return err
			}
			if !ok {
				continue
			}
			obs, err := readObligations(txn, r.Notices)
			if err != nil {
				return err
			}
			reason := ledger.ForgetErasureClosed
			if slices.ContainsFunc(obs, func(o ledger.Obligation) bool { return o.Open() }) {
				if p.ErasureAfter <= 0 || now.Before(r.DecidedAt.Add(p.ErasureAfter)) {
					continue
				}
				reason = ledger.ForgetErasureTimeout
			}
			h := hex.EncodeToString(r.Subject)
			if found[h] == nil {
				found[h] = &ledger.ForgetCandidate{SubjectHash: h, Reason: reason, Request: r.Request}
			}
		}
		// Retention.
		if len(p.Retention) > 0 {
			it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixSubject}, PrefetchValues: true, PrefetchSize: 256})
			defer it.Close()
			var cur []byte
			expired, last := true, summary{}
			flush := func() {
				if cur == nil || !expired {
					return
				}
				h := hex.EncodeToString(cur)
				if found[h] == nil {
					found[h] = &ledger.ForgetCandidate{SubjectHash: h, Reason: ledger.ForgetRetention, Purpose: last.purpose, Regime: last.regime}
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
					cur, expired = slices.Clone(h), true
				}
				if !expired {
					continue
				}
				at, _ := splitPos(k)
				var sum summary
				if err := it.Item().Value(func(v []byte) error {
					var err error
					sum, err = decodeSummary(v)
					return err
				}); err != nil {
					return fmt.Errorf("store: subject index: %w", err)
				}
				r, ok := p.rule(sum.purpose, sum.regime)
				if !ok || addMonths(decodeTime(at), r.Months).AddDate(0, 0, r.Days).After(now) {
					expired = false
					continue
				}
				last = sum
			}
			flush()
		}
		for h, c := range found {
			hb, _ := hex.DecodeString(h)
			held, err := holdsCovering(txn, hb)
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
	slices.SortFunc(out, func(a, b ledger.ForgetCandidate) int {
		switch {
		case a.SubjectHash < b.SubjectHash:
			return -1
		case a.SubjectHash > b.SubjectHash:
			return 1
		}
		return 0
	})
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
