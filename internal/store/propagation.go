package store

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/sharelog/sharelog/internal/ledger"
	"github.com/sharelog/sharelog/internal/vocab"
)

// This file holds the ledger rules of propagation (UK GDPR Art. 19, DPA 2018
// s.48): what a rectification, erasure, restriction or lifting of a
// restriction opens, and what an acknowledgement, an exemption or a delivery
// attempt does to an obligation. They are applied by Batch.Append, in the
// same transaction as the event's entry, so that a request and every
// obligation it opens commit together or not at all.

// requestRecord is what the ledger keeps of a request, under its request id.
// It holds no identifier: the subject only as its keyed hash.
type requestRecord struct {
	Request     string    `json:"request"`
	Type        string    `json:"type"`
	Action      string    `json:"action"`
	Seq         uint64    `json:"seq"`
	DecidedAt   time.Time `json:"decidedAt"`
	Regime      string    `json:"regime,omitempty"`
	Categories  []string  `json:"categories,omitempty"`
	Subject     []byte    `json:"subject"`               // K16 keyed hash
	Restriction string    `json:"restriction,omitempty"` // the restriction a lifting lifts
	LiftedBy    string    `json:"liftedBy,omitempty"`    // the lifting of a restriction
	Notices     []string  `json:"notices"`               // sorted by recipient
	// ForgottenAt is when the ledger forgot the subject (forget.go).
	ForgottenAt *time.Time `json:"forgottenAt,omitempty"`
}

// requestPlan is a request that passed its checks, with what it will write.
type requestPlan struct {
	rec         requestRecord
	subject     ledger.Subject      // the identifier, to create its salt if the ledger does not know it
	obligations []ledger.Obligation // sorted by recipient
	notices     []ledger.Notice     // one per obligation, same order
	lifted      *requestRecord      // the restriction being lifted, updated
}

// NoticeID returns the notice id of the obligation to tell recipient about
// request: "ntc-" and 20 hex digits of SHA-256(request 0x00 recipient). It is
// stable, so a repeated delivery can be recognised by the recipient, and a
// request replayed after a crash opens the same notice again.
func NoticeID(request, recipient string) string {
	h := sha256.New()
	h.Write([]byte(request))
	h.Write([]byte{0})
	h.Write([]byte(recipient))
	return "ntc-" + hex.EncodeToString(h.Sum(nil))[:20]
}

// actions maps request types to the notice action they ask of recipients.
var actions = map[string]string{
	ledger.TypeRectification:     ledger.ActionRectify,
	ledger.TypeErasure:           ledger.ActionErase,
	ledger.TypeRestriction:       ledger.ActionRestrict,
	ledger.TypeRestrictionLifted: ledger.ActionLiftRestriction,
}

// refuse turns a planning error into Append's result: Rejected for an
// *ledger.InvalidError, a fatal batch error otherwise.
func (b *Batch) refuse(err error) (ledger.Outcome, error) {
	var ie *ledger.InvalidError
	if errors.As(err, &ie) {
		return ledger.Rejected, ie
	}
	return 0, b.fail(err)
}

