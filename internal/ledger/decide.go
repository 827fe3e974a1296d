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

	// Sealed is set when the entry's personal values are sealed even if it
	// names no subject: under a data key of the entry's own.
	Sealed bool
	// Consultation is a consultation to index (consultation.go).
	Consultation *ConsultationEffect
}

// OpensNotices reports whether the plan opens obligations whose notices
// are due at once: a request's to each recipient of the data (UK GDPR Art.
// 19; DPA 2018 s.48), or the erasures a hold's release lets proceed (DPA
// 2018 s.47). The notice dispatcher need not wait for its next poll.
func (p *Plan) OpensNotices() bool {
	return p.Request != nil && len(p.Request.Obligations) > 0 || p.Proceed != nil && len(p.Proceed.Obligations) > 0
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
	case *Consultation:
		return decideConsultation(d, at)
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
