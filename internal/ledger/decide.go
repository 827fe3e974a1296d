package ledger

import (
	"cmp"
	"encoding/hex"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"time"
)

// Plan is what one event does to the ledger, as Decide worked it out: the
// records to write besides the entry itself. The store carries it out in
// the transaction of the event's entry, and holds no rule of its own.
type Plan struct {
	// Personal is set when the entry may hold personal values (identifiers,
	// free text, the people who decided): the store cuts them out and seals
	// them (PersonalFields), and refuses the event if it cannot.
	Personal bool
	// Names are the subjects the entry names, by identifier: the entry's
	// personal values are sealed under their keys, and a subject the ledger
	// does not know becomes known.
	Names []Subject
	// NamedHashes are the subjects the entry names by keyed hash (an answer
	// or exemption about a request's subject, a hold's release), only those
	// still known.
	NamedHashes [][]byte

	Register   *Recipient        // a recipient's definition, replacing any earlier one
	Disclosure *DisclosureEffect // a disclosure to index
	Request    *RequestEffect    // a request and the obligations it opens
	Obligation *Obligation       // an obligation as an ack, exemption or delivery leaves it
	Hold       *HoldEffect       // a hold placed or released
	Proceed    *ProceedEffect    // erasures a hold's release lets proceed
	Forget     *ForgetEffect     // a subject to forget
	Clock      *RequestRecord    // a request whose clock for answering the person moved (answer.go)
}

// DisclosureEffect is a disclosure to index under each of its subjects.
type DisclosureEffect struct {
	ID         string
	Disclosure *Disclosure
	// AfterErasure holds, for each of Disclosure.Subjects in order, the
	// erasure request decided about that subject's data in these categories
	// before the disclosure was made, or "": recorded, but flagged.
	AfterErasure []string
	// WhileRestricted holds, for each subject in order, the restriction of
	// that subject's data in these categories in force when the disclosure
	// was made, or "": recorded, but flagged (UK GDPR Art. 18(2)).
	WhileRestricted []string
	// InquiryAuthority is set when the recipient is registered as a public
	// authority receiving data within a particular inquiry (Art. 4(9)): the
	// disclosure is flagged as if sent with inquiry: true.
	InquiryAuthority bool
}

// Restricted returns the first restriction in force the disclosure was
// made under, or "".
func (d *DisclosureEffect) Restricted() string {
	for _, r := range d.WhileRestricted {
		if r != "" {
			return r
		}
	}
	return ""
}

// Summary returns what the rules keep of the disclosure for its i-th subject.
func (d *DisclosureEffect) Summary(i int) DisclosureSummary {
	s := SummaryOf(d.ID, d.Disclosure, d.AfterErasure[i] != "")
	s.Inquiry = s.Inquiry || d.InquiryAuthority
	s.WhileRestricted = i < len(d.WhileRestricted) && d.WhileRestricted[i] != ""
	return s
}

// Flagged returns the first erasure the disclosure came after, or "".
func (d *DisclosureEffect) Flagged() string {
	for _, r := range d.AfterErasure {
		if r != "" {
			return r
		}
	}
	return ""
}

// RequestEffect is a request with the obligations it opens, one per
// recipient sorted by id, and the notice each recipient is sent.
type RequestEffect struct {
	// Record is the request's record. Its Subject is nil when the subject
	// is new to the ledger: the store fills in the keyed hash it makes for
	// Plan.Names[0]. Seq and Notices are filled in by the store.
	Record      RequestRecord
	Obligations []Obligation
	Notices     []Notice // one per obligation, same order
	// Lifted is the restriction a lifting lifts, as it will be.
	Lifted *RequestRecord
	// Held are the active holds that turned some of an erasure's
	// obligations into restrictions, as they will be (the request added to
	// their Erasures).
	Held []HoldRecord
	// Erasure is set for an erasure or a restriction: later disclosures of
	// the same data are flagged (after an erasure; while the restriction
	// is in force, Art. 18(2)).
	Erasure *ErasureMarker
}

