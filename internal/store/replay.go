package store

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/dgraph-io/badger/v4"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/sharelog/sharelog/internal/ledger"
)

// This file lets the ledger tell a replayed event from a conflicting one
// (ledger.Replay), and lets forgetting find every copy of a person's events
// in the streams: the later deliveries of a recorded event, and the refused
// messages that name the person.
//
//	U seq(8) streamSeq(8)          -> (empty)            a later delivery of entry seq's event (duplicate or conflict) at that SHARELOG_IN sequence
//	R L16(subject) streamSeq(8)    -> rejectedSeq(8)     a refused message naming the subject: its SHARELOG_IN and SHARELOG_REJECTED sequences
//
// A replay is compared with the recorded entry itself, opened with its key
// (the ledger keeps no other copy of the content): both in canonical JSON
// (RFC 8785: members sorted, numbers and strings in one form), hashed. It
// costs nothing when an event is first recorded, only when one is sent
// again, and holds for entries recorded before this comparison existed.
// Once the entry's subject is forgotten its personal part cannot be opened
// and the ledger cannot tell: a replay is a duplicate again.
//
// Neither record is derived from the entries, so verify does not compare
// them (verify_state.go skips their kinds).
const (
	prefixDelivery = 'U'
	prefixRefused  = 'R'
)

func deliveryKey(seq, streamSeq uint64) []byte {
	return binary.BigEndian.AppendUint64(deliveryPrefix(seq), streamSeq)
}

func deliveryPrefix(seq uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{prefixDelivery}, seq)
}

func refusedPrefix(loc []byte) []byte { return append([]byte{prefixRefused}, loc...) }

// contentDigest returns SHA-256 of raw, an event in the CloudEvents JSON
// format, in canonical JSON.
func contentDigest(raw []byte) ([]byte, error) {
	canon := jsontext.Value(slices.Clone(raw))
	if err := canon.Canonicalize(); err != nil {
		return nil, fmt.Errorf("store: canonical form of the event: %w", err)
	}
	sum := sha256.Sum256(canon)
	return sum[:], nil
}

// replayed applies ev, delivered at streamSeq, whose (source, id) the ledger
// has recorded under dedupe key dkey: ledger.Replay decides from the
// digests, and the delivery is recorded against the entry, so that
// forgetting finds this copy in SHARELOG_IN too.
func (b *Batch) replayed(streamSeq uint64, dkey []byte, ev *ledger.Event) (ledger.Outcome, error) {
	seq, recorded, replayed, err := b.s.digests(b.txn, dkey, ev)
	if err != nil {
		return 0, b.fail(err)
	}
	if err := b.set(deliveryKey(seq, streamSeq), nil); err != nil {
		return 0, err
	}
	out, err := ledger.Replay(recorded, replayed)
	if err != nil {
		return b.refuse(err)
	}
	return out, nil
}

// digests returns the entry recorded under dedupe key dkey, the digest
// of its content (nil when its personal part cannot be opened any more:
// its subject was forgotten) and the digest of ev's.
func (s *Store) digests(txn *badger.Txn, dkey []byte, ev *ledger.Event) (seq uint64, recorded, replayed []byte, err error) {
	if seq, err = getSeq(txn, dkey); err != nil {
		return 0, nil, nil, fmt.Errorf("store: replay: %w", err)
	}
	h, err := getEntryHeader(txn, s.keys, seq)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("store: replay: entry %d: %w", seq, err)
	}
	if h.forgotten {
		return seq, nil, nil, nil // cannot tell
	}
	if recorded, err = contentDigest(h.raw); err != nil {
		return 0, nil, nil, fmt.Errorf("store: replay: entry %d: %w", seq, err)
	}
	replayed, err = contentDigest(ev.Raw)
	return seq, recorded, replayed, err
}

// CheckReplay returns the conflict ledger.Replay finds when ev's (source,
// id) is recorded with other content, and nil when it is not recorded or
// the content is the same: the check POST /v1/events makes before it
// publishes. The ingest loop decides again when it applies the event.
func (s *Store) CheckReplay(ctx context.Context, ev *ledger.Event) error {
	return s.view(ctx, func(txn *badger.Txn) error {
		dkey := dedupeKey(ev.ID, ev.Source)
		if _, err := txn.Get(dkey); errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		_, recorded, replayed, err := s.digests(txn, dkey, ev)
		if err != nil {
			return err
		}
		_, err = ledger.Replay(recorded, replayed)
		return err
	})
}

// Refused records in the batch that the message at SHARELOG_IN sequence
// streamSeq, refused and kept at SHARELOG_REJECTED sequence rejectedSeq,
// names the subjects, by their locators (no identifier is written), so
// that forgetting any of them scrubs both copies. The ingest loop calls it
// once the rejection is stored, before it commits the batch.
func (b *Batch) Refused(subjects []ledger.Subject, streamSeq, rejectedSeq uint64) error {
	if err := b.check(); err != nil {
		return err
	}
	for _, subj := range subjects {
		k := binary.BigEndian.AppendUint64(refusedPrefix(b.hasher.hash(subj)), streamSeq)
		if err := b.set(k, binary.BigEndian.AppendUint64(nil, rejectedSeq)); err != nil {
			return err
		}
	}
	return nil
}

// scrubDeliveries adds to r the later deliveries of entry seq, and deletes
// their records.
func (b *Batch) scrubDeliveries(r *scrubRecord, seq uint64) error {
	keys, err := b.keysWithPrefix(deliveryPrefix(seq))
	if err != nil {
		return err
	}
	for _, k := range keys {
		r.StreamSeqs = append(r.StreamSeqs, binary.BigEndian.Uint64(k[len(k)-8:]))
		if err := b.del(k); err != nil {
			return err
		}
	}
	return nil
}

// scrubRefused adds to r the refused messages naming the subject with
// locator loc, and deletes their records.
func (b *Batch) scrubRefused(r *scrubRecord, loc []byte) error {
	it, err := b.iterator(badger.IteratorOptions{Prefix: refusedPrefix(loc), PrefetchValues: true})
	if err != nil {
		return err
	}
	var keys [][]byte
	for it.Rewind(); it.Valid(); it.Next() {
		k := it.Item().KeyCopy(nil)
		v, err := it.Item().ValueCopy(nil)
		if err != nil || len(v) != 8 {
			it.Close()
			return b.fail(fmt.Errorf("store: forget: refused message record: %w", errors.Join(err, errCorrupt)))
		}
		r.StreamSeqs = append(r.StreamSeqs, binary.BigEndian.Uint64(k[len(k)-8:]))
		r.Rejected = append(r.Rejected, binary.BigEndian.Uint64(v))
		keys = append(keys, k)
	}
	it.Close()
	for _, k := range keys {
		if err := b.del(k); err != nil {
			return err
		}
	}
	return nil
}
