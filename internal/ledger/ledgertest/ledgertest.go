// Package ledgertest holds the scenarios every implementation of the
// ledger's state must pass: the in-memory reference (ledger.MemState) and
// the Badger store. Each scenario is a sequence of events with the outcome
// each must have, and the obligations the requests must leave, named after
// the provision of the law it exercises. It imports only the standard
// library and the domain.
package ledgertest

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sharelog/sharelog/internal/ledger"
)

// Ledger is what a scenario drives and observes.
type Ledger interface {
	// Append records ev as received at at, in a batch of its own.
	Append(ev *ledger.Event, at time.Time) (ledger.Outcome, error)
	// Obligation returns the obligation of a notice, nil when there is none.
	Obligation(notice string) (*ledger.Obligation, error)
	// Notices returns the notice ids a request opened, nil when the
	// request is not in the ledger.
	Notices(request string) ([]string, error)
	// Answer returns the clock for answering the person of a request, nil
	// when the request has none or is not in the ledger.
	Answer(request string) (*ledger.AnswerClock, error)
	// Disclosures returns the summaries of the disclosures of the subject
	// with keyed hash h, as the rules read them.
	Disclosures(h []byte) ([]ledger.DisclosureSummary, error)
	// Consulted returns the consultation log as the ledger indexes it, in
	// entry order.
	Consulted() ([]ledger.Consulted, error)
}

// Step is one event and what applying it must do. Reason and Detail (a
// part of the problem's text) are checked for a Rejected event.
type Step struct {
	Event   *ledger.Event
	Want    ledger.Outcome
	Reason  ledger.Reason
	Detail  string
	Subject *ledger.Subject // for a forgetting: the subject to forget, hashed by the ledger under test
}

// Told is what one obligation of a request must be at the end.
type Told struct {
	Recipient  string
	Categories []string
	Regime     string
	State      string
}

// Flags is how one disclosure of A1 must be flagged at the end.
type Flags struct {
	Inquiry, AfterErasure, WhileRestricted bool
}

// Obl is what one obligation, by notice id, must be at the end.
type Obl struct {
	Action      string
	State       string
	Instruction bool
	Escalated   bool
	Originator  bool
	HeldBy      []string
	AfterHold   string
}

// Scenario is a named sequence of steps and the obligations each listed
// request must have at the end (in recipient order; none for an empty list),
// the flags of A1's listed disclosures (by event id) and the listed
// obligations (by notice id).
type Scenario struct {
	Name        string
	Deadlines   ledger.Deadlines
	Steps       []Step
	Requests    map[string][]Told
	Flags       map[string]Flags
	Obligations map[string]Obl
	// Answers are the clocks for answering the person that listed
	// requests must have at the end (nil: none).
	Answers map[string]*Answer
	// Consultations is the consultation log at the end, in entry order
	// (nil: not checked).
	Consultations []Consult
}

// Answer is what a request's clock for answering the person must be at
// the end (UK GDPR Art. 12(3); DPA 2018 s.54).
type Answer struct {
	Due            time.Time
	FirstMonthEnds time.Time
	ExtendedBy     int // months; 0 for no extension
	Paused         bool
	DecidedLate    bool
}

// T0 is the scenarios' clock: step i is recorded i days after it.
var T0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

// At returns the time of step i.
func At(i int) time.Time { return T0.AddDate(0, 0, i) }

// Hasher gives the keyed hash of a subject in the ledger under test, for
// the forgetting steps (nil: the subject is not known).
type Hasher func(ledger.Subject) []byte