// ProceedEffect is what the release of a legal hold does to the erasures
// it had turned into restrictions: obligations to erase, one per recipient
// no other active hold still covers, added to their requests.
type ProceedEffect struct {
	Requests    []RequestRecord // the requests as they will be, with the new notices
	Obligations []Obligation
	Notices     []ProceedNotice // one per obligation, same order
}

// ProceedNotice is the notice of an obligation to erase after a hold: its
// Subject is that of the held notice From, which the store fills in (the
// rules know the subject only by its keyed hash, SubjectHash).
type ProceedNotice struct {
	From        string
	SubjectHash []byte
	Notice      Notice
}

// HoldEffect is a hold as it will be recorded.
type HoldEffect struct {
	Record HoldRecord
	// Placed is true for a new hold, false for a release.
	Placed bool
	// BySubject is set for a new hold scoped to a subject: the store fills
	// in Record.SubjectHash with the keyed hash of Plan.Names[0].
	BySubject bool
}

// ForgetEffect is a subject the ledger forgets, at At (when the
// forgetting is recorded).
type ForgetEffect struct {
	SubjectHash []byte
	Event       *SubjectForgotten
	At          time.Time
}

// Decide applies the ledger's rules to an event that passed every check
// that does not depend on the ledger, as sent by sender, recorded at at.
// It reads the ledger through st and returns what the event does, or an
// *InvalidError naming the rule it breaks (nothing is then written). Any
// other error is a failure to read st.
//
// Duplicates (the same source and id) are the store's to detect before
// Decide: an event is recorded once, ever.
func Decide(st State, ev *Event, sender Sender, at time.Time, deadlines Deadlines) (*Plan, error) {
	if want, ok := dataTypes[ev.Type]; !ok || reflect.TypeOf(ev.Data) != want {
		return nil, fmt.Errorf("ledger: %s event with data %T", ev.Type, ev.Data)
	}
	if err := MaySend(ev.Type, sender); err != nil && ev.Type != TypeNoticeAck {
		// An ack's sender is checked against its notice's recipient below,
		// after the notice is known to exist.
		return nil, err
	}
	switch d := ev.Data.(type) {
	case *Recipient:
		return &Plan{Register: d}, nil
	case *Disclosure:
		return decideDisclosure(st, ev.ID, d)
	case Request:
		return decideRequest(st, ev.Type, d, at, deadlines)
	case *NoticeAck, *Exemption, *NoticeDelivery:
		return decideNoticeUpdate(st, ev, sender, at)
	case *Hold:
		return decideHold(st, d, at)
	case *HoldReleased:
		return decideHoldRelease(st, d, at, deadlines)
	case *SubjectForgotten:
		return decideForget(st, d, at)
	case *Extension, *RequestPaused, *RequestResumed:
		return decideAnswerEvent(st, d, deadlines.calendar())
	}
	return nil, fmt.Errorf("ledger: no rules for %s event with data %T", ev.Type, ev.Data)
}

// dataTypes is the Go type of each event type's data (Types).
var dataTypes = func() map[string]reflect.Type {
	m := make(map[string]reflect.Type, len(Types))
	for typ, ctor := range Types {
		m[typ] = reflect.TypeOf(ctor())
	}
	return m
}()

// UnregisteredRecipient is the refusal of a disclosure to a recipient the
// registry does not hold: the subject must be able to learn who received
// their data (UK GDPR Art. 15(1)(c), C-154/21). The HTTP API applies it
// before publishing, the ledger when it records.
func UnregisteredRecipient(id string) *InvalidError {
	return Invalid(ReasonUnknownRecipient, "data.recipient", "recipient %q is not registered", id)
}

