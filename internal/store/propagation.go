package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"

	"github.com/sharelog/sharelog/internal/ledger"
)

// This file keeps propagation's records (UK GDPR Art. 19, DPA 2018 s.48):
// a request, the obligations it opens and their notices, as ledger.Decide
// planned them, written in the transaction of the request's entry so that
// they commit together or not at all.

// writeRequest writes the request record, its obligations, their sealed
// notices and indexes and, for an erasure, the marker that flags later
// disclosures of the same data.
func (b *Batch) writeRequest(seq uint64, p *ledger.RequestEffect) error {
	rec := &p.Record
	rec.Seq = seq
	rec.Notices = make([]string, 0, len(p.Obligations))
	for i := range p.Obligations {
		o := &p.Obligations[i]
		rec.Notices = append(rec.Notices, o.Notice)
		if err := b.openObligation(o, &p.Notices[i], rec.Subject, b.ref, b.key); err != nil {
			return err
		}
	}
	if err := b.putRequest(rec); err != nil {
		return err
	}
	if err := b.set(subjectRequestKey(rec.Subject, rec.Request), nil); err != nil {
		return err
	}
	if p.Lifted != nil {
		if err := b.putRequest(p.Lifted); err != nil {
			return err
		}
	}
	for i := range p.Held {
		if err := b.putHold(&p.Held[i]); err != nil {
			return err
		}
	}
	if p.Erasure != nil {
		// One key per subject holding all its erasure markers, so that each
		// disclosure checks it with one point lookup, not an iterator.
		k := erasureKey(rec.Subject)
		b.s.marked.add(rec.Subject) // before the write: the set never misses a subject with markers (marked.go)
		v, err := b.get(k)
		if err != nil {
			return b.fail(err)
		}
		if err := b.set(k, encodeErasureMarker(v, p.Erasure)); err != nil {
			return err
		}
	}
	b.s.log.Info("request recorded", "request", rec.Request, "type", rec.Type, "obligations", len(p.Obligations))
	return nil
}

// writeProceed writes the obligations to erase that a hold's release opens
// (ledger.ProceedEffect): each notice takes its subject from the held
// notice it follows and is sealed under that subject's key, as the
// request's own notices are; the requests are rewritten with the new
// notices.
func (b *Batch) writeProceed(p *ledger.ProceedEffect) error {
	for i := range p.Obligations {
		o, pn := &p.Obligations[i], &p.Notices[i]
		v, err := b.get(noticeKey(pn.From))
		if err != nil {
			return b.fail(err)
		}
		held, err := openNotice(b.txn, b.s.keys, pn.From, v)
		if err != nil || held == nil {
			return b.fail(fmt.Errorf("store: held notice %q does not open: %v", pn.From, err))
		}
		n := pn.Notice
		n.Subject = held.Subject
		key, err := b.subjectKey(pn.SubjectHash)
		if err != nil {
			return b.fail(err)
		}
		if err := b.openObligation(o, &n, pn.SubjectHash, keyRef{subject: pn.SubjectHash}, key); err != nil {
			return err
		}
	}
	for i := range p.Requests {
		if err := b.putRequest(&p.Requests[i]); err != nil {
			return err
		}
	}
	b.s.log.Info("erasures proceed after a legal hold", "obligations", len(p.Obligations))
	return nil
}

// openObligation writes a new obligation o of the subject with keyed hash
// subject, its notice n sealed under key (named by ref), and its indexes:
// by due date, by recipient and due date, by subject.
func (b *Batch) openObligation(o *ledger.Obligation, n *ledger.Notice, subject []byte, ref keyRef, key []byte) error {
	sealed, err := sealNotice(n, ref, key)
	if err != nil {
		return b.fail(err)
	}
	if err := b.set(noticeKey(o.Notice), sealed); err != nil {
		return err
	}
	if err := b.set(byDueKey(o.Due, o.Notice), nil); err != nil {
		return err
	}
	if err := b.set(recipientDueKey(o.Recipient, o.Due, o.Notice), nil); err != nil {
		return err
	}
	if err := b.set(subjectObligationKey(subject, o.Notice), []byte(o.Recipient)); err != nil {
		return err
	}
	return b.putObligation(o)
}

