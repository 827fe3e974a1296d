package ledger

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// The rules' table tests run over MemState: no Badger, no NATS. Each case
// names the provision of the law it implements. The same scenarios run
// against the Badger store in internal/store (conformance_test.go).

var t0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

func at(days int) time.Time { return t0.AddDate(0, 0, days) }

type step struct {
	ev   *Event
	want Outcome
	// reason and detail, for a refusal: the problem's reason and a part of
	// its detail.
	reason Reason
	detail string
}

// run applies steps in order to a fresh state (or st), each recorded at
// day i of the scenario, and checks each outcome.
func run(t *testing.T, st *MemState, d Deadlines, steps ...step) *MemState {
	t.Helper()
	if st == nil {
		st = NewMemState()
	}
	for i, s := range steps {
		got, _, err := st.Append(s.ev, at(i), d)
		if got != s.want {
			t.Fatalf("step %d (%s %s): outcome %v (%v), want %v", i, s.ev.Type, s.ev.ID, got, err, s.want)
		}
		if s.want == Rejected {
			var ie *InvalidError
			if !errors.As(err, &ie) || ie.Reason() != s.reason || !strings.Contains(ie.Error(), s.detail) {
				t.Fatalf("step %d (%s %s): error %v, want reason %s containing %q", i, s.ev.Type, s.ev.ID, err, s.reason, s.detail)
			}
		}
	}
	return st
}

func ok(ev *Event) step { return step{ev: ev, want: Recorded} }
func refused(ev *Event, r Reason, detail string) step {
	return step{ev: ev, want: Rejected, reason: r, detail: detail}
}

func event(id, typ string, data any) *Event {
	return &Event{Source: "test", ID: id, Type: typ, Time: t0, Data: data, Raw: []byte("{}")}
}

func subj(id string) Subject { return Subject{Scheme: "dbs-ref", ID: id} }

func recipient(id, regime string, channel string) *Event {
	return event("rcp-"+id, TypeRecipient, &Recipient{ID: id, Name: strings.ToUpper(id), Role: RoleController, Regime: regime, Channel: Channel{Type: channel}})
}

func disclosure(id, to string, who Subject, regime string, cats ...string) *Event {
	return event(id, TypeDisclosure, &Disclosure{
		Subjects: []Subject{who}, Recipient: to, Categories: cats, Purpose: "essential.service",
		LawfulBasis: "art6-1-e", Regime: regime, DisclosedAt: t0.AddDate(0, -1, 0),
	})
}

func erasure(id, req string, who Subject, cats ...string) *Event {
	return event(id, TypeErasure, &Erasure{Request: req, Subject: who, Categories: cats, DecidedAt: t0})
}

func ack(id, notice, from, outcome string) *Event {
	e := event(id, TypeNoticeAck, &NoticeAck{Notice: notice, Outcome: outcome})
	e.From = from
	return e
}

func exemption(id, notice, reason string) *Event {
	return event(id, TypeExemption, &Exemption{Notice: notice, Reason: reason, Justification: "j", DecidedBy: "dpo"})
}

func delivery(id, notice, outcome string, internal bool) *Event {
	next := t0.Add(time.Hour)
	e := event(id, TypeNoticeDelivery, &NoticeDelivery{Notice: notice, Attempt: 1, Channel: "nats", Outcome: outcome, At: t0, NextAttemptAt: &next})
	e.Internal = internal
	return e
}

// base registers three recipients and discloses A1's data to each.
func base() []step {
	return []step{
		ok(recipient("acro", RegimeDPAPart3, "nats")),
		ok(recipient("police", "", "webhook")),
		ok(recipient("cloud", RegimeUKGDPR, "manual")),
		ok(disclosure("d1", "acro", subj("A1"), RegimeDPAPart3, "user.contact.email")),
		ok(disclosure("d2", "police", subj("A1"), RegimeUKGDPR, "user.contact")),
		ok(disclosure("d3", "cloud", subj("A1"), RegimeUKGDPR, "user.health_and_medical")),
	}
}

type told struct {
	Recipient  string
	Categories []string
	Regime     string
}

func toldOf(st *MemState, request string) []told {
	r, _ := st.Request(request)
	if r == nil {
		return nil
	}
	var out []told
	for _, n := range r.Notices {
		o, _ := st.Obligation(n)
		out = append(out, told{o.Recipient, o.Categories, o.Regime})
	}
	return out
}