// planRequest checks a rectification, erasure, restriction or lifting and
// works out its obligations. The rules:
//
//   - a request id is recorded once, whatever its type: the same id again,
//     in a new event, is Rejected (ReasonConflict) and opens nothing;
//   - a lifting must name a restriction in the ledger (else ReasonUnknownRequest),
//     about the same subject, not lifted before (else ReasonConflict).
//
// A request whose subject is unknown, or whose categories no recipient
// received, is accepted and opens no obligation.
func (b *Batch) planRequest(ev *ledger.Event) (*requestPlan, error) {
	var (
		subj    ledger.Subject
		cats    []string
		changes []ledger.Change
		lifting *ledger.RestrictionLifted
		p       = &requestPlan{rec: requestRecord{Type: ev.Type, Action: actions[ev.Type]}}
		err     error
	)
	switch d := ev.Data.(type) {
	case *ledger.Rectification:
		p.rec.Request, subj, cats, changes, p.rec.DecidedAt, p.rec.Regime = d.Request, d.Subject, d.Categories, d.Changes, d.DecidedAt, d.Regime
	case *ledger.Erasure:
		p.rec.Request, subj, cats, p.rec.DecidedAt, p.rec.Regime = d.Request, d.Subject, d.Categories, d.DecidedAt, d.Regime
	case *ledger.Restriction:
		p.rec.Request, subj, cats, p.rec.DecidedAt = d.Request, d.Subject, d.Categories, d.DecidedAt
	case *ledger.RestrictionLifted:
		p.rec.Request, subj, p.rec.DecidedAt, p.rec.Restriction = d.Request, d.Subject, d.DecidedAt, d.Restriction
		lifting = d
	default:
		return nil, fmt.Errorf("store: append: %s event with data %T", ev.Type, ev.Data)
	}
	p.rec.Categories = slices.Clone(cats)
	p.subject = subj
	if p.rec.Subject, err = b.subjectHash(subj, false); err != nil {
		return nil, err
	}

	prior, err := b.request(p.rec.Request)
	if err != nil {
		return nil, err
	}
	if prior != nil {
		if prior.Type != ev.Type {
			return nil, ledger.Invalid(ledger.ReasonConflict, "data.request",
				"request %q is already recorded as a %s (entry %d); a request id names one request", p.rec.Request, prior.Type, prior.Seq)
		}
		return nil, ledger.Invalid(ledger.ReasonConflict, "data.request",
			"request %q is already recorded (entry %d); it opened its obligations then and opens none again", p.rec.Request, prior.Seq)
	}

	if lifting != nil {
		return p, b.planLifting(p, lifting)
	}
	if p.rec.Subject == nil {
		return p, nil // a subject the ledger does not know: no recipient to tell
	}
	recipients, err := b.affected(p.rec.Subject, cats)
	if err != nil {
		return nil, err
	}
	for _, a := range recipients {
		rcp := b.recipient(a.recipient)
		regime := obligationRegime(p.rec.Regime, rcp.Regime, a.regimes)
		o := ledger.Obligation{
			Notice:      NoticeID(p.rec.Request, a.recipient),
			Request:     p.rec.Request,
			Action:      p.rec.Action,
			Recipient:   a.recipient,
			Channel:     rcp.Channel.Type,
			Regime:      regime,
			Categories:  a.categories,
			Disclosures: a.disclosures,
			OpenedAt:    b.at,
			Due:         b.s.deadlines.due(p.rec.DecidedAt, regime, rcp.SLADays),
			State:       ledger.StatePending,
		}
		p.obligations = append(p.obligations, o)
		p.notices = append(p.notices, ledger.Notice{
			Notice:      o.Notice,
			Action:      o.Action,
			Request:     o.Request,
			Subject:     subj,
			Categories:  o.Categories,
			Disclosures: o.Disclosures,
			Changes:     changesFor(changes, a.received),
			Due:         o.Due,
		})
	}
	return p, nil
}

// planLifting plans the lifting of a restriction: one obligation to each
// recipient that was to be told of the restriction, with the same categories
// and disclosures, except recipients exempted from it (they were never told).
func (b *Batch) planLifting(p *requestPlan, d *ledger.RestrictionLifted) error {
	restr, err := b.request(d.Restriction)
	if err != nil {
		return err
	}
	switch {
	case restr == nil:
		return ledger.Invalid(ledger.ReasonUnknownRequest, "data.restriction", "restriction %q is not in the ledger", d.Restriction)
	case restr.Type != ledger.TypeRestriction:
		return ledger.Invalid(ledger.ReasonUnknownRequest, "data.restriction", "request %q is a %s, not a restriction", d.Restriction, restr.Type)
	case restr.LiftedBy != "":
		return ledger.Invalid(ledger.ReasonConflict, "data.restriction", "restriction %q was already lifted by request %q", d.Restriction, restr.LiftedBy)
	case !bytes.Equal(restr.Subject, p.rec.Subject):
		return ledger.Invalid(ledger.ReasonConflict, "data.subject", "the subject is not the subject of restriction %q", d.Restriction)
	}
	p.rec.Categories = restr.Categories
	p.rec.Regime = restr.Regime
	lifted := *restr
	lifted.LiftedBy = p.rec.Request
	p.lifted = &lifted
	for _, n := range restr.Notices {
		ro, err := b.obligation(n)
		if err != nil {
			return err
		}
		if ro == nil {
			return fmt.Errorf("store: restriction %q names notice %q, which is missing", restr.Request, n)
		}
		if ro.State == ledger.StateExempted {
			continue
		}
		rcp := b.recipient(ro.Recipient)
		o := ledger.Obligation{
			Notice:      NoticeID(p.rec.Request, ro.Recipient),
			Request:     p.rec.Request,
			Action:      p.rec.Action,
			Recipient:   ro.Recipient,
			Channel:     cmp.Or(rcp.Channel.Type, ro.Channel),
			Regime:      ro.Regime,
			Categories:  ro.Categories,
			Disclosures: ro.Disclosures,
			OpenedAt:    b.at,
			Due:         b.s.deadlines.due(p.rec.DecidedAt, ro.Regime, rcp.SLADays),
			State:       ledger.StatePending,
		}
		p.obligations = append(p.obligations, o)
		p.notices = append(p.notices, ledger.Notice{
			Notice:      o.Notice,
			Action:      o.Action,
			Request:     o.Request,
			Subject:     d.Subject,
			Categories:  o.Categories,
			Disclosures: o.Disclosures,
			Due:         o.Due,
		})
	}
	return nil
}

