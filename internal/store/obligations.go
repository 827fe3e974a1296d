package store

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/sharelog/sharelog/internal/ledger"
)

// decorate fills in what an obligation does not store: the recipient's
// current name and channel, and Overdue, from the clock now.
func (s *Store) decorate(o *ledger.Obligation, now time.Time) {
	if r, ok := (*s.recipients.Load())[o.Recipient]; ok {
		o.Name = r.Name
		o.Channel = cmp.Or(r.Channel.Type, o.Channel)
	}
	o.SetOverdue(now)
}

// Obligation returns one obligation by notice id, or ENOTFOUND. Overdue is
// computed with the store's clock; Name and Channel are the recipient's
// current ones.
func (s *Store) Obligation(ctx context.Context, notice string) (*ledger.Obligation, error) {
	var o *ledger.Obligation
	err := s.view(ctx, func(txn *badger.Txn) error {
		var err error
		o, err = getObligation(txn, notice)
		return err
	})
	if err != nil {
		return nil, err
	}
	if o == nil {
		return nil, ledger.Errorf(ledger.ENOTFOUND, "no notice %q", notice)
	}
	s.decorate(o, s.now())
	return o, nil
}

// Status returns the propagation of one request to every recipient, sorted
// by recipient id, or ENOTFOUND for a request not in the ledger. A request
// no recipient received the affected data of has no obligations.
func (s *Store) Status(ctx context.Context, request string) (*ledger.RequestStatus, error) {
	if request == "" {
		return nil, ledger.Errorf(ledger.EINVALID, "request id is required")
	}
	now := s.now()
	var st *ledger.RequestStatus
	err := s.view(ctx, func(txn *badger.Txn) error {
		rec, err := getRequest(txn, request)
		if err != nil || rec == nil {
			return err
		}
		obs, err := readObligations(txn, rec.Notices)
		if err != nil {
			return err
		}
		st = &ledger.RequestStatus{
			Request: rec.Request, Type: rec.Type, Action: rec.Action, DecidedAt: rec.DecidedAt,
			Regime: rec.Regime, Categories: rec.Categories, Obligations: obs, ForgottenAt: rec.ForgottenAt,
			Answer:            rec.Answer,
			SubjectInformedAt: rec.SubjectInformedAt,
		}
		if rec.ForgottenAt == nil {
			st.Holds, err = s.holdsCovering(txn, rec.Subject)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if st == nil {
		return nil, ledger.Errorf(ledger.ENOTFOUND, "no request %q", request)
	}
	for i := range st.Obligations {
		s.decorate(&st.Obligations[i], now)
	}
	answerStatus(st.Answer, st.Obligations, now)
	slices.SortFunc(st.Obligations, func(a, b ledger.Obligation) int { return cmp.Compare(a.Recipient, b.Recipient) })
	return st, nil
}

// readObligations reads the obligations of notices, which must exist.
func readObligations(txn *badger.Txn, notices []string) ([]ledger.Obligation, error) {
	out := make([]ledger.Obligation, 0, len(notices))
	for _, n := range notices {
		o, err := getObligation(txn, n)
		if err != nil {
			return nil, err
		}
		if o == nil {
			return nil, fmt.Errorf("notice %q is missing", n)
		}
		out = append(out, *o)
	}
	return out, nil
}

// Obligations lists obligations across requests in (Due, Notice) order:
// with f.Overdue only open ones past due by the store's clock, or whose
// request's deadline for answering the person has passed (AnswerOverdue), with
// f.Recipient only that recipient's, with f.State only those in that state.
// It returns EINVALID for an unknown state or a negative limit.
func (s *Store) Obligations(ctx context.Context, f ledger.ObligationFilter) (*ledger.ObligationList, error) {
	limit, err := ledger.PageLimit(f.Limit)
	if err != nil {
		return nil, err
	}
	switch f.State {
	case "", ledger.StatePending, ledger.StateDelivered, ledger.StateAcknowledged, ledger.StateExempted:
	default:
		return nil, ledger.Errorf(ledger.EINVALID, "state must be pending, delivered, acknowledged or exempted")
	}
	prefix := []byte{prefixByDue}
	if f.Recipient != "" {
		prefix = recipientDuePrefix(f.Recipient)
	}
	now := s.now()
	nowAt := encodeTime(now)
	list := &ledger.ObligationList{Obligations: []ledger.Obligation{}}
	answers := answerCache{}
	err = s.view(ctx, func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
		defer it.Close()
		n := 0
		for it.Rewind(); it.Valid(); it.Next() {
			n++
			if n%ctxCheckEvery == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			k := it.Item().Key()
			due := binary.BigEndian.Uint64(k[len(prefix):])
			if f.Overdue && due >= nowAt {
				break // the rest are due later
			}
			o, err := getObligation(txn, string(k[len(prefix)+8:]))
			if err != nil {
				return err
			}
			if o == nil {
				return fmt.Errorf("due index names a missing obligation")
			}
			s.decorate(o, now)
			if err := answers.decorate(txn, o, now); err != nil {
				return err
			}
			if (f.Overdue && !o.Overdue && !o.AnswerOverdue) || (f.State != "" && o.State != f.State) {
				continue
			}
			if len(list.Obligations) == limit {
				list.More = true
				break
			}
			list.Obligations = append(list.Obligations, *o)
		}
		if f.Overdue {
			return s.answerOverdue(ctx, txn, f, now, answers, limit, list)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return list, nil
}

// answerOverdue adds to an overdue listing the open obligations that are
// not past their own due date but whose request's deadline for answering
// the person has passed (UK GDPR Art. 12(3)): overdue for either clock.
// It walks the open index (open obligations only) and keeps the listing in
// (Due, Notice) order, at most limit.
func (s *Store) answerOverdue(ctx context.Context, txn *badger.Txn, f ledger.ObligationFilter, now time.Time, answers answerCache, limit int, list *ledger.ObligationList) error {
	listed := make(map[string]bool, len(list.Obligations))
	for _, o := range list.Obligations {
		listed[o.Notice] = true
	}
	var extra []ledger.Obligation
	err := eachOpen(ctx, txn, func(o *ledger.Obligation) (bool, error) {
		if listed[o.Notice] || (f.Recipient != "" && o.Recipient != f.Recipient) || (f.State != "" && o.State != f.State) {
			return true, nil
		}
		s.decorate(o, now)
		if o.Overdue {
			return true, nil // past its own due date: listed already, unless beyond the limit
		}
		if err := answers.decorate(txn, o, now); err != nil {
			return false, err
		}
		if o.AnswerOverdue {
			extra = append(extra, *o)
		}
		return true, nil
	})
	if err != nil || len(extra) == 0 {
		return err
	}
	all := append(list.Obligations, extra...)
	slices.SortFunc(all, func(a, b ledger.Obligation) int {
		return cmp.Or(a.Due.Compare(b.Due), cmp.Compare(a.Notice, b.Notice))
	})
	if len(all) > limit {
		all, list.More = all[:limit], true
	}
	list.Obligations = all
	return nil
}

// ObligationCounts returns how many obligations are open and how many of
// those are overdue by the store's clock. It reads the open index only.
func (s *Store) ObligationCounts(ctx context.Context) (open, overdue int, err error) {
	nowAt := encodeTime(s.now())
	err = s.view(ctx, func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixOpen}, PrefetchValues: true, PrefetchSize: 256})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			open++
			if err := it.Item().Value(func(v []byte) error {
				if len(v) != 8 {
					return errCorrupt
				}
				if binary.BigEndian.Uint64(v) < nowAt {
					overdue++
				}
				return nil
			}); err != nil {
				return err
			}
		}
		return nil
	})
	return open, overdue, err
}