// TestPropagationFanOut: UK GDPR Art. 19 and DPA 2018 s.48 — every recipient
// that received the affected data is told, and only of what it received.
func TestPropagationFanOut(t *testing.T) {
	tests := []struct {
		name string
		req  *Event
		want []told
	}{
		{"Art19 erasure of all data reaches every recipient", erasure("e", "R", subj("A1")),
			[]told{{"acro", []string{"user.contact.email"}, RegimeDPAPart3}, {"cloud", []string{"user.health_and_medical"}, RegimeUKGDPR}, {"police", []string{"user.contact"}, RegimeUKGDPR}}},
		{"Art19 a broader category covers a narrower disclosure", erasure("e", "R", subj("A1"), "user.contact"),
			[]told{{"acro", []string{"user.contact.email"}, RegimeDPAPart3}, {"police", []string{"user.contact"}, RegimeUKGDPR}}},
		{"Art19 a narrower category reaches a broader disclosure, naming the narrower key", erasure("e", "R", subj("A1"), "user.contact.address"),
			[]told{{"police", []string{"user.contact.address"}, RegimeUKGDPR}}},
		{"Art19 categories nobody received reach nobody", erasure("e", "R", subj("A1"), "user.financial"), nil},
		{"Art19 a person the ledger never saw reaches nobody", erasure("e", "R", subj("Z9")), nil},
		{"Art5(1)(c) a sibling category is not covered", erasure("e", "R", subj("A1"), "user.contact.phone_number"),
			[]told{{"police", []string{"user.contact.phone_number"}, RegimeUKGDPR}}},
		{"s.48 restriction under Part 3 via the recipient", event("r", TypeRestriction, &Restriction{Request: "R", Subject: subj("A1"), Categories: []string{"user.contact.email"}, DecidedAt: t0}),
			[]told{{"acro", []string{"user.contact.email"}, RegimeDPAPart3}, {"police", []string{"user.contact.email"}, RegimeUKGDPR}}},
		{"s.48 a Part 3 request makes every obligation Part 3", event("rc", TypeRectification, &Rectification{Request: "R", Subject: subj("A1"), Categories: []string{"user.health_and_medical"}, DecidedAt: t0, Regime: RegimeDPAPart3}),
			[]told{{"cloud", []string{"user.health_and_medical"}, RegimeDPAPart3}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := run(t, nil, Deadlines{}, append(base(), ok(tt.req))...)
			if got := toldOf(st, "R"); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("told:\n got %v\nwant %v", got, tt.want)
			}
			r, _ := st.Request("R")
			if r == nil || r.Seq != 7 || r.Action != RequestActions[tt.req.Type] {
				t.Errorf("request record = %+v", r)
			}
		})
	}
}

// TestNoticeContent: Art. 5(1)(c) — each notice carries only what its
// recipient received: its categories, its disclosures, and the rectified
// fields in categories it received.
func TestNoticeContent(t *testing.T) {
	rect := event("rc", TypeRectification, &Rectification{Request: "R", Subject: subj("A1"), DecidedAt: t0, Changes: []Change{
		{Category: "user.contact.email", Field: "email", Value: "new@example.org"},
		{Category: "user.contact.address", Field: "street", Value: "1 New Street"},
		{Category: "user.health_and_medical", Field: "condition", Value: "x"},
		{Category: "user.contact", Field: "all-contact", Value: "y"},
	}})
	st := run(t, nil, Deadlines{}, append(base(), ok(rect))...)
	want := map[string][]string{
		"acro":   {"email"},                          // received user.contact.email only; user.contact is broader
		"police": {"email", "street", "all-contact"}, // received user.contact
		"cloud":  {"condition"},
	}
	for rcp, fields := range want {
		n, ok := st.Notice(NoticeID("R", rcp))
		if !ok {
			t.Fatalf("no notice for %s", rcp)
		}
		var got []string
		for _, c := range n.Changes {
			got = append(got, c.Field)
		}
		if !slices.Equal(got, fields) {
			t.Errorf("%s: changes %v, want %v", rcp, got, fields)
		}
		if n.Subject != subj("A1") || n.Action != ActionRectify || n.Due.IsZero() {
			t.Errorf("%s: notice %+v", rcp, n)
		}
	}
}

