package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"

	"github.com/sharelog/sharelog/internal/ledger"
)

// txnState is ledger.State over one Badger transaction: the records as the
// transaction sees them, and the recipient registry given (the committed
// one, plus those registered earlier in a batch).
type txnState struct {
	txn        *badger.Txn
	hasher     *subjectHasher
	recipients func(id string) (ledger.Recipient, bool)
	// lookup, when set, finds a subject's keyed hash instead: a batch's,
	// which remembers the subjects it read or made, so that the rules'
	// look-up and the writing of the entry read each salt once.
	lookup func(ledger.Subject) ([]byte, error)
	// marked, when set, holds every subject with erasure markers (and
	// maybe others): the batch's, so that a disclosure of a subject not in
	// it reads no x key (marked.go).
	marked *markedSubjects
	// iterate, when set, opens the iterators instead: a batch's
	// (Batch.iterator), which a speculative batch refuses.
	iterate func(badger.IteratorOptions) (*badger.Iterator, error)
}

// iterator opens an iterator on the state's transaction.
func (st txnState) iterator(opt badger.IteratorOptions) (*badger.Iterator, error) {
	if st.iterate != nil {
		return st.iterate(opt)
	}
	return st.txn.NewIterator(opt), nil
}

var _ ledger.State = txnState{}

func (st txnState) Recipient(id string) (ledger.Recipient, bool) { return st.recipients(id) }

func (st txnState) Request(id string) (*ledger.RequestRecord, error) { return getRequest(st.txn, id) }

func (st txnState) Obligation(notice string) (*ledger.Obligation, error) {
	return getObligation(st.txn, notice)
}

func (st txnState) Hold(id string) (*ledger.HoldRecord, error) { return getHold(st.txn, id) }

func (st txnState) ActiveHolds() ([]ledger.HoldRecord, error) {
	var out []ledger.HoldRecord
	it, err := st.iterator(badger.IteratorOptions{Prefix: []byte{prefixHold}, PrefetchValues: true, PrefetchSize: 64})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		var h ledger.HoldRecord
		if err := it.Item().Value(func(v []byte) error { return json.Unmarshal(v, &h) }); err != nil {
			return nil, fmt.Errorf("store: read hold: %w", err)
		}
		if h.Active() {
			out = append(out, h)
		}
	}
	return out, nil
}

func (st txnState) SubjectHash(s ledger.Subject) ([]byte, error) {
	if st.lookup != nil {
		return st.lookup(s)
	}
	h, _, err := lookupSubject(st.txn, st.hasher, s)
	if err != nil {
		return nil, fmt.Errorf("store: read salt: %w", err)
	}
	return h, nil
}

func (st txnState) Known(h []byte) (bool, error) {
	_, err := st.txn.Get(subjectLocKey(h))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return false, nil
	}
	return err == nil, err
}

func (st txnState) Disclosures(h []byte) ([]ledger.DisclosureSummary, error) {
	it, err := st.iterator(subjectScan(h))
	if err != nil {
		return nil, err
	}
	sums, err := readSummaries(st.txn, it)
	it.Close()
	if err != nil {
		return nil, err
	}
	out := make([]ledger.DisclosureSummary, len(sums))
	for i, s := range sums {
		out[i] = s.domain()
	}
	return out, nil
}

func (st txnState) Erasures(h []byte) ([]ledger.ErasureMarker, error) {
	if st.marked != nil && !st.marked.has(h) {
		return nil, nil
	}
	v, err := txnValue(st.txn, erasureKey(h))
	if err != nil || v == nil {
		return nil, err
	}
	return decodeErasureMarkers(v)
}

// encodeErasureMarker appends one erasure marker to the subject's markers:
// decidedAt(8), request, categories.
func encodeErasureMarker(dst []byte, m *ledger.ErasureMarker) []byte {
	dst = binary.BigEndian.AppendUint64(dst, encodeTime(m.DecidedAt))
	dst = appendString(dst, m.Request)
	dst = binary.AppendUvarint(dst, uint64(len(m.Categories)))
	for _, c := range m.Categories {
		dst = appendString(dst, c)
	}
	return dst
}

// decodeErasureMarkers reverses encodeErasureMarker over a subject's markers.
func decodeErasureMarkers(v []byte) ([]ledger.ErasureMarker, error) {
	var out []ledger.ErasureMarker
	r := reader{b: v}
	for len(r.b) > 0 && r.err == nil {
		if len(r.b) < 8 {
			return nil, fmt.Errorf("store: erasure marker: %w", errCorrupt)
		}
		m := ledger.ErasureMarker{DecidedAt: decodeTime(binary.BigEndian.Uint64(r.b))}
		r.b = r.b[8:]
		m.Request = r.string()
		for n := r.uvarint(); n > 0 && r.err == nil; n-- {
			m.Categories = append(m.Categories, r.string())
		}
		out = append(out, m)
	}
	if r.err != nil {
		return nil, fmt.Errorf("store: erasure marker: %w", r.err)
	}
	return out, nil
}

// domain returns the summary as the rules see it.
func (s summary) domain() ledger.DisclosureSummary {
	return ledger.DisclosureSummary{
		ID: s.id, Recipient: s.recipient, Purpose: s.purpose, LawfulBasis: s.lawfulBasis,
		Regime: s.regime, Categories: s.categories, Inquiry: s.inquiry,
		AfterErasure: s.afterErasure, WhileRestricted: s.restricted, DisclosedAt: s.at,
		ReceivedFrom: s.receivedFrom,
	}
}

// state returns the rules' view of a read-only query transaction.
func (s *Store) state(txn *badger.Txn) txnState {
	return txnState{txn: txn, hasher: newSubjectHasher(s.secret), recipients: func(id string) (ledger.Recipient, bool) {
		r, ok := (*s.recipients.Load())[id]
		return r, ok
	}}
}

// state returns the rules' view of the batch: the ledger with the batch's
// own writes. It is made once per batch.
func (b *Batch) state() ledger.State {
	if b.st != nil {
		return b.st
	}
	lookup := func(s ledger.Subject) ([]byte, error) { return b.subjectHash(s, false) }
	b.st = txnState{txn: b.txn, hasher: b.hasher, lookup: lookup, marked: &b.s.marked, iterate: b.iterator, recipients: func(id string) (ledger.Recipient, bool) {
		if r, ok := b.recipients[id]; ok {
			return r, true
		}
		r, ok := b.reg[id] // the registry as of the batch's start, its predecessor's included
		return r, ok
	}}
	return b.st
}
