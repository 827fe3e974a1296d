package ledger

import (
	"fmt"
	"time"
)

// The person's clock: UK GDPR Art. 12(3) and DPA 2018 s.54 give the
// controller one month from receipt of a person's request to answer them,
// extendable by two further months where the request is complex or one of
// many (Art. 12(3); s.54(3A)), provided the person is told within the first
// month; the clock stops while the controller waits for information it
// needs to identify the person or to clarify the request (UK GDPR
// Art. 12A and DPA 2018 s.54(3B)-(3C), as inserted by the Data (Use and
// Access) Act 2025). This clock runs beside the recipients' clock (Deadlines:
// the policy's time to tell each recipient, counted from the decision).

// The event types of the person's clock.
const (
	// TypeExtension extends the time to answer the person
	// (org.sharelog.extension.v1).
	TypeExtension = "org.sharelog.extension.v1"
	// TypeRequestPaused stops the person's clock while the controller waits
	// for the person (org.sharelog.request.paused.v1).
	TypeRequestPaused = "org.sharelog.request.paused.v1"
	// TypeRequestResumed starts it again when the information arrives
	// (org.sharelog.request.resumed.v1).
	TypeRequestResumed = "org.sharelog.request.resumed.v1"
)

// Pause reasons.
const (
	// PauseIdentity: the controller asked for information to confirm who
	// the person is. The month begins again on the day it arrives
	// (Art. 12A(2)(b); s.54(3B)).
	PauseIdentity = "identity"
	// PauseClarification: the controller asked the person to say which
	// information or processing the request is about. The days from the
	// day the controller asked to the day the answer arrived, both
	// included, do not count (Art. 12A(4)-(5); s.54(3C)).
	PauseClarification = "clarification"
)

// Extension extends the time to answer a person's request by one or two
// further calendar months (org.sharelog.extension.v1). It must be decided,
// and the person told, within the first month (Art. 12(3); s.54(3A)).
// Reason is why (complexity, number of requests); it may name the person
// and is sealed.
type Extension struct {
	Request           string     `json:"request" validate:"required,max=200"`
	Months            int        `json:"months" validate:"required,oneof=1 2"`
	Reason            string     `json:"reason" validate:"required,max=4000"`
	DecidedAt         time.Time  `json:"decidedAt" validate:"required"`
	SubjectInformedAt *time.Time `json:"subjectInformedAt,omitempty"`
}

// RequestPaused stops the person's clock of a request while the controller
// waits for the person (org.sharelog.request.paused.v1): AskedAt is when
// the controller asked for identity information or clarification.
type RequestPaused struct {
	Request string    `json:"request" validate:"required,max=200"`
	Reason  string    `json:"reason" validate:"required,oneof=identity clarification"`
	AskedAt time.Time `json:"askedAt" validate:"required"`
	Note    string    `json:"note,omitempty" validate:"max=4000"`
}

// RequestResumed starts the person's clock of a paused request again
// (org.sharelog.request.resumed.v1): ReceivedAt is when the information
// asked for arrived.
type RequestResumed struct {
	Request    string    `json:"request" validate:"required,max=200"`
	ReceivedAt time.Time `json:"receivedAt" validate:"required"`
	Note       string    `json:"note,omitempty" validate:"max=4000"`
}

// Pause is one stop of the person's clock. ResumedAt is nil while the
// controller still waits.
type Pause struct {
	Reason    string     `json:"reason"`
	AskedAt   time.Time  `json:"askedAt"`
	ResumedAt *time.Time `json:"resumedAt,omitempty"`
}

// ExtensionRecord is what the ledger keeps of an extension: its reason
// stays in the (sealed) entry.
type ExtensionRecord struct {
	Months            int        `json:"months"`
	DecidedAt         time.Time  `json:"decidedAt"`
	SubjectInformedAt *time.Time `json:"subjectInformedAt,omitempty"`
}

// AnswerClock is the deadline for answering the person who made a request:
// one calendar month from ReceivedAt, ending at the end of that day in the
// controller's time zone (rolled to a working day when the policy says),
// plus any extension, with the time the clock was stopped added. Due is
// the deadline as it stands; FirstMonthEnds is when the unextended month
// ends (an extension must be decided by then). While a pause is open the
// clock is stopped: Due is the deadline before the pause, and it moves
// when the clock resumes.
//
// sharelog counts the person answered once the action on their request is
// complete in the ledger: the request decided and every recipient told and
// answered, or exempted (Art. 19 is part of that action). Overdue is derived
// from the clock at query time, never stored: the deadline passed, the
// clock running, and the action not complete. DecidedLate records that the
// decision itself came after the deadline.
type AnswerClock struct {
	ReceivedAt     time.Time        `json:"receivedAt"`
	Due            time.Time        `json:"due"`
	FirstMonthEnds time.Time        `json:"firstMonthEnds"`
	Extension      *ExtensionRecord `json:"extension,omitempty"`
	Pauses         []Pause          `json:"pauses,omitempty"`
	DecidedLate    bool             `json:"decidedLate,omitempty"`
	Paused         bool             `json:"paused,omitempty"`
	Overdue        bool             `json:"overdue,omitempty"`
}