// TestRequestOnce: a request id names one request; replaying it opens nothing.
func TestRequestOnce(t *testing.T) {
	run(t, nil, Deadlines{}, append(base(),
		ok(erasure("e1", "R", subj("A1"))),
		refused(erasure("e2", "R", subj("A1")), ReasonConflict, "already recorded (entry 7)"),
		refused(event("r", TypeRestriction, &Restriction{Request: "R", Subject: subj("A1"), DecidedAt: t0}), ReasonConflict, "already recorded as a org.sharelog.erasure.v1"),
		step{ev: erasure("e1", "R", subj("A1")), want: Duplicate},
	)...)
}

// TestDeadlinesApplied: the notice is due by the policy for the
// obligation's regime, shortened by the recipient's SLA (Art. 12(3)).
func TestDeadlinesApplied(t *testing.T) {
	sla := event("rcp-cloud2", TypeRecipient, &Recipient{ID: "cloud", Name: "CLOUD", Role: RoleProcessor, SLADays: 3, Channel: Channel{Type: "manual"}})
	st := run(t, nil, Deadlines{Regimes: map[string]Deadline{RegimeDPAPart3: {Days: 14}}}, append(base(), ok(sla), ok(erasure("e", "R", subj("A1"))))...)
	for rcp, want := range map[string]time.Time{"acro": t0.AddDate(0, 0, 14), "police": t0.AddDate(0, 1, 0), "cloud": t0.AddDate(0, 0, 3)} {
		o, _ := st.Obligation(NoticeID("R", rcp))
		if !o.Due.Equal(want) {
			t.Errorf("%s due %s, want %s", rcp, o.Due, want)
		}
	}
}

// TestAnswers: the obligation state machine — acknowledgements only from
// the notice's recipient (Art. 19; forged acks refused), exemptions per
// regime (Art. 19 vs DPA 2018 s.48), deliveries only from sharelog.
func TestAnswers(t *testing.T) {
	acro, police, cloud := NoticeID("R", "acro"), NoticeID("R", "police"), NoticeID("R", "cloud")
	tests := []struct {
		name  string
		steps []step
		want  map[string]string // notice -> state
	}{
		{"Art19 the recipient acknowledges its own notice",
			[]step{ok(ack("a", police, "police", "done"))}, map[string]string{police: StateAcknowledged}},
		{"Art19 an ack from another recipient is refused",
			[]step{refused(ack("a", police, "acro", "done"), ReasonWrongRecipient, `this acknowledgement came from recipient "acro"`)}, map[string]string{police: StatePending}},
		{"Art19 an ack from no recipient is refused",
			[]step{refused(ack("a", police, "", "done"), ReasonWrongRecipient, "came from no recipient")}, map[string]string{police: StatePending}},
		{"an ack for a notice never opened is refused",
			[]step{refused(ack("a", "ntc-00000000000000000000", "police", "done"), ReasonUnknownNotice, "not in the ledger")}, nil},
		{"Art19 a closed obligation takes no second answer",
			[]step{ok(ack("a", police, "police", "done")), refused(ack("b", police, "police", "refused"), ReasonConflict, "already closed (acknowledged)")}, map[string]string{police: StateAcknowledged}},
		{"Art19 disproportionate effort exempts under UK GDPR",
			[]step{ok(exemption("x", cloud, "disproportionate-effort"))}, map[string]string{cloud: StateExempted}},
		{"s.48 no disproportionate-effort exemption under Part 3",
			[]step{refused(exemption("x", acro, "disproportionate-effort"), ReasonExemptionRefused, "s.48")}, map[string]string{acro: StatePending}},
		{"s.48 impossibility still exempts under Part 3",
			[]step{ok(exemption("x", acro, "impossible"))}, map[string]string{acro: StateExempted}},
		{"an exemption after the answer is refused",
			[]step{ok(ack("a", police, "police", "done")), refused(exemption("x", police, "impossible"), ReasonConflict, "already closed")}, map[string]string{police: StateAcknowledged}},
		{"a delivery moves a pending obligation to delivered",
			[]step{ok(delivery("dl", police, DeliveryDelivered, true))}, map[string]string{police: StateDelivered}},
		{"a failed delivery stays pending",
			[]step{ok(delivery("dl", police, DeliveryFailed, true))}, map[string]string{police: StatePending}},
		{"a delivery record from outside sharelog is refused",
			[]step{refused(delivery("dl", police, DeliveryDelivered, false), ReasonConflict, "only by sharelog itself")}, map[string]string{police: StatePending}},
		{"a delivery after the answer is evidence only",
			[]step{ok(ack("a", police, "police", "done")), ok(delivery("dl", police, DeliveryDelivered, true))}, map[string]string{police: StateAcknowledged}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := run(t, nil, Deadlines{}, append(append(base(), ok(erasure("e", "R", subj("A1")))), tt.steps...)...)
			for n, want := range tt.want {
				if o, _ := st.Obligation(n); o.State != want {
					t.Errorf("%s: state %s, want %s", o.Recipient, o.State, want)
				}
			}
		})
	}
}