// decideDisclosure: the recipient must be registered (ReasonUnknownRecipient).
// A disclosure made after an erasure of the same data of the same person was
// decided is recorded, but flagged for the DPO.
//
// A disclosure made while a restriction of the same data of the same person
// was in force (decided before, not lifted before) is recorded, but flagged
// (UK GDPR Art. 18(2)). One to a recipient registered as an inquiry
// authority is flagged as an inquiry disclosure (Art. 4(9)). Its s.62
// fields must mean something (checkS62).
func decideDisclosure(st State, id string, d *Disclosure) (*Plan, error) {
	rcp, ok := st.Recipient(d.Recipient)
	if !ok {
		return nil, UnregisteredRecipient(d.Recipient)
	}
	if err := checkS62(d); err != nil {
		return nil, err
	}
	if d.ReceivedFrom != "" {
		from, ok := st.Recipient(d.ReceivedFrom)
		switch {
		case !ok:
			return nil, Invalid(ReasonUnknownRecipient, "data.receivedFrom", "receivedFrom %q is not registered: DPA 2018 s.48(7) names the competent authority the data came from, by its registry id", d.ReceivedFrom)
		case from.Role != RoleCompetentAuthority:
			return nil, Invalid(ReasonInvalidData, "data.receivedFrom", "receivedFrom %q is registered as a %s, not a competent authority (DPA 2018 s.48(7))", d.ReceivedFrom, from.Role)
		}
	}
	eff := &DisclosureEffect{ID: id, Disclosure: d, AfterErasure: make([]string, len(d.Subjects)),
		WhileRestricted: make([]string, len(d.Subjects)), InquiryAuthority: rcp.InquiryAuthority}
	for i, s := range d.Subjects {
		h, err := st.SubjectHash(s)
		if err != nil || h == nil {
			if err != nil {
				return nil, err
			}
			continue
		}
		markers, err := st.Erasures(h)
		if err != nil {
			return nil, err
		}
		for _, m := range markers {
			if m.DecidedAt.After(d.DisclosedAt) || len(AffectedCategories(m.Categories, d.Categories)) == 0 {
				continue
			}
			rec, err := st.Request(m.Request)
			if err != nil {
				return nil, err
			}
			if rec == nil || rec.Type == TypeErasure {
				if eff.AfterErasure[i] == "" {
					eff.AfterErasure[i] = m.Request
				}
				continue
			}
			if eff.WhileRestricted[i] == "" {
				in, err := restrictedAt(st, rec, d.DisclosedAt)
				if err != nil {
					return nil, err
				}
				if in {
					eff.WhileRestricted[i] = m.Request
				}
			}
		}
	}
	return &Plan{Personal: true, Names: d.Subjects, Disclosure: eff}, nil
}