// NewAnswerClock starts the person's clock for a request received at
// receivedAt and decided at decidedAt.
func NewAnswerClock(receivedAt, decidedAt time.Time, cal Calendar) *AnswerClock {
	c := &AnswerClock{ReceivedAt: receivedAt.UTC()}
	c.compute(cal)
	c.DecidedLate = decidedAt.After(c.Due)
	return c
}

// compute sets Due, FirstMonthEnds and Paused from ReceivedAt, the pauses
// and the extension.
func (c *AnswerClock) compute(cal Calendar) {
	months := 0
	if c.Extension != nil {
		months = c.Extension.Months
	}
	c.FirstMonthEnds = c.periodEnd(cal, 1, nil)
	c.Due = c.periodEnd(cal, 1+months, nil)
	c.Paused = len(c.Pauses) > 0 && c.Pauses[len(c.Pauses)-1].ResumedAt == nil
}

// periodEnd returns when a period of months from receipt ends, not
// counting the time the clock was stopped. An open pause counts as
// resumed on the date of asOf, or is left out when asOf is nil.
func (c *AnswerClock) periodEnd(cal Calendar, months int, asOf *time.Time) time.Time {
	start := cal.Date(c.ReceivedAt)
	stopped := 0
	for _, p := range c.Pauses {
		resumed := p.ResumedAt
		if resumed == nil {
			if asOf == nil {
				continue
			}
			resumed = asOf
		}
		from, to := cal.Date(p.AskedAt), cal.Date(*resumed)
		switch p.Reason {
		case PauseIdentity:
			// The month begins with the day the information arrives.
			if to.After(start) {
				start, stopped = to, 0
			}
		case PauseClarification:
			// The days from asking to the answer, both included, do not count.
			if !from.Before(start) {
				stopped += daysBetween(from, to) + 1
			}
		}
	}
	y, m, d := AddMonths(start, months).Date()
	return cal.DueBy(time.Date(y, m, d+stopped, 12, 0, 0, 0, cal.loc()))
}

// daysBetween counts calendar days from date a to date b (midnights in one
// zone), whatever the daylight-saving changes between them.
func daysBetween(a, b time.Time) int {
	ay, am, ad := a.Date()
	by, bm, bd := b.Date()
	ua := time.Date(ay, am, ad, 0, 0, 0, 0, time.UTC)
	ub := time.Date(by, bm, bd, 0, 0, 0, 0, time.UTC)
	return int(ub.Sub(ua).Hours() / 24)
}

// SetOverdue derives Overdue at now: the deadline passed while the clock
// runs and the action on the request is not complete (open).
func (c *AnswerClock) SetOverdue(now time.Time, open bool) {
	c.Overdue = open && !c.Paused && now.After(c.Due)
}

// Extend applies an extension (Art. 12(3); s.54(3A)): one per request
// (ReasonConflict), decided no earlier than the request's receipt
// (ReasonInvalidData) and within the first month, as the person must be
// told within it (ReasonExtensionRefused, naming the date the month ended).
func (c *AnswerClock) Extend(request string, e *Extension, cal Calendar) error {
	if c.Extension != nil {
		return Invalid(ReasonConflict, "data.request",
			"request %q was already extended by %d month(s), decided %s: Art. 12(3) allows two further months in all",
			request, c.Extension.Months, c.Extension.DecidedAt.UTC().Format(time.RFC3339))
	}
	if e.DecidedAt.Before(c.ReceivedAt) {
		return Invalid(ReasonInvalidData, "data.decidedAt", "the extension is decided before request %q was received (%s)",
			request, c.ReceivedAt.Format(time.RFC3339))
	}
	firstMonth := c.periodEnd(cal, 1, &e.DecidedAt)
	if e.DecidedAt.After(firstMonth) {
		return Invalid(ReasonExtensionRefused, "data.decidedAt",
			"Art. 12(3) / DPA 2018 s.54(3A): an extension must be decided within one month of receipt of request %q; that month ended %s and the extension was decided %s",
			request, firstMonth.Format(time.RFC3339), e.DecidedAt.UTC().Format(time.RFC3339))
	}
	if e.SubjectInformedAt != nil && e.SubjectInformedAt.After(firstMonth) {
		return Invalid(ReasonExtensionRefused, "data.subjectInformedAt",
			"Art. 12(3) / DPA 2018 s.54(3A): the person must be told of the extension and its reasons within one month of receipt of request %q; that month ended %s and they were told %s",
			request, firstMonth.Format(time.RFC3339), e.SubjectInformedAt.UTC().Format(time.RFC3339))
	}
	rec := &ExtensionRecord{Months: e.Months, DecidedAt: e.DecidedAt.UTC()}
	if e.SubjectInformedAt != nil {
		at := e.SubjectInformedAt.UTC()
		rec.SubjectInformedAt = &at
	}
	c.Extension = rec
	c.compute(cal)
	return nil
}