// TestSenders: only sharelog derives notices and records deliveries and
// forgettings; producers cannot forge them.
func TestSenders(t *testing.T) {
	tests := []struct {
		name   string
		typ    string
		sender Sender
		want   Reason
	}{
		{"notices are derived, never sent", TypeNotice, Sender{Internal: true}, ReasonConflict},
		{"a producer cannot record a delivery", TypeNoticeDelivery, Sender{}, ReasonConflict},
		{"sharelog records deliveries", TypeNoticeDelivery, Sender{Internal: true}, ""},
		{"a producer cannot forget a person", TypeSubjectForgotten, Sender{}, ReasonConflict},
		{"a recipient cannot forget a person", TypeSubjectForgotten, Sender{Recipient: "acro"}, ReasonConflict},
		{"sharelog forgets", TypeSubjectForgotten, Sender{Internal: true}, ""},
		{"acks come from a recipient", TypeNoticeAck, Sender{}, ReasonWrongRecipient},
		{"a recipient acks", TypeNoticeAck, Sender{Recipient: "acro"}, ""},
		{"producers send disclosures", TypeDisclosure, Sender{}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got Reason
			if err := MaySend(tt.typ, tt.sender); err != nil {
				got = err.Reason()
			}
			if got != tt.want {
				t.Errorf("MaySend(%s, %+v) = %q, want %q", tt.typ, tt.sender, got, tt.want)
			}
		})
	}
}

func restriction(id, req string, who Subject, cats ...string) *Event {
	return event(id, TypeRestriction, &Restriction{Request: req, Subject: who, Categories: cats, DecidedAt: t0})
}

func lifting(id, req, restr string, who Subject) *Event {
	informed := t0.Add(-time.Hour)
	return event(id, TypeRestrictionLifted, &RestrictionLifted{Request: req, Restriction: restr, Subject: who, SubjectInformedAt: &informed, DecidedAt: t0.Add(time.Hour)})
}