// decideRequest opens one obligation per recipient that received the
// affected data of the subject (UK GDPR Art. 19; DPA 2018 s.48). The rules:
//
//   - a request id is recorded once, whatever its type: the same id again,
//     in a new event, is refused (ReasonConflict) and opens nothing;
//   - a lifting must name a restriction in the ledger (else
//     ReasonUnknownRequest), about the same subject, not lifted before
//     (else ReasonConflict).
//
// A request whose subject is unknown, or whose categories no recipient
// received, is accepted and opens no obligation.
func decideRequest(st State, typ string, data Request, at time.Time, deadlines Deadlines) (*Plan, error) {
	h := data.Head()
	request, subj, decided := h.Request, h.Subject, h.DecidedAt
	cats, regime := data.Scope()
	var changes []Change
	if r, ok := data.(*Rectification); ok {
		changes = r.Changes
	}
	rec := RequestRecord{
		Request: request, Type: typ, Action: RequestActions[typ],
		DecidedAt: decided, Regime: regime, Categories: slices.Clone(cats),
	}
	var err error
	if rec.Answer, err = answerClockFor(data, deadlines.calendar()); err != nil {
		return nil, err
	}
	if rec.Subject, err = st.SubjectHash(subj); err != nil {
		return nil, err
	}
	prior, err := st.Request(request)
	if err != nil {
		return nil, err
	}
	if prior != nil {
		if prior.Type != typ {
			return nil, Invalid(ReasonConflict, "data.request",
				"request %q is already recorded as a %s (entry %d); a request id names one request", request, prior.Type, prior.Seq)
		}
		return nil, Invalid(ReasonConflict, "data.request",
			"request %q is already recorded (entry %d); it opened its obligations then and opens none again", request, prior.Seq)
	}
	eff := &RequestEffect{Record: rec}
	plan := &Plan{Personal: true, Names: []Subject{subj}, Request: eff}
	if typ == TypeErasure || typ == TypeRestriction {
		eff.Erasure = &ErasureMarker{Request: request, DecidedAt: decided, Categories: eff.Record.Categories}
	}
	if l, ok := data.(*RestrictionLifted); ok {
		return plan, decideLifting(st, eff, l, at, deadlines)
	}
	if rec.Subject == nil {
		return plan, nil // a subject the ledger does not know: no recipient to tell
	}
	sums, err := st.Disclosures(rec.Subject)
	if err != nil {
		return nil, err
	}
	affected := affectedRecipients(sums, cats)
	if typ == TypeRectification {
		affected = withOriginators(affected, sums, cats)
	}
	var active []HoldRecord
	if typ == TypeErasure {
		if active, err = st.ActiveHolds(); err != nil {
			return nil, err
		}
	}
	for _, a := range affected {
		rcp, _ := st.Recipient(a.recipient)
		regime := ObligationRegime(rec.Regime, rcp.Regime, a.regimes)
		o := Obligation{
			Notice:      NoticeID(request, a.recipient),
			Request:     request,
			Action:      rec.Action,
			Recipient:   a.recipient,
			Channel:     rcp.Channel.Type,
			Regime:      regime,
			Categories:  a.categories,
			Disclosures: a.disclosures,
			OpenedAt:    at,
			Due:         deadlines.Due(decided, regime, rcp.SLADays),
			State:       StatePending,
			Instruction: rcp.Role == RoleProcessor,
			Originator:  a.originator,
		}
		n := Notice{
			Notice: o.Notice, Action: o.Action, Request: request, Subject: subj, Originator: o.Originator,
			Categories: o.Categories, Disclosures: o.Disclosures,
			Changes: ChangesFor(changes, a.received), Due: o.Due, Instruction: o.Instruction,
		}
		holdErasure(eff, &o, &n, active, sums)
		eff.Obligations = append(eff.Obligations, o)
		eff.Notices = append(eff.Notices, n)
	}
	return plan, nil
}

// holdErasure is DPA 2018 s.47(2) and UK GDPR Art. 17(3)(b),(e): where an
// active legal hold covers the data an erasure's obligation is about (by
// the subject, or by the purpose and categories of one of the disclosures
// told of), the data is kept as evidence and restricted, not erased. The
// obligation and its notice ask the recipient to restrict, the notice
// gives the hold's reason and review date, and each covering hold records
// the request so that its release lets the erasure proceed.
func holdErasure(eff *RequestEffect, o *Obligation, n *Notice, active []HoldRecord, sums []DisclosureSummary) {
	if len(active) == 0 {
		return
	}
	var told []DisclosureSummary
	for _, s := range sums {
		if slices.Contains(o.Disclosures, s.ID) {
			told = append(told, s)
		}
	}
	holds := HoldsCovering(active, hexString(eff.Record.Subject), told)
	if len(holds) == 0 {
		return
	}
	o.Action, o.HeldBy = ActionRestrict, holds
	n.Action = ActionRestrict
	for _, id := range holds {
		i := slices.IndexFunc(eff.Held, func(h HoldRecord) bool { return h.Hold == id })
		if i < 0 {
			j := slices.IndexFunc(active, func(h HoldRecord) bool { return h.Hold == id })
			h := active[j]
			h.Erasures = append(slices.Clone(h.Erasures), eff.Record.Request)
			eff.Held = append(eff.Held, h)
			i = len(eff.Held) - 1
		}
		if n.Hold == nil {
			h := eff.Held[i]
			n.Hold = &NoticeHold{Hold: h.Hold, Reason: h.Reason, ReviewAt: h.ReviewAt}
		}
	}
}

