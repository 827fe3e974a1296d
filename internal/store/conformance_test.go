package store

import (
	"context"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/sharelog/sharelog/internal/ledger"
	"github.com/sharelog/sharelog/internal/ledger/ledgertest"
)

// badgerLedger drives the Badger store as ledgertest.Ledger: each event in
// a batch of its own, recorded at the scenario's clock.
type badgerLedger struct {
	t *testing.T
	s *Store
}

func (l badgerLedger) Append(ev *ledger.Event, at time.Time) (ledger.Outcome, error) {
	l.s.now = func() time.Time { return at }
	b := l.s.Begin()
	defer b.Discard()
	seq := l.s.Applied() + 1
	o, err := b.Append(seq, ev)
	if o == 0 {
		return o, err
	}
	if cerr := b.Commit(seq); cerr != nil {
		l.t.Fatalf("Commit(%d): %v", seq, cerr)
	}
	return o, err
}

func (l badgerLedger) Obligation(notice string) (*ledger.Obligation, error) {
	o, err := l.s.Obligation(context.Background(), notice)
	if ledger.ErrorCode(err) == ledger.ENOTFOUND {
		return nil, nil
	}
	return o, err
}

// Notices returns the request record's notices in its order (as MemState
// does): the notices it opened, sorted by recipient, then those a hold's
// release added.
func (l badgerLedger) Notices(request string) (out []string, err error) {
	err = l.s.db.View(func(txn *badger.Txn) error {
		rec, err := getRequest(txn, request)
		if rec != nil {
			out = rec.Notices
		}
		return err
	})
	return out, err
}

func (l badgerLedger) Disclosures(h []byte) (out []ledger.DisclosureSummary, err error) {
	err = l.s.db.View(func(txn *badger.Txn) error {
		out, err = l.s.state(txn).Disclosures(h)
		return err
	})
	return out, err
}

func (l badgerLedger) Answer(request string) (*ledger.AnswerClock, error) {
	st, err := l.s.Status(context.Background(), request)
	if ledger.ErrorCode(err) == ledger.ENOTFOUND {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return st.Answer, nil
}

// Consulted reads the consultation log from its indexes: by time, with
// the principal from the entry and the person's keyed hash from the
// index by subject.
func (l badgerLedger) Consulted() (out []ledger.Consulted, err error) {
	err = l.s.db.View(func(txn *badger.Txn) error {
		bySeq := map[uint64][]byte{}
		it := txn.NewIterator(badger.IteratorOptions{Prefix: consultationPrefix(consultBySubject, nil)})
		for it.Rewind(); it.Valid(); it.Next() {
			k := it.Item().KeyCopy(nil)
			_, seq := splitPos(k)
			bySeq[seq] = k[2 : 2+subjectHashLen]
		}
		it.Close()
		page, err := l.s.Consultations(context.Background(), ledger.ConsultationFilter{})
		for _, c := range page.Consultations {
			out = append(out, ledger.Consulted{Seq: c.Seq, At: c.RecordedAt, Principal: c.Principal, Subject: bySeq[c.Seq]})
		}
		return err
	})
	return out, err
}

func (l badgerLedger) hash(subj ledger.Subject) []byte {
	var h []byte
	if err := l.s.db.View(func(txn *badger.Txn) error {
		var err error
		h, err = l.s.subjectHash(txn, subj)
		return err
	}); err != nil {
		l.t.Fatal(err)
	}
	return h
}

// TestConformance runs every scenario of the rules (internal/ledger/ledgertest),
// which MemState passes in internal/ledger, against Badger.
func TestConformance(t *testing.T) {
	for _, sc := range ledgertest.Scenarios() {
		t.Run(sc.Name, func(t *testing.T) {
			t.Parallel()
			cfg := testConfig(t)
			cfg.Deadlines = sc.Deadlines
			l := badgerLedger{t: t, s: openTest(t, cfg)}
			ledgertest.Run(t, l, l.hash, sc)
		})
	}
}