// Run drives l through sc's steps and checks every outcome and obligation.
func Run(t *testing.T, l Ledger, hash Hasher, sc Scenario) {
	t.Helper()
	for i, s := range sc.Steps {
		ev := s.Event
		if s.Subject != nil {
			ev = forgetting(ev.ID, hash(*s.Subject))
		}
		got, err := l.Append(ev, At(i))
		if got != s.Want {
			t.Fatalf("step %d (%s %s): outcome %v (%v), want %v", i, ev.Type, ev.ID, got, err, s.Want)
		}
		if s.Want == ledger.Rejected {
			var ie *ledger.InvalidError
			if !errors.As(err, &ie) || ie.Reason() != s.Reason || !strings.Contains(ie.Error(), s.Detail) {
				t.Fatalf("step %d (%s %s): error %v, want reason %s containing %q", i, ev.Type, ev.ID, err, s.Reason, s.Detail)
			}
		} else if err != nil {
			t.Fatalf("step %d (%s %s): %v", i, ev.Type, ev.ID, err)
		}
	}
	if sc.Consultations != nil {
		checkConsultations(t, l, hash, sc.Consultations)
	}
	for req, want := range sc.Answers {
		c, err := l.Answer(req)
		if err != nil {
			t.Fatalf("request %s: %v", req, err)
		}
		var got *Answer
		if c != nil {
			got = &Answer{Due: c.Due, FirstMonthEnds: c.FirstMonthEnds, Paused: c.Paused, DecidedLate: c.DecidedLate}
			if c.Extension != nil {
				got.ExtendedBy = c.Extension.Months
			}
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("request %s answer:\n got %+v\nwant %+v", req, got, want)
		}
	}
	if len(sc.Flags) > 0 {
		sums, err := l.Disclosures(hash(Subject("A1")))
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]Flags{}
		for _, s := range sums {
			got[s.ID] = Flags{Inquiry: s.Inquiry, AfterErasure: s.AfterErasure, WhileRestricted: s.WhileRestricted}
		}
		for id, want := range sc.Flags {
			if g, ok := got[id]; !ok || g != want {
				t.Errorf("disclosure %s of A1 flagged %+v (found %v), want %+v", id, g, ok, want)
			}
		}
	}
	for n, want := range sc.Obligations {
		o, err := l.Obligation(n)
		if err != nil || o == nil {
			t.Errorf("notice %s: no obligation (%v)", n, err)
			continue
		}
		if got := (Obl{o.Action, o.State, o.Instruction, o.EscalatedAt != nil, o.Originator, o.HeldBy, o.AfterHold}); !reflect.DeepEqual(got, want) {
			t.Errorf("notice %s (to %s): %+v, want %+v", n, o.Recipient, got, want)
		}
	}
	for req, want := range sc.Requests {
		got, err := ToldOf(l, req)
		if err != nil {
			t.Fatalf("request %s: %v", req, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("request %s told:\n got %v\nwant %v", req, got, want)
		}
	}
}

// ToldOf returns the obligations of a request as Told, in notice order.
func ToldOf(l Ledger, request string) ([]Told, error) {
	notices, err := l.Notices(request)
	if err != nil {
		return nil, err
	}
	var out []Told
	for _, n := range notices {
		o, err := l.Obligation(n)
		if err != nil || o == nil {
			return nil, fmt.Errorf("notice %s: %v", n, err)
		}
		out = append(out, Told{o.Recipient, o.Categories, o.Regime, o.State})
	}
	return out, nil
}

// Event builds an event with its Raw in the CloudEvents JSON format, as
// the ledger records it.
func Event(id, typ string, data any) *ledger.Event {
	raw, err := ledger.MarshalEvent(id, "test", typ, T0, data)
	if err != nil {
		panic(err)
	}
	return &ledger.Event{Source: "test", ID: id, Type: typ, Time: T0, Data: data, Raw: raw}
}

// Subject returns the dbs-ref subject id.
func Subject(id string) ledger.Subject { return ledger.Subject{Scheme: "dbs-ref", ID: id} }

// OK is a step that must be recorded.
func OK(ev *ledger.Event) Step { return Step{Event: ev, Want: ledger.Recorded} }

// Refused is a step that must be rejected with reason, its problem saying detail.
func Refused(ev *ledger.Event, r ledger.Reason, detail string) Step {
	return Step{Event: ev, Want: ledger.Rejected, Reason: r, Detail: detail}
}

// Dup is a step that must be a duplicate.
func Dup(ev *ledger.Event) Step { return Step{Event: ev, Want: ledger.Duplicate} }

func Recipient(id, regime, channel string) *ledger.Event {
	c := ledger.Channel{Type: channel}
	if channel == "webhook" {
		c.URL = "https://" + id + ".example.org/notices"
	}
	return Event("rcp-"+id, ledger.TypeRecipient, &ledger.Recipient{ID: id, Name: strings.ToUpper(id), Role: ledger.RoleController, Regime: regime, Channel: c})
}

// Registered is a recipient registration with its data changed by f.
func Registered(id, regime, channel string, f func(*ledger.Recipient)) *ledger.Event {
	return With(Recipient(id, regime, channel), f)
}

func Disclosure(id, to string, who ledger.Subject, regime string, cats ...string) *ledger.Event {
	d := &ledger.Disclosure{
		Subjects: []ledger.Subject{who}, Recipient: to, Categories: cats, Purpose: "essential.service",
		LawfulBasis: "art6-1-e", Regime: regime, DisclosedAt: T0.AddDate(0, -1, 0),
	}
	if regime == ledger.RegimeDPAPart3 {
		d.LawfulBasis, d.DisclosedBy, d.Justification = "dpa-s35-2-b", "disclosure-service", "enhanced check"
	}
	return Event(id, ledger.TypeDisclosure, d)
}

func Erasure(id, req string, who ledger.Subject, cats ...string) *ledger.Event {
	return Event(id, ledger.TypeErasure, &ledger.Erasure{RequestHeader: ledger.RequestHeader{Request: req, Subject: who, DecidedAt: T0}, Categories: cats})
}