// affectedRecipient is what one recipient received of the data a request
// affects.
type affectedRecipient struct {
	recipient   string
	categories  []string // affected categories, the narrower key of each matching pair; sorted
	received    []string // categories disclosed in the affected disclosures; sorted
	disclosures []string // event ids of the affected disclosures, in disclosure order
	regimes     []string // regimes of the affected disclosures; sorted
}

// affected scans the subject's disclosures and returns, per recipient sorted
// by id, what it received of the categories cats (all when empty). Coverage
// goes both ways: a request about user.contact affects a disclosure of
// user.contact.email, and a request about user.contact.email affects a
// disclosure of user.contact; the narrower key is the affected category.
func (b *Batch) affected(subjectHash []byte, cats []string) ([]affectedRecipient, error) {
	type agg struct {
		cats, received, regimes map[string]struct{}
		disclosures             []string
		seen                    map[string]struct{}
	}
	aggs := map[string]*agg{}
	it := b.txn.NewIterator(badger.IteratorOptions{Prefix: subjectPrefix(subjectHash), PrefetchValues: true, PrefetchSize: 64})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		var sum summary
		err := it.Item().Value(func(v []byte) error {
			var err error
			sum, err = decodeSummary(v)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("store: subject index: %w", err)
		}
		hit := affectedCategories(cats, sum.categories)
		if len(hit) == 0 {
			continue
		}
		a := aggs[sum.recipient]
		if a == nil {
			a = &agg{cats: map[string]struct{}{}, received: map[string]struct{}{}, regimes: map[string]struct{}{}, seen: map[string]struct{}{}}
			aggs[sum.recipient] = a
		}
		for _, c := range hit {
			a.cats[c] = struct{}{}
		}
		for _, c := range sum.categories {
			a.received[c] = struct{}{}
		}
		a.regimes[sum.regime] = struct{}{}
		if _, ok := a.seen[sum.id]; !ok {
			a.seen[sum.id] = struct{}{}
			a.disclosures = append(a.disclosures, sum.id)
		}
	}
	out := make([]affectedRecipient, 0, len(aggs))
	for r, a := range aggs {
		out = append(out, affectedRecipient{
			recipient: r, categories: sortedKeys(a.cats), received: sortedKeys(a.received),
			disclosures: a.disclosures, regimes: sortedKeys(a.regimes),
		})
	}
	slices.SortFunc(out, func(x, y affectedRecipient) int { return cmp.Compare(x.recipient, y.recipient) })
	return out, nil
}

// affectedCategories returns the categories of a disclosure of disclosed
// that a request about requested (all when empty) affects: for each pair
// where one covers the other, the narrower key.
func affectedCategories(requested, disclosed []string) []string {
	if len(requested) == 0 {
		return disclosed
	}
	var out []string
	for _, d := range disclosed {
		for _, r := range requested {
			switch {
			case vocab.Covers(r, d):
				out = append(out, d)
			case vocab.Covers(d, r):
				out = append(out, r)
			}
		}
	}
	return out
}

// changesFor keeps the rectified fields a recipient may be sent: those in a
// category covered by a category it received. A change in a broader category
// than the recipient received is left out, since its value may be data the
// recipient never had.
func changesFor(changes []ledger.Change, received []string) []ledger.Change {
	var out []ledger.Change
	for _, c := range changes {
		for _, r := range received {
			if vocab.Covers(r, c.Category) {
				out = append(out, c)
				break
			}
		}
	}
	return out
}

