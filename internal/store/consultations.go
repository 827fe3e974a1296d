package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"

	"github.com/dgraph-io/badger/v4"

	"github.com/sharelog/sharelog/internal/ledger"
)

// This file holds the consultation log (DPA 2018 s.62): the indexes of
// org.sharelog.consultation.v1 entries and their listing. The entry itself
// is sealed like any entry naming a person (the person's identifier and
// the reason under the subject's key; the reason of a query not about one
// person under a data key of the entry's own), so forgetting the person
// leaves the consultation, unlinkable. Its keys:
//
//	C t at(8) seq(8)              -> (empty)   consultations by time (at: the ledger's time of the entry)
//	C p H16(principal) at(8) seq(8) -> (empty) consultations by principal
//	C s K16(subject) at(8) seq(8) -> (empty)   consultations of a person; after forgetting, K16 links to no one
//
// Nothing else in the ledger reads them: verify recomputes them all from
// the entries (verify_state.go).

// prefixConsultation starts every key of the consultation log; the byte
// after it names the index.
const prefixConsultation = 'C'

// The consultation indexes.
const (
	consultByTime      = 't'
	consultByPrincipal = 'p'
	consultBySubject   = 's'
)

// consultationPrefix is the prefix of one consultation index: by time
// (part nil), by principal (part its H16) or by subject (part its K16).
func consultationPrefix(index byte, part []byte) []byte {
	k := make([]byte, 0, 2+len(part)+posLen)
	k = append(k, prefixConsultation, index)
	return append(k, part...)
}

// consultationKeys returns the index keys of consultation entry seq,
// recorded at at by principal; subject is the person's keyed hash, nil
// for a query not about one person.
func consultationKeys(seq uint64, c *ledger.ConsultationEffect, subject []byte) [][]byte {
	ph := idHash(c.Principal)
	keys := [][]byte{
		appendPos(consultationPrefix(consultByTime, nil), c.At, seq),
		appendPos(consultationPrefix(consultByPrincipal, ph[:]), c.At, seq),
	}
	if subject != nil {
		keys = append(keys, appendPos(consultationPrefix(consultBySubject, subject), c.At, seq))
	}
	return keys
}

// indexConsultation writes the indexes of consultation entry seq; hashes
// are the keyed hashes of the subjects the entry names (the person looked
// up first, when it is about one).
func (b *Batch) indexConsultation(seq uint64, c *ledger.ConsultationEffect, hashes [][]byte) error {
	var subject []byte
	if c.BySubject {
		if len(hashes) == 0 {
			return b.fail(fmt.Errorf("store: consultation entry %d about a person names no subject", seq))
		}
		subject = hashes[0]
	}
	for _, k := range consultationKeys(seq, c, subject) {
		if err := b.set(k, nil); err != nil {
			return err
		}
	}
	return nil
}