// putObligation writes o and keeps the open index in step: an open
// obligation is indexed by (OpenedAt, Notice), a closed one is not. nil
// writes nothing.
func (b *Batch) putObligation(o *ledger.Obligation) error {
	if o == nil {
		return nil
	}
	stored := *o
	stored.Name, stored.Overdue = "", false
	v, err := json.Marshal(&stored)
	if err != nil {
		return b.fail(fmt.Errorf("store: encode obligation: %w", err))
	}
	if err := b.set(obligationKey(o.Notice), v); err != nil {
		return err
	}
	ok := openKey(o.OpenedAt, o.Notice)
	if o.Open() {
		return b.set(ok, binary.BigEndian.AppendUint64(nil, encodeTime(o.Due)))
	}
	if err := b.txn.Delete(ok); err != nil {
		return b.fail(fmt.Errorf("store: append: %w", err))
	}
	return nil
}

func (b *Batch) putRequest(r *ledger.RequestRecord) error {
	v, err := json.Marshal(r)
	if err != nil {
		return b.fail(fmt.Errorf("store: encode request: %w", err))
	}
	return b.set(requestKey(r.Request), v)
}

// request returns the request record in the batch's view, or nil.
func (b *Batch) request(id string) (*ledger.RequestRecord, error) {
	return getRequest(b.txn, id)
}

// obligation returns the obligation in the batch's view, or nil.
func (b *Batch) obligation(notice string) (*ledger.Obligation, error) {
	return getObligation(b.txn, notice)
}

// get returns a copy of the value of key in the batch's view, or nil.
func (b *Batch) get(key []byte) ([]byte, error) {
	item, err := b.txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("store: read: %w", err)
	}
	return item.ValueCopy(nil)
}

// flagAfterErasure records that disclosure seq came after the erasure
// request, and says so in the log (no identifier: the recipient, the event
// id and the request id).
func (b *Batch) flagAfterErasure(seq uint64, id, recipient, request string) error {
	b.s.log.Warn("disclosure after erasure", "recipient", recipient, "disclosure", id, "request", request)
	return b.set(afterErasureKey(seq), []byte(request))
}

// getRequest reads a request record within txn, or nil.
func getRequest(txn *badger.Txn, id string) (*ledger.RequestRecord, error) {
	item, err := txn.Get(requestKey(id))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("store: read request: %w", err)
	}
	var r ledger.RequestRecord
	if err := item.Value(func(v []byte) error { return json.Unmarshal(v, &r) }); err != nil {
		return nil, fmt.Errorf("store: read request: %w", err)
	}
	return &r, nil
}

// getObligation reads an obligation within txn, or nil.
func getObligation(txn *badger.Txn, notice string) (*ledger.Obligation, error) {
	item, err := txn.Get(obligationKey(notice))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("store: read obligation: %w", err)
	}
	var o ledger.Obligation
	if err := item.Value(func(v []byte) error { return json.Unmarshal(v, &o) }); err != nil {
		return nil, fmt.Errorf("store: read obligation: %w", err)
	}
	return &o, nil
}

// Notice payload formats: the first byte of a notice value.
const (
	noticePlain  byte = 1 // JSON in plain text (ledgers written before sealing)
	noticeSealed byte = 3 // keyRef of the request entry's key, then the JSON sealed under it
)

// sealNotice encodes a notice payload, which holds the subject's identifier
// and rectified values: noticeSealed, the reference to the key of the
// request's entry, then the JSON encrypted under that key, bound to the
// notice key. Forgetting the subject destroys the key, and with it every
// notice of the request.
func sealNotice(n *ledger.Notice, ref keyRef, key []byte) ([]byte, error) {
	j, err := json.Marshal(n)
	if err != nil {
		return nil, fmt.Errorf("store: encode notice: %w", err)
	}
	ct, err := sealData(key, noticeKey(n.Notice), j, false) // outside the tree: a random nonce
	if err != nil {
		return nil, err
	}
	return append(ref.append([]byte{noticeSealed}), ct...), nil
}

// openNotice reverses sealNotice within txn. It returns nil, nil when the
// notice's key is gone: its subject was forgotten.
func openNotice(txn *badger.Txn, kr *keyring, notice string, v []byte) (*ledger.Notice, error) {
	var j []byte
	switch {
	case len(v) >= 1 && v[0] == noticePlain:
		j = v[1:]
	case len(v) >= 1 && v[0] == noticeSealed:
		ref, ct, err := readKeyRef(v[1:])
		if err != nil {
			return nil, err
		}
		key, err := kr.key(txn, ref)
		if err != nil || key == nil {
			return nil, err
		}
		if j, err = openData(key, noticeKey(notice), ct); err != nil {
			return nil, fmt.Errorf("store: notice %q does not open: %w", notice, err)
		}
	default:
		return nil, errCorrupt
	}
	var n ledger.Notice
	if err := json.Unmarshal(j, &n); err != nil {
		return nil, fmt.Errorf("store: decode notice: %w", err)
	}
	return &n, nil
}
