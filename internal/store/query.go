package store

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/dgraph-io/badger/v4"

	"github.com/sharelog/sharelog/internal/ledger"
)

// ctxCheckEvery is how many index rows a scan reads between checks of its
// context.
const ctxCheckEvery = 256

// view runs fn in a read-only transaction and translates Badger's errors.
func (s *Store) view(ctx context.Context, fn func(txn *badger.Txn) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	err := s.db.View(fn)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, badger.ErrDBClosed):
		return ledger.Errorf(ledger.EUNAVAILABLE, "ledger is closed")
	case errors.Is(err, badger.ErrKeyNotFound):
		// Reached only if fn lets a lookup that must succeed fail.
		return fmt.Errorf("store: a record an index points at is missing: %w", err)
	}
	var le *ledger.Error
	if errors.As(err, &le) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return fmt.Errorf("store: %w", err)
}

// Who answers "who did we share this person's data with?": every recipient
// of the subject's data, sorted by recipient id, with the categories,
// purposes, lawful bases and regimes (sorted, unique) of what it received,
// the first and last disclosure, their count and whether any was within an
// inquiry, how many came after an erasure of the same data, and the open
// rectification, erasure and restriction obligations to the recipient about
// this subject. A subject never disclosed gets an empty answer, not ENOTFOUND.
func (s *Store) Who(ctx context.Context, subj ledger.Subject) (*ledger.Who, error) {
	if subj.Scheme == "" || subj.ID == "" {
		return nil, ledger.Errorf(ledger.EINVALID, "subject needs a scheme and an id")
	}
	aggs := make(map[string]*whoAgg)
	total := 0
	var hash []byte
	var holds []string
	err := s.view(ctx, func(txn *badger.Txn) error {
		var err error
		if hash, err = s.subjectHash(txn, subj); hash == nil || err != nil {
			return err // a subject the ledger does not know, or forgot
		}
		if holds, err = s.holdsCovering(txn, hash); err != nil {
			return err
		}
		prefix := subjectPrefix(hash)
		pr := newProfiles(txn, &s.profiles)
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: true, PrefetchSize: 64})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			if total%ctxCheckEvery == ctxCheckEvery-1 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			item := it.Item()
			at, _ := splitPos(item.Key())
			if err := item.Value(func(v []byte) error {
				v, err := pr.expand(v)
				if err != nil {
					return err
				}
				return addWho(aggs, at, v)
			}); err != nil {
				return err
			}
			total++
		}
		return nil
	})
	if err != nil {
		return nil, err
	}

	open := map[string]int{}
	if hash != nil {
		if open, err = s.openObligationsBySubject(ctx, hash); err != nil {
			return nil, err
		}
	}
	reg := *s.recipients.Load()
	who := &ledger.Who{Recipients: make([]ledger.WhoRecipient, 0, len(aggs)), Disclosures: total, Holds: holds}
	for id, a := range aggs {
		r := reg[id]
		who.Recipients = append(who.Recipients, ledger.WhoRecipient{
			Recipient:                id,
			Name:                     r.Name,
			Role:                     r.Role,
			Country:                  r.Country,
			Categories:               slices.Sorted(maps.Keys(a.categories)),
			Purposes:                 slices.Sorted(maps.Keys(a.purposes)),
			LawfulBases:              slices.Sorted(maps.Keys(a.bases)),
			Regimes:                  slices.Sorted(maps.Keys(a.regimes)),
			FirstDisclosedAt:         decodeTime(a.first),
			LastDisclosedAt:          decodeTime(a.last),
			Count:                    a.count,
			Inquiry:                  a.inquiry,
			DisclosedAfterErasure:    a.afterErasure,
			DisclosedWhileRestricted: a.restricted,
			ReceivedFrom:             slices.Sorted(maps.Keys(a.origins)),
			OpenObligations:          open[id],
		})
	}
	slices.SortFunc(who.Recipients, func(a, b ledger.WhoRecipient) int { return cmp.Compare(a.Recipient, b.Recipient) })
	return who, nil
}

// whoAgg accumulates one recipient's part of a Who answer.
type whoAgg struct {
	categories, purposes, bases, regimes map[string]struct{}
	origins                              map[string]struct{}
	first, last                          uint64 // encoded times
	count                                int
	inquiry                              bool
	afterErasure, restricted             int
}