// proceedAfterHold lets the erasures a released hold had turned into
// restrictions proceed (DPA 2018 s.47(2) ends with the need to keep the
// evidence): for each obligation it held that no other active hold still
// holds, an obligation to erase, with a stable notice id derived from the
// request and the recipient, due by the policy from the release. A
// recipient exempted from the held notice, or that answered it not-held,
// is not told again.
func proceedAfterHold(st State, rec *HoldRecord, at time.Time, deadlines Deadlines) (*ProceedEffect, error) {
	pe := &ProceedEffect{}
	for _, id := range rec.Erasures {
		req, err := st.Request(id)
		if err != nil {
			return nil, err
		}
		if req == nil {
			return nil, fmt.Errorf("ledger: hold %q names erasure %q, which is missing", rec.Hold, id)
		}
		if req.ForgottenAt != nil {
			continue
		}
		upd := *req
		upd.Notices = slices.Clone(req.Notices)
		for _, notice := range req.Notices {
			o, err := st.Obligation(notice)
			if err != nil {
				return nil, err
			}
			if o == nil || !slices.Contains(o.HeldBy, rec.Hold) {
				continue
			}
			if o.State == StateExempted || o.Outcome == OutcomeNotHeld {
				continue // never told (Art. 19's exemptions), or holds none of it
			}
			still := false
			for _, other := range o.HeldBy {
				if other == rec.Hold {
					continue
				}
				h, err := st.Hold(other)
				if err != nil {
					return nil, err
				}
				still = still || (h != nil && h.Active())
			}
			if still {
				continue
			}
			rcp, _ := st.Recipient(o.Recipient)
			no := Obligation{
				Notice:      AfterHoldNoticeID(id, o.Recipient),
				Request:     id,
				Action:      ActionErase,
				Recipient:   o.Recipient,
				Channel:     cmp.Or(rcp.Channel.Type, o.Channel),
				Regime:      o.Regime,
				Categories:  o.Categories,
				Disclosures: o.Disclosures,
				OpenedAt:    at,
				Due:         deadlines.Due(at, o.Regime, rcp.SLADays),
				State:       StatePending,
				Instruction: rcp.Role == RoleProcessor,
				AfterHold:   rec.Hold,
			}
			pe.Obligations = append(pe.Obligations, no)
			pe.Notices = append(pe.Notices, ProceedNotice{From: o.Notice, SubjectHash: req.Subject, Notice: Notice{
				Notice: no.Notice, Action: no.Action, Request: id, Categories: no.Categories,
				Disclosures: no.Disclosures, Due: no.Due, Instruction: no.Instruction,
			}})
			upd.Notices = append(upd.Notices, no.Notice)
		}
		if len(upd.Notices) > len(req.Notices) {
			pe.Requests = append(pe.Requests, upd)
		}
	}
	if len(pe.Obligations) == 0 {
		return nil, nil
	}
	return pe, nil
}

// AfterHoldNoticeID is the notice id of the obligation to erase that the
// release of a hold opens for request and recipient: stable, so that a
// replay opens the same notice, and distinct from the held one's.
func AfterHoldNoticeID(request, recipient string) string {
	return NoticeID(request+"\x00after-hold", recipient)
}

// InformedBeforeLifting is UK GDPR Art. 18(3): a data subject who obtained
// a restriction is informed before it is lifted. A lifting must say when
// (subjectInformedAt), and that must be strictly before the lifting's
// decision, compared to the nanosecond as both were sent: being told at
// 10:00:00 of a lifting decided at 10:00:59 the same minute is before it;
// being told at the very instant of the decision is not. It returns an
// *InvalidError naming the provision, or nil.
func InformedBeforeLifting(d *RestrictionLifted) error {
	switch {
	case d.SubjectInformedAt == nil:
		return Invalid(ReasonInvalidData, "data.subjectInformedAt",
			"UK GDPR Art. 18(3): the person must be informed before a restriction is lifted; the lifting does not say when they were (subjectInformedAt)")
	case !d.SubjectInformedAt.Before(d.DecidedAt):
		return Invalid(ReasonInvalidData, "data.subjectInformedAt",
			"UK GDPR Art. 18(3): the person must be informed before a restriction is lifted; subjectInformedAt %s is not before the lifting's decision at %s",
			d.SubjectInformedAt.UTC().Format(time.RFC3339Nano), d.DecidedAt.UTC().Format(time.RFC3339Nano))
	}
	return nil
}