// openObligationsBySubject counts the open obligations about the subject
// with this keyed hash per recipient.
func (s *Store) openObligationsBySubject(ctx context.Context, subjectHash []byte) (map[string]int, error) {
	prefix := subjectObligationPrefix(subjectHash)
	counts := map[string]int{}
	err := s.view(ctx, func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			o, err := getObligation(txn, string(it.Item().Key()[len(prefix):]))
			if err != nil {
				return err
			}
			if o != nil && o.Open() {
				counts[o.Recipient]++
			}
		}
		return nil
	})
	return counts, err
}

// SubjectReport lists the rectifications, erasures, restrictions and
// liftings about subj, in order of decision, and for each the recipients
// that were to be told, whether and when they were told and answered (UK
// GDPR Art. 19, second sentence). A subject with no requests gets an empty
// report, not ENOTFOUND.
func (s *Store) SubjectReport(ctx context.Context, subj ledger.Subject) (*ledger.SubjectReport, error) {
	if subj.Scheme == "" || subj.ID == "" {
		return nil, ledger.Errorf(ledger.EINVALID, "subject needs a scheme and an id")
	}
	now := s.now()
	reg := *s.recipients.Load()
	rep := &ledger.SubjectReport{Requests: []ledger.SubjectRequest{}}
	err := s.view(ctx, func(txn *badger.Txn) error {
		h, err := s.subjectHash(txn, subj)
		if h == nil || err != nil {
			return err // a subject the ledger does not know, or forgot
		}
		sums, err := s.state(txn).Disclosures(h)
		if err != nil {
			return err
		}
		inquiry := make(map[string]bool, len(sums))
		for _, d := range sums {
			inquiry[d.ID] = d.Inquiry
		}
		prefix := subjectRequestPrefix(h)
		var ids []string
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
		for it.Rewind(); it.Valid(); it.Next() {
			ids = append(ids, string(it.Item().Key()[len(prefix):]))
		}
		it.Close()
		for _, id := range ids {
			rec, err := getRequest(txn, id)
			if err != nil {
				return err
			}
			if rec == nil {
				return fmt.Errorf("subject index names a missing request")
			}
			obs, err := readObligations(txn, rec.Notices)
			if err != nil {
				return err
			}
			sr := ledger.SubjectRequest{
				Request: rec.Request, Type: rec.Type, Action: rec.Action, DecidedAt: rec.DecidedAt,
				Categories: rec.Categories, Recipients: make([]ledger.RecipientNotified, 0, len(obs)),
				Answer:            rec.Answer,
				SubjectInformedAt: rec.SubjectInformedAt,
			}
			answerStatus(sr.Answer, obs, now)
			for _, o := range obs {
				if reg[o.Recipient].InquiryAuthority || allInquiry(o.Disclosures, inquiry) {
					// UK GDPR Art. 4(9): an authority receiving data within a
					// particular inquiry is not a recipient; the subject's
					// report does not name it (who and status still do).
					continue
				}
				s.decorate(&o, now)
				rn := ledger.RecipientNotified{
					Recipient: o.Recipient, Name: reg[o.Recipient].Name, Notice: o.Notice, State: o.State,
					Categories: o.Categories, Due: o.Due, Overdue: o.Overdue, ToldAt: o.DeliveredAt,
					AcknowledgedAt: o.AcknowledgedAt, Outcome: o.Outcome, ExemptedAt: o.ExemptedAt,
				}
				if o.Exemption != nil {
					rn.Exemption = o.Exemption.Reason
				}
				sr.Recipients = append(sr.Recipients, rn)
			}
			slices.SortFunc(sr.Recipients, func(a, b ledger.RecipientNotified) int { return cmp.Compare(a.Recipient, b.Recipient) })
			rep.Requests = append(rep.Requests, sr)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(rep.Requests, func(a, b ledger.SubjectRequest) int {
		return cmp.Or(a.DecidedAt.Compare(b.DecidedAt), cmp.Compare(a.Request, b.Request))
	})
	return rep, nil
}

// DueNotices returns up to limit open obligations whose next delivery
// attempt is due at or before now: never attempted; failed with
// NextAttemptAt <= now; or, when remindEvery > 0, delivered but overdue with
// no attempt in the last remindEvery (Reminder=true). Manual-channel
// obligations are never returned (a person sends them). Ordered by
// (OpenedAt, Notice). Each OutgoingNotice.Event is the org.sharelog.notice.v1
// structured CloudEvent JSON (source "sharelog", id = the notice id, type
// org.sharelog.notice.v1, time = the obligation's OpenedAt, data =
// ledger.Notice). A pending obligation that failed with no NextAttemptAt is
// not retried. The channel is the recipient's current one.
func (s *Store) DueNotices(ctx context.Context, now time.Time, remindEvery time.Duration, limit int) ([]ledger.OutgoingNotice, error) {
	if limit <= 0 {
		return nil, nil
	}
	return s.scanOpen(ctx, now, limit, func(o *ledger.Obligation) (due, reminder bool) {
		return o.DueForDelivery(now, remindEvery)
	})
}

// ManualQueue returns open manual-channel obligations not yet marked sent
// (still pending), with their notices, ordered by (OpenedAt, Notice).
func (s *Store) ManualQueue(ctx context.Context) ([]ledger.OutgoingNotice, error) {
	return s.scanOpen(ctx, s.now(), 0, func(o *ledger.Obligation) (bool, bool) {
		return o.InManualQueue(), false
	})
}

// scanOpen walks the open obligations in (OpenedAt, Notice) order and
// returns those keep selects, with their notices as CloudEvents, at most
// limit (0: all). Overdue is computed from now.
func (s *Store) scanOpen(ctx context.Context, now time.Time, limit int, keep func(*ledger.Obligation) (bool, bool)) ([]ledger.OutgoingNotice, error) {
	out := []ledger.OutgoingNotice{}
	err := s.view(ctx, func(txn *badger.Txn) error {
		return eachOpen(ctx, txn, func(o *ledger.Obligation) (bool, error) {
			s.decorate(o, now)
			ok, reminder := keep(o)
			if !ok {
				return true, nil
			}
			ev, err := noticeEvent(txn, s.keys, o)
			if err != nil {
				return false, err
			}
			if ev == nil {
				// The subject was forgotten before this notice was closed:
				// it can no longer be sent.
				return true, nil
			}
			out = append(out, ledger.OutgoingNotice{Obligation: *o, Event: ev, Reminder: reminder})
			return limit == 0 || len(out) < limit, nil
		})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// eachOpen calls fn with each open obligation, in (OpenedAt, Notice) order,
// until fn returns false or an error.
func eachOpen(ctx context.Context, txn *badger.Txn, fn func(*ledger.Obligation) (bool, error)) error {
	it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixOpen}})
	defer it.Close()
	n := 0
	for it.Rewind(); it.Valid(); it.Next() {
		if n++; n%ctxCheckEvery == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		notice := string(it.Item().Key()[9:])
		o, err := getObligation(txn, notice)
		if err != nil {
			return err
		}
		if o == nil {
			return fmt.Errorf("open index names a missing obligation %q", notice)
		}
		if more, err := fn(o); err != nil || !more {
			return err
		}
	}
	return nil
}

// noticeEvent builds the org.sharelog.notice.v1 CloudEvent of an obligation
// from its sealed notice, or nil when the subject was forgotten.
func noticeEvent(txn *badger.Txn, kr *keyring, o *ledger.Obligation) ([]byte, error) {
	item, err := txn.Get(noticeKey(o.Notice))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, nil // forgotten
	}
	if err != nil {
		return nil, fmt.Errorf("notice %q: %w", o.Notice, err)
	}
	var n *ledger.Notice
	if err := item.Value(func(v []byte) error {
		var err error
		n, err = openNotice(txn, kr, o.Notice, v)
		return err
	}); err != nil {
		return nil, err
	}
	if n == nil {
		return nil, nil
	}
	return ledger.MarshalEvent(o.Notice, NoticeSource, ledger.TypeNotice, o.OpenedAt, n)
}

// NoticeSource is the CloudEvents source of the notices sharelog sends.
const NoticeSource = "sharelog"

// withErasureFlag sets rec.AfterErasure and rec.WhileRestricted from the
// after-erasure and while-restricted records.
func (s *Store) withErasureFlag(txn *badger.Txn, rec *ledger.DisclosureRecord) (*ledger.DisclosureRecord, error) {
	for _, f := range []struct {
		key []byte
		to  *string
	}{{afterErasureKey(rec.Seq), &rec.AfterErasure}, {restrictedKey(rec.Seq), &rec.WhileRestricted}} {
		item, err := txn.Get(f.key)
		if errors.Is(err, badger.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		v, err := item.ValueCopy(nil)
		if err != nil {
			return nil, err
		}
		*f.to = string(v)
	}
	return rec, nil
}

// answerStatus derives, at now, whether the answer to the person is
// overdue: the action on the request is incomplete while any of its
// obligations is open (ledger.AnswerClock).
func answerStatus(c *ledger.AnswerClock, obs []ledger.Obligation, now time.Time) {
	if c == nil {
		return
	}
	open := false
	for i := range obs {
		open = open || obs[i].Open()
	}
	c.SetOverdue(now, open)
	for i := range obs {
		due := c.Due
		obs[i].AnswerDue = &due
		obs[i].AnswerOverdue = obs[i].Open() && !c.Paused && now.After(c.Due)
	}
}

// answerCache holds the answer clocks of the requests an obligation
// listing met, so that each request is read once.
type answerCache map[string]*ledger.AnswerClock

// decorate fills in the obligation's AnswerDue and AnswerOverdue from its
// request's clock for answering the person.
func (c answerCache) decorate(txn *badger.Txn, o *ledger.Obligation, now time.Time) error {
	a, ok := c[o.Request]
	if !ok {
		rec, err := getRequest(txn, o.Request)
		if err != nil {
			return err
		}
		if rec != nil {
			a = rec.Answer
		}
		c[o.Request] = a
	}
	if a == nil {
		return nil
	}
	due := a.Due
	o.AnswerDue = &due
	o.AnswerOverdue = o.Open() && !a.Paused && now.After(a.Due)
	return nil
}

// allInquiry reports whether every one of the disclosures was flagged as
// made to a public authority within a particular inquiry (Art. 4(9)).
func allInquiry(disclosures []string, inquiry map[string]bool) bool {
	for _, d := range disclosures {
		if !inquiry[d] {
			return false
		}
	}
	return len(disclosures) > 0
}