// obligationRegime decides the regime an obligation is under: DPA 2018
// Part 3 if the request, the recipient or any affected disclosure is under
// it (so that s.48 applies); otherwise the request's regime, the
// recipient's, or that of the affected disclosures (the first, sorted).
func obligationRegime(request, recipient string, disclosures []string) string {
	if request == ledger.RegimeDPAPart3 || recipient == ledger.RegimeDPAPart3 || slices.Contains(disclosures, ledger.RegimeDPAPart3) {
		return ledger.RegimeDPAPart3
	}
	if request != "" {
		return request
	}
	if recipient != "" {
		return recipient
	}
	for _, r := range disclosures {
		if r != "" {
			return r
		}
	}
	return ""
}

// openObligations writes the request record, its obligations, their sealed
// notices and indexes and, for an erasure, the marker that flags later
// disclosures of the same data.
func (b *Batch) openObligations(seq uint64, p *requestPlan) error {
	p.rec.Seq = seq
	p.rec.Notices = make([]string, 0, len(p.obligations))
	for i := range p.obligations {
		o := &p.obligations[i]
		p.rec.Notices = append(p.rec.Notices, o.Notice)
		sealed, err := sealNotice(&p.notices[i], b.ref, b.key)
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
		if err := b.set(subjectObligationKey(p.rec.Subject, o.Notice), []byte(o.Recipient)); err != nil {
			return err
		}
		if err := b.putObligation(o); err != nil {
			return err
		}
	}
	if err := b.putRequest(&p.rec); err != nil {
		return err
	}
	if err := b.set(subjectRequestKey(p.rec.Subject, p.rec.Request), nil); err != nil {
		return err
	}
	if p.lifted != nil {
		if err := b.putRequest(p.lifted); err != nil {
			return err
		}
	}
	if p.rec.Type == ledger.TypeErasure {
		// One key per subject holding all its erasure markers, so that each
		// disclosure checks it with one point lookup, not an iterator.
		k := erasureKey(p.rec.Subject)
		v, err := b.get(k)
		if err != nil {
			return b.fail(err)
		}
		v = binary.BigEndian.AppendUint64(v, encodeTime(p.rec.DecidedAt))
		v = appendString(v, p.rec.Request)
		v = binary.AppendUvarint(v, uint64(len(p.rec.Categories)))
		for _, c := range p.rec.Categories {
			v = appendString(v, c)
		}
		if err := b.set(k, v); err != nil {
			return err
		}
	}
	b.s.log.Info("request recorded", "request", p.rec.Request, "type", p.rec.Type, "obligations", len(p.obligations))
	return nil
}