// decideLifting plans the lifting of a restriction: one obligation to each
// recipient that was to be told of the restriction, with the same categories
// and disclosures, except recipients exempted from it (they were never told).
func decideLifting(st State, eff *RequestEffect, d *RestrictionLifted, at time.Time, deadlines Deadlines) error {
	restr, err := st.Request(d.Restriction)
	if err != nil {
		return err
	}
	switch {
	case restr == nil:
		return Invalid(ReasonUnknownRequest, "data.restriction", "restriction %q is not in the ledger", d.Restriction)
	case restr.Type != TypeRestriction:
		return Invalid(ReasonUnknownRequest, "data.restriction", "request %q is a %s, not a restriction", d.Restriction, restr.Type)
	case restr.LiftedBy != "":
		return Invalid(ReasonConflict, "data.restriction", "restriction %q was already lifted by request %q", d.Restriction, restr.LiftedBy)
	case string(restr.Subject) != string(eff.Record.Subject):
		return Invalid(ReasonConflict, "data.subject", "the subject is not the subject of restriction %q", d.Restriction)
	}
	if err := InformedBeforeLifting(d); err != nil {
		return err
	}
	informed := d.SubjectInformedAt.UTC()
	eff.Record.SubjectInformedAt = &informed
	eff.Record.Categories = restr.Categories
	eff.Record.Regime = restr.Regime
	lifted := *restr
	lifted.LiftedBy = eff.Record.Request
	eff.Lifted = &lifted
	for _, n := range restr.Notices {
		ro, err := st.Obligation(n)
		if err != nil {
			return err
		}
		if ro == nil {
			return fmt.Errorf("ledger: restriction %q names notice %q, which is missing", restr.Request, n)
		}
		if ro.State == StateExempted {
			continue
		}
		rcp, _ := st.Recipient(ro.Recipient)
		o := Obligation{
			Notice:      NoticeID(eff.Record.Request, ro.Recipient),
			Request:     eff.Record.Request,
			Action:      eff.Record.Action,
			Recipient:   ro.Recipient,
			Channel:     cmp.Or(rcp.Channel.Type, ro.Channel),
			Regime:      ro.Regime,
			Categories:  ro.Categories,
			Disclosures: ro.Disclosures,
			OpenedAt:    at,
			Due:         deadlines.Due(eff.Record.DecidedAt, ro.Regime, rcp.SLADays),
			State:       StatePending,
			Instruction: rcp.Role == RoleProcessor,
		}
		eff.Obligations = append(eff.Obligations, o)
		eff.Notices = append(eff.Notices, Notice{
			Notice: o.Notice, Action: o.Action, Request: o.Request, Subject: d.Subject,
			Categories: o.Categories, Disclosures: o.Disclosures, Due: o.Due, Instruction: o.Instruction,
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
	// originator is set when the affected data came from this recipient
	// (DPA 2018 s.48(7)) and it received none of it from us.
	originator bool
}

// withOriginators adds to affected the competent authorities the affected
// data came from (DPA 2018 s.48(7): a rectification of inaccurate personal
// data received from another competent authority is notified to it). An
// originator that is also a recipient of the data is told once, as a
// recipient. The result stays sorted by recipient id.
func withOriginators(affected []affectedRecipient, sums []DisclosureSummary, cats []string) []affectedRecipient {
	var from []DisclosureSummary
	for _, s := range sums {
		if s.ReceivedFrom != "" {
			s.Recipient = s.ReceivedFrom
			from = append(from, s)
		}
	}
	if len(from) == 0 {
		return affected
	}
	for _, o := range affectedRecipients(from, cats) {
		i, found := slices.BinarySearchFunc(affected, o.recipient, func(a affectedRecipient, r string) int { return cmp.Compare(a.recipient, r) })
		if found {
			continue
		}
		o.originator = true
		affected = slices.Insert(affected, i, o)
	}
	return affected
}

// affectedRecipients returns, per recipient sorted by id, what it received
// of the categories cats (all when empty) in the subject's disclosures.
func affectedRecipients(sums []DisclosureSummary, cats []string) []affectedRecipient {
	type agg struct {
		cats, received, regimes map[string]struct{}
		disclosures             []string
		seen                    map[string]struct{}
	}
	aggs := map[string]*agg{}
	for _, s := range sums {
		hit := AffectedCategories(cats, s.Categories)
		if len(hit) == 0 {
			continue
		}
		a := aggs[s.Recipient]
		if a == nil {
			a = &agg{cats: map[string]struct{}{}, received: map[string]struct{}{}, regimes: map[string]struct{}{}, seen: map[string]struct{}{}}
			aggs[s.Recipient] = a
		}
		for _, c := range hit {
			a.cats[c] = struct{}{}
		}
		for _, c := range s.Categories {
			a.received[c] = struct{}{}
		}
		a.regimes[s.Regime] = struct{}{}
		if _, ok := a.seen[s.ID]; !ok {
			a.seen[s.ID] = struct{}{}
			a.disclosures = append(a.disclosures, s.ID)
		}
	}
	out := make([]affectedRecipient, 0, len(aggs))
	for r, a := range aggs {
		out = append(out, affectedRecipient{
			recipient: r, categories: slices.Sorted(maps.Keys(a.cats)), received: slices.Sorted(maps.Keys(a.received)),
			disclosures: a.disclosures, regimes: slices.Sorted(maps.Keys(a.regimes)),
		})
	}
	slices.SortFunc(out, func(x, y affectedRecipient) int { return cmp.Compare(x.recipient, y.recipient) })
	return out
}

// decideNoticeUpdate applies an acknowledgement, exemption or delivery
// attempt to its obligation (see Obligation.Acknowledge, Exempt and
// Deliver). The notice must exist (ReasonUnknownNotice). An ack's note and
// an exemption's justification may name the subject: the entry is sealed
// for the subject of the obligation's request while it is known.
func decideNoticeUpdate(st State, ev *Event, sender Sender, at time.Time) (*Plan, error) {
	var notice string
	switch d := ev.Data.(type) {
	case *NoticeAck:
		notice = d.Notice
	case *Exemption:
		notice = d.Notice
	case *NoticeDelivery:
		notice = d.Notice
	}
	o, err := st.Obligation(notice)
	if err != nil {
		return nil, err
	}
	if o == nil {
		return nil, Invalid(ReasonUnknownNotice, "data.notice", "notice %q is not in the ledger", notice)
	}
	switch d := ev.Data.(type) {
	case *NoticeAck:
		if err := o.Acknowledge(d, sender.Recipient, at); err != nil {
			return nil, err
		}
	case *Exemption:
		if err := o.Exempt(d, at); err != nil {
			return nil, err
		}
	case *NoticeDelivery:
		if !o.Deliver(d) {
			return &Plan{}, nil // evidence only
		}
		return &Plan{Obligation: o}, nil
	}
	plan := &Plan{Personal: true, Obligation: o}
	if plan.NamedHashes, err = requestSubject(st, o.Request); err != nil {
		return nil, err
	}
	return plan, nil
}

// requestSubject returns the keyed hash of a request's subject while the
// ledger still knows it; none once forgotten.
func requestSubject(st State, request string) ([][]byte, error) {
	rec, err := st.Request(request)
	if err != nil || rec == nil || rec.Subject == nil {
		return nil, err
	}
	return knownHash(st, rec.Subject)
}

func knownHash(st State, h []byte) ([][]byte, error) {
	known, err := st.Known(h)
	if err != nil || !known {
		return nil, err
	}
	return [][]byte{h}, nil
}

// decideHold places a legal hold: a hold id is placed once (ReasonConflict).
func decideHold(st State, d *Hold, at time.Time) (*Plan, error) {
	prior, err := st.Hold(d.Hold)
	if err != nil {
		return nil, err
	}
	if prior != nil {
		return nil, Invalid(ReasonConflict, "data.hold", "hold %q is already recorded (entry %d)", d.Hold, prior.Seq)
	}
	eff := &HoldEffect{Placed: true, Record: HoldRecord{Hold: d.Hold, Reason: d.Reason, PlacedBy: d.PlacedBy, ReviewAt: d.ReviewAt, PlacedAt: at}}
	plan := &Plan{Hold: eff}
	if d.Scope != nil {
		eff.Record.Purpose, eff.Record.Categories = d.Scope.Purpose, slices.Clone(d.Scope.Categories)
		if d.Scope.Subject != nil {
			eff.BySubject = true
			plan.Personal, plan.Names = true, []Subject{*d.Scope.Subject}
		}
	}
	return plan, nil
}

// decideHoldRelease releases a hold: it must be in the ledger
// (ReasonUnknownRequest) and still in place (ReasonConflict).
//
// The erasures the hold turned into restrictions proceed (proceedAfterHold).
func decideHoldRelease(st State, d *HoldReleased, at time.Time, deadlines Deadlines) (*Plan, error) {
	rec, err := st.Hold(d.Hold)
	if err != nil {
		return nil, err
	}
	switch {
	case rec == nil:
		return nil, Invalid(ReasonUnknownRequest, "data.hold", "hold %q is not in the ledger", d.Hold)
	case !rec.Active():
		return nil, Invalid(ReasonConflict, "data.hold", "hold %q was already released", d.Hold)
	}
	rec.ReleasedAt = &at
	plan := &Plan{Hold: &HoldEffect{Record: *rec}}
	if plan.Proceed, err = proceedAfterHold(st, rec, at, deadlines); err != nil {
		return nil, err
	}
	if rec.SubjectHash != "" {
		h, _ := hex.DecodeString(rec.SubjectHash)
		plan.Personal = true
		if plan.NamedHashes, err = knownHash(st, h); err != nil {
			return nil, err
		}
	}
	return plan, nil
}

// decideForget forgets a subject: it must be known (never seen, or already
// forgotten: ReasonConflict) and no active legal hold may cover it
// (ReasonConflict; see HoldsCovering).
func decideForget(st State, d *SubjectForgotten, at time.Time) (*Plan, error) {
	h, err := hex.DecodeString(d.SubjectHash)
	if err != nil || len(h) == 0 {
		return nil, Invalid(ReasonInvalidData, "data.subjectHash", "not a subject hash")
	}
	known, err := st.Known(h)
	if err != nil {
		return nil, err
	}
	if !known {
		return nil, Invalid(ReasonConflict, "data.subjectHash", "the ledger does not know this subject: never recorded, or already forgotten")
	}
	holds, err := SubjectHolds(st, h)
	if err != nil {
		return nil, err
	}
	if len(holds) > 0 {
		return nil, Invalid(ReasonConflict, "data.subjectHash", "the subject is under legal hold %q", holds)
	}
	return &Plan{Forget: &ForgetEffect{SubjectHash: h, Event: d, At: at}}, nil
}

// restrictedAt reports whether restriction rec was in force at t: decided
// at or before t and not lifted by a lifting decided at or before t.
func restrictedAt(st State, rec *RequestRecord, t time.Time) (bool, error) {
	if rec.DecidedAt.After(t) {
		return false, nil
	}
	if rec.LiftedBy == "" {
		return true, nil
	}
	l, err := st.Request(rec.LiftedBy)
	if err != nil || l == nil {
		return l == nil && err == nil, err
	}
	return l.DecidedAt.After(t), nil
}