// addWho adds one encoded summary at the encoded time at to aggs. It reads
// the summary in place and allocates only for values not seen before.
func addWho(aggs map[string]*whoAgg, at uint64, v []byte) error {
	if len(v) < 1 {
		return errCorrupt
	}
	r := reader{b: v[1:]}
	rb := r.bytes()
	if r.err != nil {
		return r.err
	}
	a := aggs[string(rb)]
	if a == nil {
		a = &whoAgg{
			categories: make(map[string]struct{}), purposes: make(map[string]struct{}),
			bases: make(map[string]struct{}), regimes: make(map[string]struct{}), origins: make(map[string]struct{}),
			first: at, last: at,
		}
		aggs[string(rb)] = a
	}
	a.count++
	a.inquiry = a.inquiry || v[0]&summaryInquiry != 0
	if v[0]&summaryAfterErasure != 0 {
		a.afterErasure++
	}
	if v[0]&summaryRestricted != 0 {
		a.restricted++
	}
	a.first = min(a.first, at)
	a.last = max(a.last, at)
	addSet(a.purposes, r.bytes())
	addSet(a.bases, r.bytes())
	addSet(a.regimes, r.bytes())
	n := r.uvarint()
	for i := uint64(0); i < n && r.err == nil; i++ {
		addSet(a.categories, r.bytes())
	}
	if r.err == nil && len(r.b) > 0 {
		r.bytes() // the disclosure's event id
	}
	if r.err == nil && len(r.b) > 0 {
		addSet(a.origins, r.bytes())
	}
	return r.err
}

func addSet(set map[string]struct{}, b []byte) {
	if _, ok := set[string(b)]; !ok {
		set[string(b)] = struct{}{}
	}
}

// Disclosures lists the disclosures that match f in (DisclosedAt, Seq)
// order, one page at a time: at most f.Limit (DefaultLimit when 0, MaxLimit
// at most). Next, when not empty, is the After of the following page. It
// returns EINVALID for a bad cursor, a negative limit or an incomplete
// subject.
func (s *Store) Disclosures(ctx context.Context, f ledger.DisclosureFilter) (*ledger.DisclosurePage, error) {
	limit, err := ledger.PageLimit(f.Limit)
	if err != nil {
		return nil, err
	}

	// Pick the narrowest index; all end in the same (at, seq) position.
	// A listing of every disclosure merges the recipients' indexes.
	var prefix []byte
	var recipientInValue []byte // filter on the summary value (subject index only)
	switch {
	case f.Subject != nil:
		if f.Subject.Scheme == "" || f.Subject.ID == "" {
			return nil, ledger.Errorf(ledger.EINVALID, "subject needs a scheme and an id")
		}
		var h []byte
		err := s.view(ctx, func(txn *badger.Txn) error {
			var err error
			h, err = s.subjectHash(txn, *f.Subject)
			return err
		})
		if err != nil {
			return nil, err
		}
		if h == nil {
			return &ledger.DisclosurePage{Disclosures: []ledger.DisclosureRecord{}}, nil
		}
		prefix = subjectPrefix(h)
		if f.Recipient != "" {
			recipientInValue = []byte(f.Recipient)
		}
	case f.Recipient != "":
		prefix = byRecipientPrefix(f.Recipient)
	}
	var since uint64
	if !f.Since.IsZero() {
		since = encodeTime(f.Since)
	}
	var after []byte // a position, just past the cursor's
	if f.After != "" {
		at, seq, err := decodeCursor(f.After)
		if err != nil {
			return nil, err
		}
		after = append(binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, at), seq), 0)
	}
	var until uint64
	hasUntil := !f.Until.IsZero()
	if hasUntil {
		until = encodeTime(f.Until)
	}

	page := &ledger.DisclosurePage{Disclosures: []ledger.DisclosureRecord{}}
	err = s.view(ctx, func(txn *badger.Txn) error {
		prefixes := [][]byte{prefix}
		if prefix == nil {
			var err error
			if prefixes, err = indexedRecipients(txn); err != nil {
				return err
			}
		}
		m := newPosMerge(txn, limit, recipientInValue != nil)
		defer m.close()
		for _, p := range prefixes {
			start := p
			if since != 0 {
				start = binary.BigEndian.AppendUint64(slices.Clip(p), since)
			}
			if after != nil {
				if a := append(slices.Clip(p), after...); bytes.Compare(a, start) > 0 {
					start = a
				}
			}
			m.add(p, start)
		}

		type pos struct{ at, seq uint64 }
		var hits []pos
		more := false
		n := 0
		for it := m.next(); it != nil; it = m.next() {
			n++
			if n%ctxCheckEvery == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			item := it.Item()
			at, seq := splitPos(item.Key())
			if hasUntil && at >= until {
				break
			}
			if recipientInValue != nil {
				match := false
				if err := item.Value(func(v []byte) error {
					r, err := summaryRecipient(v)
					match = bytes.Equal(r, recipientInValue)
					return err
				}); err != nil {
					return err
				}
				if !match {
					continue
				}
			}
			if len(hits) == limit {
				more = true
				break
			}
			hits = append(hits, pos{at, seq})
		}
		m.close()

		for i, h := range hits {
			if i%ctxCheckEvery == ctxCheckEvery-1 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			rec, err := s.disclosureRecord(txn, h.seq)
			if err != nil {
				return err
			}
			page.Disclosures = append(page.Disclosures, *rec)
		}
		if more {
			last := hits[len(hits)-1]
			page.Next = encodeCursor(last.at, last.seq)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return page, nil
}

// indexedRecipients returns the prefixes of the recipient-time index of
// every recipient with a disclosure, skipping from one recipient to the
// next: one seek each.
func indexedRecipients(txn *badger.Txn) ([][]byte, error) {
	it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixByRecip}})
	defer it.Close()
	var prefixes [][]byte
	for it.Seek([]byte{prefixByRecip}); it.Valid(); {
		k := it.Item().Key()
		i := bytes.IndexByte(k, 0)
		if i < 0 {
			return nil, fmt.Errorf("store: recipient index key %x has no end of recipient", k)
		}
		p := slices.Clone(k[:i+1])
		prefixes = append(prefixes, p)
		next := slices.Clone(p)
		next[i] = 1 // just past every key of this recipient
		it.Seek(next)
	}
	return prefixes, nil
}