// Pause stops the clock (Art. 12A; s.54(3B)-(3C)): not while it is already
// stopped (ReasonConflict), not before receipt (ReasonInvalidData), and not
// once the deadline has passed (ReasonConflict): a late request for
// information does not revive a missed deadline.
func (c *AnswerClock) Pause(request string, p *RequestPaused, cal Calendar) error {
	if c.Paused {
		return Invalid(ReasonConflict, "data.request", "the clock of request %q is already paused (since %s)",
			request, c.Pauses[len(c.Pauses)-1].AskedAt.Format(time.RFC3339))
	}
	if p.AskedAt.Before(c.ReceivedAt) {
		return Invalid(ReasonInvalidData, "data.askedAt", "asked before request %q was received (%s)", request, c.ReceivedAt.Format(time.RFC3339))
	}
	if p.AskedAt.After(c.Due) {
		return Invalid(ReasonConflict, "data.askedAt",
			"the time to answer request %q ended %s, before the person was asked (%s): a pause cannot revive it",
			request, c.Due.Format(time.RFC3339), p.AskedAt.UTC().Format(time.RFC3339))
	}
	c.Pauses = append(c.Pauses, Pause{Reason: p.Reason, AskedAt: p.AskedAt.UTC()})
	c.compute(cal)
	return nil
}

// Resume starts the clock again: only while it is stopped (ReasonConflict),
// with the information arriving no earlier than it was asked for
// (ReasonInvalidData).
func (c *AnswerClock) Resume(request string, r *RequestResumed, cal Calendar) error {
	if !c.Paused {
		return Invalid(ReasonConflict, "data.request", "the clock of request %q is not paused", request)
	}
	last := &c.Pauses[len(c.Pauses)-1]
	if r.ReceivedAt.Before(last.AskedAt) {
		return Invalid(ReasonInvalidData, "data.receivedAt", "the information arrived before it was asked for (%s)", last.AskedAt.Format(time.RFC3339))
	}
	at := r.ReceivedAt.UTC()
	last.ResumedAt = &at
	c.compute(cal)
	return nil
}

// decideClock applies an extension, pause or resumption to the person's
// clock of a request in the ledger (ReasonUnknownRequest otherwise) that
// has one: a rectification, erasure or restriction that says when it was
// received (ReasonConflict otherwise).
func decideClock(st State, request string, apply func(*AnswerClock) error) (*Plan, error) {
	rec, err := st.Request(request)
	if err != nil {
		return nil, err
	}
	if rec == nil {
		return nil, Invalid(ReasonUnknownRequest, "data.request", "request %q is not in the ledger", request)
	}
	if rec.Answer == nil {
		return nil, Invalid(ReasonConflict, "data.request",
			"request %q has no clock for answering the person: it is a %s without receivedAt", request, rec.Type)
	}
	c := *rec.Answer
	c.Pauses = append([]Pause(nil), c.Pauses...)
	if err := apply(&c); err != nil {
		return nil, err
	}
	rec.Answer = &c
	plan := &Plan{Personal: true, Clock: rec}
	if rec.ForgottenAt == nil {
		if plan.NamedHashes, err = knownHash(st, rec.Subject); err != nil {
			return nil, err
		}
	}
	return plan, nil
}

// decideAnswerEvent is Decide for the person's clock events.
func decideAnswerEvent(st State, data any, cal Calendar) (*Plan, error) {
	switch d := data.(type) {
	case *Extension:
		return decideClock(st, d.Request, func(c *AnswerClock) error { return c.Extend(d.Request, d, cal) })
	case *RequestPaused:
		return decideClock(st, d.Request, func(c *AnswerClock) error { return c.Pause(d.Request, d, cal) })
	case *RequestResumed:
		return decideClock(st, d.Request, func(c *AnswerClock) error { return c.Resume(d.Request, d, cal) })
	}
	return nil, fmt.Errorf("ledger: %T is not an event of the person's clock", data)
}

// ReasonExtensionRefused: an extension decided, or the person told of it,
// after the first month (UK GDPR Art. 12(3); DPA 2018 s.54(3A)).
const ReasonExtensionRefused Reason = "extension-refused"

// Received returns when the person's request arrived, nil when not said.
func (r *Rectification) Received() *time.Time { return r.ReceivedAt }

// Received returns when the person's request arrived, nil when not said.
func (e *Erasure) Received() *time.Time { return e.ReceivedAt }

// Received returns when the person's request arrived, nil when not said.
func (r *Restriction) Received() *time.Time { return r.ReceivedAt }

// answerClockFor starts the person's clock of a request that says when it
// was received; nil for one that does not. A decision before the request
// arrived is refused (ReasonInvalidData).
func answerClockFor(data Request, cal Calendar) (*AnswerClock, error) {
	r, ok := data.(interface{ Received() *time.Time })
	if !ok || r.Received() == nil {
		return nil, nil
	}
	received, decided := *r.Received(), data.Head().DecidedAt
	if received.After(decided) {
		return nil, Invalid(ReasonInvalidData, "data.receivedAt", "the request was received (%s) after it was decided (%s)",
			received.UTC().Format(time.RFC3339), decided.UTC().Format(time.RFC3339))
	}
	return NewAnswerClock(received, decided, cal), nil
}