// Consultations lists the consultation log in (RecordedAt, Seq) order, one
// page at a time: at most f.Limit (DefaultLimit when 0, MaxLimit at most).
// A filter by subject selects the consultations of that person (none for a
// person the ledger does not know, or has forgotten); by principal, those
// of the principal; Since and Until bound RecordedAt. Next, when not empty,
// is the After of the following page. It returns EINVALID for a bad
// cursor, a negative limit or an incomplete subject.
func (s *Store) Consultations(ctx context.Context, f ledger.ConsultationFilter) (*ledger.ConsultationPage, error) {
	limit, err := ledger.PageLimit(f.Limit)
	if err != nil {
		return nil, err
	}
	page := &ledger.ConsultationPage{Consultations: []ledger.ConsultationRecord{}}
	var prefix []byte
	filterPrincipal := false // the subject index is read: the principal is checked on the entry
	switch {
	case f.Subject != nil:
		if f.Subject.Scheme == "" || f.Subject.ID == "" {
			return nil, ledger.Errorf(ledger.EINVALID, "subject needs a scheme and an id")
		}
		var h []byte
		if err := s.view(ctx, func(txn *badger.Txn) error {
			var err error
			h, err = s.subjectHash(txn, *f.Subject)
			return err
		}); err != nil {
			return nil, err
		}
		if h == nil {
			return page, nil
		}
		prefix = consultationPrefix(consultBySubject, h)
		filterPrincipal = f.Principal != ""
	case f.Principal != "":
		ph := idHash(f.Principal)
		prefix = consultationPrefix(consultByPrincipal, ph[:])
	default:
		prefix = consultationPrefix(consultByTime, nil)
	}

	start := prefix
	if !f.Since.IsZero() {
		start = binary.BigEndian.AppendUint64(slices.Clip(prefix), encodeTime(f.Since))
	}
	if f.After != "" {
		at, seq, err := decodeCursor(f.After)
		if err != nil {
			return nil, err
		}
		after := append(binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(slices.Clip(prefix), at), seq), 0)
		if bytes.Compare(after, start) > 0 {
			start = after
		}
	}
	hasUntil := !f.Until.IsZero()
	until := encodeTime(f.Until)

	err = s.view(ctx, func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchSize: min(limit+1, 100)})
		defer it.Close()
		var lastAt, lastSeq uint64
		n := 0
		for it.Seek(start); it.Valid(); it.Next() {
			n++
			if n%ctxCheckEvery == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			k := it.Item().Key()
			if len(k) != len(prefix)+posLen {
				return fmt.Errorf("consultation index key of %d bytes: %w", len(k), errCorrupt)
			}
			at, seq := splitPos(k)
			if hasUntil && at >= until {
				break
			}
			if len(page.Consultations) == limit {
				page.Next = encodeCursor(lastAt, lastSeq)
				break
			}
			rec, err := s.consultationRecord(txn, seq)
			if err != nil {
				return err
			}
			if filterPrincipal && rec.Principal != f.Principal {
				continue
			}
			page.Consultations = append(page.Consultations, *rec)
			lastAt, lastSeq = at, seq
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return page, nil
}

// consultationRecord reads entry seq, which an index says is a consultation.
func (s *Store) consultationRecord(txn *badger.Txn, seq uint64) (*ledger.ConsultationRecord, error) {
	e, err := s.entry(txn, seq)
	if err != nil {
		return nil, err
	}
	c, ok := e.Event.Data.(*ledger.Consultation)
	if !ok {
		return nil, fmt.Errorf("consultation index points at entry %d, a %s", seq, e.Event.Type)
	}
	rec := ledger.ConsultationRecordOf(e.Seq, e.RecordedAt, e.Event.Time, c, e.Forgotten)
	return &rec, nil
}

// consultation expects the indexes of consultation entry seq, whose plan
// names the subjects names (as the replay's tokens, which hold their keyed
// hashes).
func (r *replay) consultation(seq uint64, c *ledger.ConsultationEffect, names []ledger.Subject) {
	var subject []byte
	if c.BySubject && len(names) > 0 {
		subject = []byte(strings.TrimPrefix(names[0].ID, "\x00"))
		if r.bySubject[string(subject)] == nil {
			// The person is known: its locator is expected while it stays so.
			r.bySubject[string(subject)] = map[string]string{}
		}
	}
	for _, k := range consultationKeys(seq, c, subject) {
		r.expect(prefixConsultation, k, "")
	}
}

// describeConsultation names a key of the consultation log for verify's
// report; a person appears only as a keyed hash.
func describeConsultation(k []byte) string {
	if len(k) < 2+posLen {
		return fmt.Sprintf("record %q", k)
	}
	_, seq := splitPos(k)
	part := k[2 : len(k)-posLen]
	switch {
	case k[1] == consultByTime && len(part) == 0:
		return fmt.Sprintf("consultation entry %d in the consultation log by time", seq)
	case k[1] == consultByPrincipal && len(part) == idHashLen:
		return fmt.Sprintf("consultation entry %d in the consultation log by principal %x", seq, part)
	case k[1] == consultBySubject && len(part) == subjectHashLen:
		return fmt.Sprintf("consultation entry %d in the consultation log of subject %x", seq, part)
	}
	return fmt.Sprintf("record %q", k)
}