// posMerge walks several indexes whose keys end in a position (at, seq),
// each under its own prefix, as one, in position order. A listing of every
// disclosure merges the recipients' indexes: there is no index by time
// alone, which would be one more key for every disclosure.
type posMerge struct {
	txn  *badger.Txn
	opts badger.IteratorOptions
	its  []*badger.Iterator // valid, in position order
	last *badger.Iterator   // returned by next, to move on at the next call
	open []*badger.Iterator // every one, to close
}

func newPosMerge(txn *badger.Txn, limit int, values bool) *posMerge {
	return &posMerge{txn: txn, opts: badger.IteratorOptions{
		PrefetchValues: values,
		PrefetchSize:   min(limit+1, 100),
	}}
}

// add walks the index under prefix from start on.
func (m *posMerge) add(prefix, start []byte) {
	o := m.opts
	o.Prefix = prefix
	it := m.txn.NewIterator(o)
	m.open = append(m.open, it)
	it.Seek(start)
	m.push(it)
}

func (m *posMerge) push(it *badger.Iterator) {
	if !it.Valid() {
		return
	}
	p := position(it)
	i, _ := slices.BinarySearchFunc(m.its, p, func(o *badger.Iterator, p []byte) int {
		return bytes.Compare(position(o), p)
	})
	m.its = slices.Insert(m.its, i, it)
}

func position(it *badger.Iterator) []byte {
	k := it.Item().Key()
	return k[len(k)-posLen:]
}

// next returns the iterator at the least position, whose Item is valid until
// the next call, or nil after the last.
func (m *posMerge) next() *badger.Iterator {
	if m.last != nil {
		m.last.Next()
		m.push(m.last)
		m.last = nil
	}
	if len(m.its) == 0 {
		return nil
	}
	m.last = m.its[0]
	m.its = m.its[1:]
	return m.last
}

func (m *posMerge) close() {
	for _, it := range m.open {
		it.Close()
	}
	m.open, m.its, m.last = nil, nil, nil
}

// Disclosure returns the disclosure with the given event id from source. With
// source "" it looks the id up alone: ENOTFOUND if no source recorded a
// disclosure with that id, ECONFLICT if more than one did.
func (s *Store) Disclosure(ctx context.Context, id, source string) (*ledger.DisclosureRecord, error) {
	if id == "" {
		return nil, ledger.Errorf(ledger.EINVALID, "disclosure id is required")
	}
	var found []*ledger.DisclosureRecord
	err := s.view(ctx, func(txn *badger.Txn) error {
		if source != "" {
			seq, err := getSeq(txn, dedupeKey(id, source))
			if errors.Is(err, badger.ErrKeyNotFound) {
				return nil
			}
			if err != nil {
				return err
			}
			rec, err := s.maybeDisclosure(txn, seq, id, source)
			if rec != nil {
				found = append(found, rec)
			}
			return err
		}
		prefix := dedupeIDPrefix(id)
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: true, PrefetchSize: 10})
		defer it.Close()
		var seqs []uint64
		for it.Rewind(); it.Valid(); it.Next() {
			v, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			if len(v) != 8 {
				return errCorrupt
			}
			seqs = append(seqs, binary.BigEndian.Uint64(v))
		}
		it.Close()
		for _, seq := range seqs {
			rec, err := s.maybeDisclosure(txn, seq, id, "")
			if err != nil {
				return err
			}
			if rec != nil {
				found = append(found, rec)
			}
		}
		return nil
	})
	switch {
	case err != nil:
		return nil, err
	case len(found) == 0 && source != "":
		return nil, ledger.Errorf(ledger.ENOTFOUND, "no disclosure %q from source %q", id, source)
	case len(found) == 0:
		return nil, ledger.Errorf(ledger.ENOTFOUND, "no disclosure %q", id)
	case len(found) > 1:
		return nil, ledger.Errorf(ledger.ECONFLICT, "disclosure id %q is recorded from %d sources; name the source", id, len(found))
	}
	return found[0], nil
}