// planNoticeUpdate checks an acknowledgement, exemption or delivery attempt
// against its obligation and returns the obligation as it will be (nil when
// nothing changes). The rules, each Rejected with nothing written:
//
//   - the notice must exist (ReasonUnknownNotice);
//   - an acknowledgement must come from the notice's recipient, as vouched
//     for by the transport (ledger.Event.From, set for sharelog.in.ack.<recipient>)
//     (ReasonWrongRecipient), and only while the obligation is open
//     (ReasonConflict);
//   - an exemption only while the obligation is open (ReasonConflict), and
//     never for disproportionate effort under DPA 2018 Part 3, whose s.48
//     has no such exception (ReasonExemptionRefused).
//
// A delivery attempt for a closed obligation is recorded as evidence but
// does not reopen it.
func (b *Batch) planNoticeUpdate(ev *ledger.Event) (*ledger.Obligation, error) {
	var notice string
	switch d := ev.Data.(type) {
	case *ledger.NoticeAck:
		notice = d.Notice
	case *ledger.Exemption:
		notice = d.Notice
	case *ledger.NoticeDelivery:
		notice = d.Notice
	default:
		return nil, fmt.Errorf("store: append: %s event with data %T", ev.Type, ev.Data)
	}
	o, err := b.obligation(notice)
	if err != nil {
		return nil, err
	}
	if o == nil {
		return nil, ledger.Invalid(ledger.ReasonUnknownNotice, "data.notice", "notice %q is not in the ledger", notice)
	}
	switch d := ev.Data.(type) {
	case *ledger.NoticeAck:
		if ev.From != o.Recipient {
			from := "no recipient (it did not arrive on sharelog.in.ack.<recipient>)"
			if ev.From != "" {
				from = fmt.Sprintf("recipient %q", ev.From)
			}
			return nil, ledger.Invalid(ledger.ReasonWrongRecipient, "data.notice",
				"notice %q went to recipient %q; this acknowledgement came from %s", notice, o.Recipient, from)
		}
		if !o.Open() {
			return nil, closedError(o)
		}
		at := b.at
		o.State, o.Outcome, o.AcknowledgedAt = ledger.StateAcknowledged, d.Outcome, &at
		o.NextAttemptAt = nil
	case *ledger.Exemption:
		if !o.Open() {
			return nil, closedError(o)
		}
		if d.Reason == "disproportionate-effort" && o.Regime == ledger.RegimeDPAPart3 {
			return nil, ledger.Invalid(ledger.ReasonExemptionRefused, "data.reason",
				"notice %q is under DPA 2018 Part 3: s.48 requires every recipient to be told and has no disproportionate-effort exception", notice)
		}
		at := b.at
		ex := *d
		o.State, o.Exemption, o.ExemptedAt = ledger.StateExempted, &ex, &at
		o.NextAttemptAt = nil
	case *ledger.NoticeDelivery:
		if !o.Open() {
			return nil, nil
		}
		at := d.At.UTC()
		o.Attempts++
		o.LastAttemptAt = &at
		if d.Reminder {
			o.Reminders++
		}
		switch d.Outcome {
		case ledger.DeliveryDelivered, ledger.DeliverySent:
			o.LastError, o.NextAttemptAt = "", nil
			if o.State == ledger.StatePending {
				o.State, o.DeliveredAt = ledger.StateDelivered, &at
			}
		default:
			o.LastError = d.Error
			o.NextAttemptAt = nil
			if d.NextAttemptAt != nil {
				next := d.NextAttemptAt.UTC()
				o.NextAttemptAt = &next
			}
		}
	}
	return o, nil
}

func closedError(o *ledger.Obligation) error {
	return ledger.Invalid(ledger.ReasonConflict, "data.notice", "obligation %q is already closed (%s)", o.Notice, o.State)
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

func (b *Batch) putRequest(r *requestRecord) error {
	v, err := json.Marshal(r)
	if err != nil {
		return b.fail(fmt.Errorf("store: encode request: %w", err))
	}
	return b.set(requestKey(r.Request), v)
}

// request returns the request record in the batch's view, or nil.
func (b *Batch) request(id string) (*requestRecord, error) {
	return getRequest(b.txn, id)
}

// obligation returns the obligation in the batch's view, or nil.
func (b *Batch) obligation(notice string) (*ledger.Obligation, error) {
	return getObligation(b.txn, notice)
}

// recipient returns a recipient's definition as the batch sees it; the zero
// Recipient if it is not registered.
func (b *Batch) recipient(id string) ledger.Recipient {
	if r, ok := b.recipients[id]; ok {
		return r
	}
	return (*b.s.recipients.Load())[id]
}

// erasedBefore returns the request id of an erasure of the subject (by its
// keyed hash) decided at or before d.DisclosedAt that covers any of d's
// categories, or "". It is on the path of every disclosure: one point
// lookup, which Badger's bloom filters make cheap when the key is absent.
func (b *Batch) erasedBefore(subjectHash []byte, d *ledger.Disclosure) (string, error) {
	v, err := b.get(erasureKey(subjectHash))
	if err != nil || v == nil {
		return "", err
	}
	r := reader{b: v}
	for len(r.b) > 0 && r.err == nil {
		if len(r.b) < 8 {
			return "", fmt.Errorf("store: erasure marker: %w", errCorrupt)
		}
		decided := binary.BigEndian.Uint64(r.b)
		r.b = r.b[8:]
		req := r.string()
		var cats []string
		for n := r.uvarint(); n > 0 && r.err == nil; n-- {
			cats = append(cats, r.string())
		}
		if r.err == nil && decided <= encodeTime(d.DisclosedAt) && len(affectedCategories(cats, d.Categories)) > 0 {
			return req, nil
		}
	}
	if r.err != nil {
		return "", fmt.Errorf("store: erasure marker: %w", r.err)
	}
	return "", nil
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
func getRequest(txn *badger.Txn, id string) (*requestRecord, error) {
	item, err := txn.Get(requestKey(id))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("store: read request: %w", err)
	}
	var r requestRecord
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
	ct, err := sealData(key, noticeKey(n.Notice), j)
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