// TestLifting: Art. 18(3) and 19 — the lifting of a restriction goes to
// the recipients told of the restriction, except those exempted from it.
func TestLifting(t *testing.T) {
	tests := []struct {
		name  string
		steps []step
		want  []told
	}{
		{"Art19 the lifting goes to every recipient told of the restriction",
			[]step{ok(restriction("r", "RS", subj("A1"), "user.contact")), ok(lifting("l", "L", "RS", subj("A1")))},
			[]told{{"acro", []string{"user.contact.email"}, RegimeDPAPart3}, {"police", []string{"user.contact"}, RegimeUKGDPR}}},
		{"Art19 a recipient exempted from the restriction is not told of its lifting",
			[]step{ok(restriction("r", "RS", subj("A1"), "user.contact")), ok(exemption("x", NoticeID("RS", "police"), "impossible")), ok(lifting("l", "L", "RS", subj("A1")))},
			[]told{{"acro", []string{"user.contact.email"}, RegimeDPAPart3}}},
		{"a lifting of an unknown restriction is refused",
			[]step{refused(lifting("l", "L", "RS", subj("A1")), ReasonUnknownRequest, `restriction "RS" is not in the ledger`)}, nil},
		{"a lifting must name a restriction",
			[]step{ok(erasure("e", "E", subj("A1"))), refused(lifting("l", "L", "E", subj("A1")), ReasonUnknownRequest, "not a restriction")}, nil},
		{"a restriction is lifted once",
			[]step{ok(restriction("r", "RS", subj("A1"))), ok(lifting("l", "L", "RS", subj("A1"))), refused(lifting("l2", "L2", "RS", subj("A1")), ReasonConflict, `already lifted by request "L"`)},
			[]told{{"acro", []string{"user.contact.email"}, RegimeDPAPart3}, {"cloud", []string{"user.health_and_medical"}, RegimeUKGDPR}, {"police", []string{"user.contact"}, RegimeUKGDPR}}},
		{"a lifting must be about the restriction's subject",
			[]step{ok(disclosure("d9", "police", subj("B2"), RegimeUKGDPR, "user.name")), ok(restriction("r", "RS", subj("A1"))), refused(lifting("l", "L", "RS", subj("B2")), ReasonConflict, "not the subject of restriction")}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := run(t, nil, Deadlines{}, append(base(), tt.steps...)...)
			if got := toldOf(st, "L"); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("told of the lifting:\n got %v\nwant %v", got, tt.want)
			}
			if tt.want != nil {
				if r, _ := st.Request("RS"); r.LiftedBy != "L" {
					t.Errorf("restriction LiftedBy = %q", r.LiftedBy)
				}
			}
		})
	}
}

// TestAfterErasure: a disclosure of data whose erasure was already decided
// is recorded (the ledger is a record, Art. 5(2)) but flagged.
func TestAfterErasure(t *testing.T) {
	late := func(id string, cats ...string) *Event {
		e := disclosure(id, "police", subj("A1"), RegimeUKGDPR, cats...)
		e.Data.(*Disclosure).DisclosedAt = t0.Add(time.Hour)
		return e
	}
	early := disclosure("d-early", "police", subj("A1"), RegimeUKGDPR, "user.contact.email")
	st := run(t, nil, Deadlines{}, append(base(),
		ok(erasure("e", "E", subj("A1"), "user.contact")),
		ok(late("d-late", "user.contact.email")),
		ok(late("d-other", "user.financial")),
		ok(early),
	)...)
	for id, want := range map[string]string{"d-late": "E", "d-other": "", "d-early": ""} {
		if got := st.AfterErasure(st.Entry("test", id)); got != want {
			t.Errorf("%s flagged after %q, want %q", id, got, want)
		}
	}
}

// TestUnknownRecipient: a disclosure names a registered recipient, so that
// the subject can be told who received their data (Art. 15(1)(c), C-154/21).
func TestUnknownRecipient(t *testing.T) {
	run(t, nil, Deadlines{}, refused(disclosure("d", "nobody", subj("A1"), RegimeUKGDPR, "user.name"), ReasonUnknownRecipient, `recipient "nobody" is not registered`))
}

func hold(h string, scope *HoldScope) *Event { return holdEvent("hold-"+h, h, scope) }

func holdEvent(id, h string, scope *HoldScope) *Event {
	return event(id, TypeHold, &Hold{Hold: h, Scope: scope, Reason: "IICSA moratorium"})
}

func release(id, h string) *Event {
	return event(id, TypeHoldReleased, &HoldReleased{Hold: h, Reason: "ended"})
}

func forget(id string, st *MemState, who Subject) *Event {
	h, _ := st.SubjectHash(who)
	e := event(id, TypeSubjectForgotten, &SubjectForgotten{SubjectHash: hexString(h), Reason: ForgetErasureClosed, At: t0})
	e.Internal = true
	return e
}

func forgetHash(id, h string) *Event {
	e := event(id, TypeSubjectForgotten, &SubjectForgotten{SubjectHash: h, Reason: ForgetErasureClosed, At: t0})
	e.Internal = true
	return e
}