// maybeDisclosure returns entry seq as a disclosure record if it is a
// disclosure with the given id (and source, unless source is ""), else nil.
func (s *Store) maybeDisclosure(txn *badger.Txn, seq uint64, id, source string) (*ledger.DisclosureRecord, error) {
	e, err := s.entry(txn, seq)
	if err != nil {
		return nil, err
	}
	d, ok := e.Event.Data.(*ledger.Disclosure)
	if !ok || e.Event.ID != id || (source != "" && e.Event.Source != source) {
		return nil, nil
	}
	return s.withErasureFlag(txn, &ledger.DisclosureRecord{Seq: e.Seq, Source: e.Event.Source, ID: e.Event.ID, RecordedAt: e.RecordedAt, Disclosure: *d, Forgotten: e.Forgotten})
}

// disclosureRecord reads entry seq, which an index says is a disclosure.
func (s *Store) disclosureRecord(txn *badger.Txn, seq uint64) (*ledger.DisclosureRecord, error) {
	e, err := s.entry(txn, seq)
	if err != nil {
		return nil, err
	}
	d, ok := e.Event.Data.(*ledger.Disclosure)
	if !ok {
		return nil, fmt.Errorf("index points at entry %d, a %s", seq, e.Event.Type)
	}
	return s.withErasureFlag(txn, &ledger.DisclosureRecord{Seq: e.Seq, Source: e.Event.Source, ID: e.Event.ID, RecordedAt: e.RecordedAt, Disclosure: *d, Forgotten: e.Forgotten})
}

// Lookup returns the entry recorded for the event (source, id), of any type,
// or ENOTFOUND.
func (s *Store) Lookup(ctx context.Context, source, id string) (*ledger.Entry, error) {
	var e *ledger.Entry
	err := s.view(ctx, func(txn *badger.Txn) error {
		seq, err := getSeq(txn, dedupeKey(id, source))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return ledger.Errorf(ledger.ENOTFOUND, "no event %q from source %q", id, source)
		}
		if err != nil {
			return err
		}
		e, err = s.entry(txn, seq)
		return err
	})
	if err != nil {
		return nil, err
	}
	return e, nil
}

// Entry returns ledger entry seq, or ENOTFOUND.
func (s *Store) Entry(ctx context.Context, seq uint64) (*ledger.Entry, error) {
	var e *ledger.Entry
	err := s.view(ctx, func(txn *badger.Txn) error {
		var err error
		e, err = s.entry(txn, seq)
		if errors.Is(err, badger.ErrKeyNotFound) {
			return ledger.Errorf(ledger.ENOTFOUND, "no ledger entry %d", seq)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return e, nil
}

func (s *Store) entry(txn *badger.Txn, seq uint64) (*ledger.Entry, error) {
	h, err := getEntryHeader(txn, s.keys, seq)
	if err != nil {
		return nil, err
	}
	ev, err := decodeEvent(h.raw)
	if err != nil {
		return nil, fmt.Errorf("entry %d: %w", seq, err)
	}
	return &ledger.Entry{Seq: seq, StreamSeq: h.streamSeq, RecordedAt: h.recordedAt, Event: ev, Forgotten: h.forgotten}, nil
}

func getSeq(txn *badger.Txn, key []byte) (uint64, error) {
	item, err := txn.Get(key)
	if err != nil {
		return 0, err
	}
	var seq uint64
	err = item.Value(func(v []byte) error {
		if len(v) != 8 {
			return errCorrupt
		}
		seq = binary.BigEndian.Uint64(v)
		return nil
	})
	return seq, err
}

// Recipients returns the recipient registry, sorted by id.
func (s *Store) Recipients(ctx context.Context) ([]ledger.Recipient, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	reg := *s.recipients.Load()
	out := make([]ledger.Recipient, 0, len(reg))
	for _, r := range reg {
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b ledger.Recipient) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

// Recipient returns the current definition of recipient id, or ENOTFOUND.
func (s *Store) Recipient(ctx context.Context, id string) (*ledger.Recipient, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r, ok := (*s.recipients.Load())[id]
	if !ok {
		return nil, ledger.Errorf(ledger.ENOTFOUND, "no recipient %q", id)
	}
	return &r, nil
}