func Restriction(id, req string, who ledger.Subject, cats ...string) *ledger.Event {
	return Event(id, ledger.TypeRestriction, &ledger.Restriction{RequestHeader: ledger.RequestHeader{Request: req, Subject: who, DecidedAt: T0}, Categories: cats})
}

func Rectification(id string, r *ledger.Rectification) *ledger.Event {
	if r.DecidedAt.IsZero() {
		r.DecidedAt = T0
	}
	return Event(id, ledger.TypeRectification, r)
}

func Lifting(id, req, restr string, who ledger.Subject) *ledger.Event {
	informed := T0.Add(-time.Hour)
	return LiftingTold(id, req, restr, who, &informed, T0.Add(time.Hour))
}

// LiftingTold is a lifting decided at decided, the person told at informed
// (nil: the lifting does not say).
func LiftingTold(id, req, restr string, who ledger.Subject, informed *time.Time, decided time.Time) *ledger.Event {
	return Event(id, ledger.TypeRestrictionLifted, &ledger.RestrictionLifted{RequestHeader: ledger.RequestHeader{Request: req, Subject: who, DecidedAt: decided}, Restriction: restr, SubjectInformedAt: informed})
}

// With returns ev with its data changed by f, and Raw made again.
func With[T any](ev *ledger.Event, f func(*T)) *ledger.Event {
	d := *ev.Data.(*T)
	f(&d)
	return Event(ev.ID, ev.Type, &d)
}

// Received returns a rectification, erasure or restriction event saying
// when the person's request arrived.
func Received(ev *ledger.Event, at time.Time) *ledger.Event {
	switch d := ev.Data.(type) {
	case *ledger.Rectification:
		d.ReceivedAt = &at
	case *ledger.Erasure:
		d.ReceivedAt = &at
	case *ledger.Restriction:
		d.ReceivedAt = &at
	default:
		panic(fmt.Sprintf("ledgertest: %T has no receivedAt", ev.Data))
	}
	return Event(ev.ID, ev.Type, ev.Data)
}

func Extension(id, req string, months int, decided time.Time) *ledger.Event {
	return Event(id, ledger.TypeExtension, &ledger.Extension{Request: req, Months: months, Reason: "complex", DecidedAt: decided})
}

func Paused(id, req, reason string, asked time.Time) *ledger.Event {
	return Event(id, ledger.TypeRequestPaused, &ledger.RequestPaused{Request: req, Reason: reason, AskedAt: asked})
}

func Resumed(id, req string, received time.Time) *ledger.Event {
	return Event(id, ledger.TypeRequestResumed, &ledger.RequestResumed{Request: req, ReceivedAt: received})
}

func Ack(id, notice, from, outcome string) *ledger.Event {
	e := Event(id, ledger.TypeNoticeAck, &ledger.NoticeAck{Notice: notice, Outcome: outcome})
	e.From = from
	return e
}

func Exemption(id, notice, reason string) *ledger.Event {
	return Event(id, ledger.TypeExemption, &ledger.Exemption{Notice: notice, Reason: reason, Justification: "j", DecidedBy: "dpo"})
}

func Delivery(id, notice, outcome string, internal bool) *ledger.Event {
	next := T0.Add(time.Hour)
	d := &ledger.NoticeDelivery{Notice: notice, Attempt: 1, Channel: "nats", Outcome: outcome, At: T0}
	if outcome == ledger.DeliveryFailed {
		d.NextAttemptAt, d.Error = &next, "503"
	}
	e := Event(id, ledger.TypeNoticeDelivery, d)
	e.Internal = internal
	return e
}

func Hold(id, hold string, scope *ledger.HoldScope) *ledger.Event {
	return Event(id, ledger.TypeHold, &ledger.Hold{Hold: hold, Scope: scope, Reason: "IICSA moratorium"})
}

func Release(id, hold string) *ledger.Event {
	return Event(id, ledger.TypeHoldReleased, &ledger.HoldReleased{Hold: hold, Reason: "ended"})
}

// Forget is a step forgetting who, by the keyed hash the ledger under test
// gives it at that step; want its outcome.
func Forget(id string, who ledger.Subject, want ledger.Outcome, reason ledger.Reason, detail string) Step {
	return Step{Event: forgetting(id, nil), Subject: &who, Want: want, Reason: reason, Detail: detail}
}

// ForgetHash is a step forgetting the subject with keyed hash h (hex).
func ForgetHash(id, h string) *ledger.Event {
	e := Event(id, ledger.TypeSubjectForgotten, &ledger.SubjectForgotten{SubjectHash: h, Reason: ledger.ForgetErasureClosed, At: T0})
	e.Internal = true
	return e
}

func forgetting(id string, h []byte) *ledger.Event { return ForgetHash(id, fmt.Sprintf("%x", h)) }