// TestHoldsStopForgetting: UK GDPR Art. 17(3)(b) and (e), DPA 2018 s.47(2) —
// data under a legal hold is not destroyed, whether the hold names the
// person, a purpose or a category of their disclosures.
func TestHoldsStopForgetting(t *testing.T) {
	tests := []struct {
		name  string
		scope func(st *MemState) *HoldScope
		held  bool
	}{
		{"Art17(3)(e) a hold on the person", func(*MemState) *HoldScope { s := subj("A1"); return &HoldScope{Subject: &s} }, true},
		{"Art17(3)(b) a hold on a purpose of their disclosures", func(*MemState) *HoldScope { return &HoldScope{Purpose: "essential.service"} }, true},
		{"s.47(2) a hold on a broader category", func(*MemState) *HoldScope { return &HoldScope{Categories: []string{"user.contact"}} }, true},
		{"s.47(2) a hold on a narrower category", func(*MemState) *HoldScope {
			return &HoldScope{Categories: []string{"user.health_and_medical.condition"}}
		}, true},
		{"a hold on purpose and category needs one disclosure with both", func(*MemState) *HoldScope {
			return &HoldScope{Purpose: "essential.service", Categories: []string{"user.financial"}}
		}, false},
		{"a hold on another person", func(*MemState) *HoldScope { s := subj("B2"); return &HoldScope{Subject: &s} }, false},
		{"an empty scope holds nothing", func(*MemState) *HoldScope { return nil }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := run(t, nil, Deadlines{}, base()...)
			run(t, st, Deadlines{}, ok(hold("H", tt.scope(st))))
			if tt.held {
				run(t, st, Deadlines{}, refused(forget("f", st, subj("A1")), ReasonConflict, `under legal hold ["H"]`))
				run(t, st, Deadlines{}, ok(release("rel", "H")))
			}
			run(t, st, Deadlines{}, ok(forget("f2", st, subj("A1"))))
			if k, _ := st.Known(st.subjects["dbs-ref\x00A1"]); k {
				t.Error("subject still known after forgetting")
			}
		})
	}
}

// TestHoldRules: a hold is placed once and released once.
func TestHoldRules(t *testing.T) {
	run(t, nil, Deadlines{},
		ok(hold("H", &HoldScope{Purpose: "essential.service"})),
		refused(holdEvent("hold-again", "H", nil), ReasonConflict, `hold "H" is already recorded (entry 1)`),
		refused(release("r0", "other"), ReasonUnknownRequest, `hold "other" is not in the ledger`),
		ok(release("r1", "H")),
		refused(release("r2", "H"), ReasonConflict, "already released"),
	)
}

// TestForgetting: the evidence outlives the person (Art. 5(2)); what named
// them goes (Art. 17).
func TestForgetting(t *testing.T) {
	st := run(t, nil, Deadlines{}, append(base(), ok(erasure("e", "E", subj("A1"))), ok(exemption("x", NoticeID("E", "cloud"), "impossible")))...)
	s := subj("A1")
	run(t, st, Deadlines{}, ok(hold("H", &HoldScope{Subject: &s})), ok(release("rel", "H")), ok(forget("f", st, subj("A1"))))
	if h, _ := st.SubjectHash(subj("A1")); h != nil {
		t.Error("the identifier still leads to the subject")
	}
	r, _ := st.Request("E")
	if r == nil || r.ForgottenAt == nil || len(r.Notices) != 3 {
		t.Fatalf("request after forgetting = %+v; want it kept, marked forgotten, with its 3 notices", r)
	}
	o, _ := st.Obligation(NoticeID("E", "cloud"))
	if o.State != StateExempted || o.Exemption.Justification != "" || o.Exemption.Reason != "impossible" {
		t.Errorf("exemption after forgetting = %+v; want kept, justification blanked", o.Exemption)
	}
	if _, ok := st.Notice(NoticeID("E", "acro")); ok {
		t.Error("notice payload kept after forgetting")
	}
	if h := st.Holds()[0]; h.Reason != "" || h.SubjectHash == "" {
		t.Errorf("hold after forgetting = %+v; want its reason blanked", h)
	}
	run(t, st, Deadlines{},
		refused(forget("f2", st, subj("never-seen")), ReasonInvalidData, "not a subject hash"),
		refused(forgetHash("f3", "00112233445566778899aabbccddeeff"), ReasonConflict, "does not know this subject"),
		// A new disclosure of the same person starts a new, unlinked record.
		ok(disclosure("d-new", "police", subj("A1"), RegimeUKGDPR, "user.name")),
	)
	if h, _ := st.SubjectHash(subj("A1")); h == nil {
		t.Error("a new disclosure did not make the subject known again")
	}
}
