package ledgertest

import (
	"slices"
	"time"

	"github.com/sharelog/sharelog/internal/ledger"
)

// Base registers three recipients (ACRO under DPA 2018 Part 3 over NATS, a
// police force by webhook, a cloud processor by hand) and discloses A1's
// data to each: steps 0 to 5.
func Base() []Step {
	a1 := Subject("A1")
	return []Step{
		OK(Recipient("acro", ledger.RegimeDPAPart3, "nats")),
		OK(Recipient("police", "", "webhook")),
		OK(Recipient("cloud", ledger.RegimeUKGDPR, "manual")),
		OK(Disclosure("d1", "acro", a1, ledger.RegimeDPAPart3, "user.contact.email")),
		OK(Disclosure("d2", "police", a1, ledger.RegimeUKGDPR, "user.contact")),
		OK(Disclosure("d3", "cloud", a1, ledger.RegimeUKGDPR, "user.health_and_medical")),
	}
}

func with(steps ...Step) []Step { return append(Base(), steps...) }

const (
	pending      = ledger.StatePending
	delivered    = ledger.StateDelivered
	acknowledged = ledger.StateAcknowledged
	exempted     = ledger.StateExempted
	part3        = ledger.RegimeDPAPart3
	ukgdpr       = ledger.RegimeUKGDPR
)

func told(r string, state, regime string, cats ...string) Told {
	return Told{Recipient: r, Categories: cats, Regime: regime, State: state}
}

var (
	a1             = Subject("A1")
	acroR, policeR = ledger.NoticeID("R", "acro"), ledger.NoticeID("R", "police")
	cloudR         = ledger.NoticeID("R", "cloud")
	erasureR       = Erasure("e", "R", a1)
	allToldR       = []Told{
		told("acro", pending, part3, "user.contact.email"),
		told("cloud", pending, ukgdpr, "user.health_and_medical"),
		told("police", pending, ukgdpr, "user.contact"),
	}
)

func withState(ts []Told, r, state string) []Told {
	out := append([]Told(nil), ts...)
	for i := range out {
		if out[i].Recipient == r {
			out[i].State = state
		}
	}
	return out
}

// Scenarios returns every scenario, each named by the provision it exercises.
func Scenarios() []Scenario {
	return slices.Concat(ruleScenarios(), clockScenarios(), lawScenarios(), consultationScenarios())
}

func ruleScenarios() []Scenario {
	return []Scenario{
		// Propagation: UK GDPR Art. 19, DPA 2018 s.48.
		{Name: "Art19 erasure of all data reaches every recipient", Steps: with(OK(erasureR)), Requests: map[string][]Told{"R": allToldR}},
		{Name: "Art19 a broader category covers a narrower disclosure", Steps: with(OK(Erasure("e", "R", a1, "user.contact"))),
			Requests: map[string][]Told{"R": {told("acro", pending, part3, "user.contact.email"), told("police", pending, ukgdpr, "user.contact")}}},
		{Name: "Art19 a narrower category reaches a broader disclosure, naming the narrower key", Steps: with(OK(Erasure("e", "R", a1, "user.contact.address"))),
			Requests: map[string][]Told{"R": {told("police", pending, ukgdpr, "user.contact.address")}}},
		{Name: "Art19 categories nobody received reach nobody", Steps: with(OK(Erasure("e", "R", a1, "user.financial"))), Requests: map[string][]Told{"R": nil}},
		{Name: "Art19 a person the ledger never saw reaches nobody", Steps: with(OK(Erasure("e", "R", Subject("Z9")))), Requests: map[string][]Told{"R": nil}},
		{Name: "s.48 restriction: Part 3 through the recipient's regime", Steps: with(OK(Restriction("r", "R", a1, "user.contact.email"))),
			Requests: map[string][]Told{"R": {told("acro", pending, part3, "user.contact.email"), told("police", pending, ukgdpr, "user.contact.email")}}},
		{Name: "s.48 a Part 3 request makes every obligation Part 3",
			Steps:    with(OK(Rectification("rc", &ledger.Rectification{RequestHeader: ledger.RequestHeader{Request: "R", Subject: a1}, Categories: []string{"user.health_and_medical"}, Regime: part3}))),
			Requests: map[string][]Told{"R": {told("cloud", pending, part3, "user.health_and_medical")}}},
		{Name: "a request id names one request",
			Steps: with(OK(erasureR),
				Refused(Erasure("e2", "R", a1), ledger.ReasonConflict, "already recorded (entry 7)"),
				Refused(Restriction("r", "R", a1), ledger.ReasonConflict, "already recorded as a org.sharelog.erasure.v1"),
				Dup(erasureR)),
			Requests: map[string][]Told{"R": allToldR}},
		{Name: "Art15(1)(c) a disclosure names a registered recipient",
			Steps: []Step{Refused(Disclosure("d", "nobody", a1, ukgdpr, "user.name"), ledger.ReasonUnknownRecipient, `recipient "nobody" is not registered`)}},

		// Answers: the obligation's state machine.
		{Name: "Art19 the recipient acknowledges its own notice", Steps: with(OK(erasureR), OK(Ack("a", policeR, "police", "done"))),
			Requests: map[string][]Told{"R": withState(allToldR, "police", acknowledged)}},
		{Name: "Art19 an ack from another recipient is refused",
			Steps:    with(OK(erasureR), Refused(Ack("a", policeR, "acro", "done"), ledger.ReasonWrongRecipient, `this acknowledgement came from recipient "acro"`)),
			Requests: map[string][]Told{"R": allToldR}},
		{Name: "Art19 an ack from no recipient is refused",
			Steps:    with(OK(erasureR), Refused(Ack("a", policeR, "", "done"), ledger.ReasonWrongRecipient, "came from no recipient")),
			Requests: map[string][]Told{"R": allToldR}},
		{Name: "an ack for a notice never opened is refused",
			Steps: with(OK(erasureR), Refused(Ack("a", "ntc-00000000000000000000", "police", "done"), ledger.ReasonUnknownNotice, "not in the ledger"))},
		{Name: "Art19 a closed obligation takes no second answer",
			Steps:    with(OK(erasureR), OK(Ack("a", policeR, "police", "done")), Refused(Ack("b", policeR, "police", "refused"), ledger.ReasonConflict, "already closed (acknowledged)")),
			Requests: map[string][]Told{"R": withState(allToldR, "police", acknowledged)}},
		{Name: "Art19 disproportionate effort exempts under UK GDPR", Steps: with(OK(erasureR), OK(Exemption("x", cloudR, "disproportionate-effort"))),
			Requests: map[string][]Told{"R": withState(allToldR, "cloud", exempted)}},
		{Name: "s.48 no disproportionate-effort exemption under Part 3",
			Steps:    with(OK(erasureR), Refused(Exemption("x", acroR, "disproportionate-effort"), ledger.ReasonExemptionRefused, "s.48")),
			Requests: map[string][]Told{"R": allToldR}},
		{Name: "s.48 impossibility still exempts under Part 3", Steps: with(OK(erasureR), OK(Exemption("x", acroR, "impossible"))),
			Requests: map[string][]Told{"R": withState(allToldR, "acro", exempted)}},
		{Name: "an exemption after the answer is refused",
			Steps:    with(OK(erasureR), OK(Ack("a", policeR, "police", "done")), Refused(Exemption("x", policeR, "impossible"), ledger.ReasonConflict, "already closed")),
			Requests: map[string][]Told{"R": withState(allToldR, "police", acknowledged)}},
		{Name: "a delivery moves a pending obligation to delivered", Steps: with(OK(erasureR), OK(Delivery("dl", policeR, ledger.DeliveryDelivered, true))),
			Requests: map[string][]Told{"R": withState(allToldR, "police", delivered)}},
		{Name: "a failed delivery stays pending", Steps: with(OK(erasureR), OK(Delivery("dl", policeR, ledger.DeliveryFailed, true))),
			Requests: map[string][]Told{"R": allToldR}},
		{Name: "a delivery record from outside sharelog is refused",
			Steps:    with(OK(erasureR), Refused(Delivery("dl", policeR, ledger.DeliveryDelivered, false), ledger.ReasonConflict, "only by sharelog itself")),
			Requests: map[string][]Told{"R": allToldR}},
		{Name: "a delivery after the answer is evidence only",
			Steps:    with(OK(erasureR), OK(Ack("a", policeR, "police", "done")), OK(Delivery("dl", policeR, ledger.DeliveryDelivered, true))),
			Requests: map[string][]Told{"R": withState(allToldR, "police", acknowledged)}},
		{Name: "notices are derived by sharelog, never recorded from outside",
			Steps: with(Refused(Event("n", ledger.TypeNotice, &ledger.Notice{Notice: "ntc-1", Action: "erase", Request: "R", Subject: a1, Categories: []string{"user.name"}, Disclosures: []string{"d1"}, Due: T0}), ledger.ReasonConflict, "derived by sharelog"))},

		// Restrictions and their lifting: Art. 18(3), 19.
		{Name: "Art19 the lifting goes to every recipient told of the restriction",
			Steps:    with(OK(Restriction("r", "RS", a1, "user.contact")), OK(Lifting("l", "L", "RS", a1))),
			Requests: map[string][]Told{"L": {told("acro", pending, part3, "user.contact.email"), told("police", pending, ukgdpr, "user.contact")}}},
		{Name: "Art19 a recipient exempted from the restriction is not told of its lifting",
			Steps:    with(OK(Restriction("r", "RS", a1, "user.contact")), OK(Exemption("x", ledger.NoticeID("RS", "police"), "impossible")), OK(Lifting("l", "L", "RS", a1))),
			Requests: map[string][]Told{"L": {told("acro", pending, part3, "user.contact.email")}}},
		{Name: "a lifting of an unknown restriction is refused",
			Steps: with(Refused(Lifting("l", "L", "RS", a1), ledger.ReasonUnknownRequest, `restriction "RS" is not in the ledger`))},
		{Name: "a lifting must name a restriction",
			Steps: with(OK(Erasure("e", "E", a1)), Refused(Lifting("l", "L", "E", a1), ledger.ReasonUnknownRequest, "not a restriction"))},
		{Name: "a restriction is lifted once",
			Steps: with(OK(Restriction("r", "RS", a1)), OK(Lifting("l", "L", "RS", a1)), Refused(Lifting("l2", "L2", "RS", a1), ledger.ReasonConflict, `already lifted by request "L"`))},
		{Name: "a lifting must be about the restriction's subject",
			Steps: with(OK(Disclosure("d9", "police", Subject("B2"), ukgdpr, "user.name")), OK(Restriction("r", "RS", a1)),
				Refused(Lifting("l", "L", "RS", Subject("B2")), ledger.ReasonConflict, "not the subject of restriction"))},

		// Holds and forgetting: Art. 17(3)(b) and (e), DPA 2018 s.47(2), Art. 5(2).
		{Name: "Art17(3)(e) a hold on the person stops forgetting until released",
			Steps: with(OK(Hold("h", "H", &ledger.HoldScope{Subject: &a1})),
				Forget("f", a1, ledger.Rejected, ledger.ReasonConflict, `under legal hold ["H"]`),
				Refused(Hold("h2", "H", nil), ledger.ReasonConflict, `hold "H" is already recorded (entry 7)`),
				OK(Release("rel", "H")),
				Refused(Release("rel2", "H"), ledger.ReasonConflict, "already released"),
				Forget("f2", a1, ledger.Recorded, "", ""))},
		{Name: "Art17(3)(b) a hold on a purpose of their disclosures",
			Steps: with(OK(Hold("h", "H", &ledger.HoldScope{Purpose: "essential.service"})), Forget("f", a1, ledger.Rejected, ledger.ReasonConflict, "legal hold"))},
		{Name: "s.47(2) a hold on a broader category",
			Steps: with(OK(Hold("h", "H", &ledger.HoldScope{Categories: []string{"user.contact"}})), Forget("f", a1, ledger.Rejected, ledger.ReasonConflict, "legal hold"))},
		{Name: "s.47(2) a hold on a narrower category",
			Steps: with(OK(Hold("h", "H", &ledger.HoldScope{Categories: []string{"user.health_and_medical.condition"}})), Forget("f", a1, ledger.Rejected, ledger.ReasonConflict, "legal hold"))},
		{Name: "a hold on purpose and category needs one disclosure with both",
			Steps: with(OK(Hold("h", "H", &ledger.HoldScope{Purpose: "essential.service", Categories: []string{"user.financial"}})), Forget("f", a1, ledger.Recorded, "", ""))},
		{Name: "a hold on another person does not stop forgetting",
			Steps: with(OK(Hold("h", "H", &ledger.HoldScope{Subject: ptr(Subject("B2"))})), Forget("f", a1, ledger.Recorded, "", ""))},
		{Name: "a release names a hold in the ledger",
			Steps: []Step{Refused(Release("rel", "other"), ledger.ReasonUnknownRequest, `hold "other" is not in the ledger`)}},
		{Name: "Art5(2) forgetting keeps the obligations as evidence",
			Steps: with(OK(erasureR), OK(Exemption("x", cloudR, "impossible")), OK(Ack("a", policeR, "police", "done")),
				Forget("f", a1, ledger.Recorded, "", ""),
				Refused(ForgetHash("f2", "00112233445566778899aabbccddeeff"), ledger.ReasonConflict, "does not know this subject"),
				// A recipient still answers after the person is forgotten.
				OK(Ack("a2", acroR, "acro", "done"))),
			Requests: map[string][]Told{"R": withState(withState(withState(allToldR, "cloud", exempted), "police", acknowledged), "acro", acknowledged)}},
		{Name: "a forgetting from outside sharelog is refused",
			Steps: with(Refused(Event("f", ledger.TypeSubjectForgotten, &ledger.SubjectForgotten{SubjectHash: "00112233445566778899aabbccddeeff", Reason: ledger.ForgetRetention, At: T0}), ledger.ReasonConflict, "only by sharelog itself"))},
	}
}

func ptr[T any](v T) *T { return &v }

// lawScenarios are the rules of issue 11, items 3 to 9, each named by the
// provision it implements.
func lawScenarios() []Scenario {
	minute := T0.Add(10 * time.Hour) // 19:00:00, decisions below fall in this minute
	restrictedThenLifted := func(informed *time.Time, decided time.Time, want Step) []Step {
		return with(OK(Restriction("r", "RS", a1, "user.contact")), want)
	}
	lifting := func(informed *time.Time, decided time.Time) *ledger.Event {
		return LiftingTold("l", "L", "RS", a1, informed, decided)
	}
	placeholder := func(id string, f func(*ledger.Disclosure)) *ledger.Event {
		return With(Disclosure(id, "acro", a1, part3, "user.name"), f)
	}
	uk := func(id string, f func(*ledger.Disclosure)) *ledger.Event {
		return With(Disclosure(id, "police", a1, ukgdpr, "user.name"), f)
	}
	at := func(ev *ledger.Event, t time.Time) *ledger.Event {
		return With(ev, func(d *ledger.Disclosure) { d.DisclosedAt = t })
	}
	processor := Registered("proc", ukgdpr, "nats", func(r *ledger.Recipient) { r.Role = ledger.RoleProcessor })
	procR := ledger.NoticeID("R", "proc")
	origin := Registered("origin", part3, "nats", func(r *ledger.Recipient) { r.Role = ledger.RoleCompetentAuthority })
	fromOrigin := With(Disclosure("d-from", "police", a1, ukgdpr, "user.contact.email"), func(d *ledger.Disclosure) { d.ReceivedFrom = "origin" })
	rectify := func(cats ...string) *ledger.Event {
		return Rectification("rc", &ledger.Rectification{RequestHeader: ledger.RequestHeader{Request: "R", Subject: a1}, Categories: cats})
	}
	holdA1 := Hold("h", "H", &ledger.HoldScope{Subject: &a1})
	holdContact := Hold("h2", "H2", &ledger.HoldScope{Categories: []string{"user.contact"}})
	restrict := func(heldBy ...string) Obl { return Obl{Action: ledger.ActionRestrict, State: pending, HeldBy: heldBy} }
	erase := func(afterHold string) Obl {
		return Obl{Action: ledger.ActionErase, State: pending, AfterHold: afterHold}
	}
	after := func(r string) string { return ledger.AfterHoldNoticeID("R", r) }
	inquiry := Registered("inq", part3, "manual", func(r *ledger.Recipient) { r.Role = ledger.RoleCompetentAuthority; r.InquiryAuthority = true })
	return []Scenario{
		// Item 3: UK GDPR Art. 18(3).
		{Name: "Art18(3) a lifting that does not say when the person was told is refused",
			Steps:    restrictedThenLifted(nil, minute, Refused(lifting(nil, minute), ledger.ReasonInvalidData, "Art. 18(3): the person must be informed before a restriction is lifted; the lifting does not say when")),
			Requests: map[string][]Told{"L": nil}},
		{Name: "Art18(3) a lifting the person was told of after its decision is refused",
			Steps: restrictedThenLifted(nil, minute, Refused(lifting(ptr(minute.Add(time.Minute)), minute), ledger.ReasonInvalidData, "is not before the lifting's decision"))},
		{Name: "Art18(3) told at the very instant of the decision is not before it: refused",
			Steps: restrictedThenLifted(nil, minute, Refused(lifting(ptr(minute.Add(30*time.Second)), minute.Add(30*time.Second)), ledger.ReasonInvalidData, "is not before the lifting's decision"))},
		{Name: "Art18(3) told earlier the same minute is before the lifting: recorded",
			Steps:    restrictedThenLifted(nil, minute, OK(lifting(ptr(minute), minute.Add(59*time.Second)))),
			Requests: map[string][]Told{"L": {told("acro", pending, part3, "user.contact.email"), told("police", pending, ukgdpr, "user.contact")}}},
		{Name: "Art18(3) a refused lifting leaves the restriction in force: told in time, it is lifted",
			Steps: with(OK(Restriction("r", "RS", a1, "user.contact")), Refused(lifting(nil, minute), ledger.ReasonInvalidData, "Art. 18(3)"),
				OK(LiftingTold("l2", "L2", "RS", a1, ptr(minute.Add(-time.Hour)), minute)))},

		// Item 4: DPA 2018 s.47(2); UK GDPR Art. 17(3)(b),(e).
		{Name: "s.47(2) an erasure under a hold on the person restricts instead of erasing",
			Steps:       with(OK(holdA1), OK(erasureR)),
			Obligations: map[string]Obl{acroR: restrict("H"), policeR: restrict("H"), cloudR: restrict("H")}},
		{Name: "Art17(3)(b) a hold on a category restricts only the recipients of that category",
			Steps:       with(OK(Hold("h", "H", &ledger.HoldScope{Categories: []string{"user.health_and_medical"}})), OK(erasureR)),
			Obligations: map[string]Obl{cloudR: restrict("H"), acroR: erase(""), policeR: erase("")}},
		{Name: "Art17(3)(e) a hold on a purpose none of the disclosures has changes nothing",
			Steps:       with(OK(Hold("h", "H", &ledger.HoldScope{Purpose: "safeguarding.disclosure_check"})), OK(erasureR)),
			Obligations: map[string]Obl{cloudR: erase(""), acroR: erase(""), policeR: erase("")}},
		{Name: "s.47(2) a hold placed after the erasure does not turn it",
			Steps:       with(OK(erasureR), OK(holdA1)),
			Obligations: map[string]Obl{acroR: erase("")}},
		{Name: "s.47(2) the release of the hold lets the erasure proceed: recipients are told to erase",
			Steps:       with(OK(holdA1), OK(erasureR), OK(Release("rel", "H"))),
			Obligations: map[string]Obl{acroR: restrict("H"), after("acro"): erase("H"), after("police"): erase("H"), after("cloud"): erase("H")}},
		{Name: "s.47(2) with two holds the erasure proceeds for each recipient when the last hold over it is released",
			Steps:       with(OK(holdA1), OK(holdContact), OK(erasureR), OK(Release("rel", "H"))),
			Obligations: map[string]Obl{acroR: restrict("H", "H2"), policeR: restrict("H", "H2"), cloudR: restrict("H"), after("cloud"): erase("H")}},
		{Name: "s.47(2) the second release lets the rest proceed",
			Steps:       with(OK(holdA1), OK(holdContact), OK(erasureR), OK(Release("rel", "H")), OK(Release("rel2", "H2"))),
			Obligations: map[string]Obl{after("acro"): erase("H2"), after("police"): erase("H2"), after("cloud"): erase("H")}},
		{Name: "s.47(2) a recipient exempted from the held notice, or not holding the data, is not told to erase",
			Steps: with(OK(holdA1), OK(erasureR), OK(Exemption("x", cloudR, "impossible")), OK(Ack("a", policeR, "police", "not-held")), OK(Ack("a2", acroR, "acro", "done")), OK(Release("rel", "H"))),
			Requests: map[string][]Told{"R": {told("acro", acknowledged, part3, "user.contact.email"), told("cloud", exempted, ukgdpr, "user.health_and_medical"),
				told("police", acknowledged, ukgdpr, "user.contact"), told("acro", pending, part3, "user.contact.email")}},
			Obligations: map[string]Obl{after("acro"): erase("H")}},
		{Name: "s.47(2) a hold does not turn a rectification or a restriction",
			Steps:       with(OK(holdA1), OK(Rectification("rc", &ledger.Rectification{RequestHeader: ledger.RequestHeader{Request: "R", Subject: a1}}))),
			Obligations: map[string]Obl{acroR: {Action: ledger.ActionRectify, State: pending}}},

		// Item 5: UK GDPR Art. 4(9).
		{Name: "Art4(9) a disclosure to a registered inquiry authority is flagged as an inquiry",
			Steps: with(OK(inquiry), OK(Disclosure("d-inq", "inq", a1, part3, "user.name")), OK(uk("d-flag", func(d *ledger.Disclosure) { d.Inquiry = true }))),
			Flags: map[string]Flags{"d-inq": {Inquiry: true}, "d-flag": {Inquiry: true}, "d2": {}}},

		// Item 6: UK GDPR Art. 18(2).
		{Name: "Art18(2) a disclosure of restricted data is recorded and flagged",
			Steps: with(OK(Restriction("r", "RS", a1, "user.contact")),
				OK(at(uk("d-restricted", func(d *ledger.Disclosure) { d.Categories = []string{"user.contact.email"} }), T0.Add(time.Minute))),
				OK(at(uk("d-other", func(d *ledger.Disclosure) { d.Categories = []string{"user.financial"} }), T0.Add(time.Minute))),
				OK(at(uk("d-before", func(d *ledger.Disclosure) { d.Categories = []string{"user.contact.email"} }), T0.Add(-time.Minute))),
				OK(Lifting("l", "L", "RS", a1)),
				OK(at(uk("d-lifted", func(d *ledger.Disclosure) { d.Categories = []string{"user.contact.email"} }), T0.Add(2*time.Hour))),
				OK(at(uk("d-in-force", func(d *ledger.Disclosure) { d.Categories = []string{"user.contact.phone_number"} }), T0.Add(30*time.Minute)))),
			Flags: map[string]Flags{"d-restricted": {WhileRestricted: true}, "d-other": {}, "d-before": {}, "d-lifted": {}, "d-in-force": {WhileRestricted: true}}},
		{Name: "Art18(2) and Art17 a disclosure after an erasure is flagged as such, not as restricted",
			Steps: with(OK(Erasure("e", "E", a1, "user.contact")), OK(at(uk("d-late", func(d *ledger.Disclosure) { d.Categories = []string{"user.contact.email"} }), T0.Add(time.Minute)))),
			Flags: map[string]Flags{"d-late": {AfterErasure: true}}},

		// Item 7: DPA 2018 s.62.
		{Name: "s.62 a placeholder justification is refused",
			Steps: with(Refused(placeholder("dj", func(d *ledger.Disclosure) { d.Justification = " N/A " }), ledger.ReasonInvalidData, `data.justification: the justification is blank or a placeholder ("N/A")`))},
		{Name: "s.62 a discloser of white space is refused",
			Steps: with(Refused(placeholder("db", func(d *ledger.Disclosure) { d.DisclosedBy = " \t " }), ledger.ReasonInvalidData, "data.disclosedBy: the discloser (disclosedBy) is blank or a placeholder"))},
		{Name: "s.62 a discloser 'unknown' is refused",
			Steps: with(Refused(placeholder("du", func(d *ledger.Disclosure) { d.DisclosedBy = "Unknown" }), ledger.ReasonInvalidData, "DPA 2018 s.62"))},
		{Name: "s.62 a placeholder is refused under UK GDPR too, where the field is optional",
			Steps: with(Refused(uk("dt", func(d *ledger.Disclosure) { d.Justification = "tbc" }), ledger.ReasonInvalidData, "placeholder"), OK(uk("dn", func(d *ledger.Disclosure) {})))},
		{Name: "s.62 a real justification and discloser are recorded",
			Steps: with(OK(placeholder("dok", func(d *ledger.Disclosure) {
				d.Justification, d.DisclosedBy = "n/a is not what we say: court order 12/2026", "PC 123"
			})))},

		// Item 8: UK GDPR Art. 28(3)(a),(g) against Art. 19.
		{Name: "Art28(3)(a) a notice to a processor is the controller's instruction; to a controller it is not",
			Steps:       with(OK(processor), OK(Disclosure("dp", "proc", a1, ukgdpr, "user.name")), OK(erasureR)),
			Obligations: map[string]Obl{procR: {Action: ledger.ActionErase, State: pending, Instruction: true}, policeR: {Action: ledger.ActionErase, State: pending}}},
		{Name: "Art28(3)(a) a processor that refuses leaves the instruction open and escalated",
			Steps: with(OK(processor), OK(Disclosure("dp", "proc", a1, ukgdpr, "user.name")), OK(erasureR),
				OK(Ack("a", procR, "proc", "refused")), OK(Ack("a2", policeR, "police", "refused"))),
			Obligations: map[string]Obl{procR: {Action: ledger.ActionErase, State: pending, Instruction: true, Escalated: true}, policeR: {Action: ledger.ActionErase, State: acknowledged}}},
		{Name: "Art28(3)(g) an escalated instruction is closed when the processor carries it out",
			Steps: with(OK(processor), OK(Disclosure("dp", "proc", a1, ukgdpr, "user.name")), OK(erasureR),
				OK(Ack("a", procR, "proc", "refused")), OK(Ack("a2", procR, "proc", "done")),
				Refused(Ack("a3", procR, "proc", "refused"), ledger.ReasonConflict, "already closed")),
			Obligations: map[string]Obl{procR: {Action: ledger.ActionErase, State: acknowledged, Instruction: true, Escalated: true}}},
		{Name: "Art28(3)(a) the lifting of a processor's restriction is an instruction too",
			Steps:       with(OK(processor), OK(Disclosure("dp", "proc", a1, ukgdpr, "user.name")), OK(Restriction("r", "RS", a1)), OK(Lifting("l", "L", "RS", a1))),
			Obligations: map[string]Obl{ledger.NoticeID("L", "proc"): {Action: ledger.ActionLiftRestriction, State: pending, Instruction: true}}},

		// Item 9: DPA 2018 s.48(7).
		{Name: "s.48(7) a rectification is notified to the competent authority the data came from",
			Steps:       with(OK(origin), OK(fromOrigin), OK(rectify("user.contact"))),
			Requests:    map[string][]Told{"R": {told("acro", pending, part3, "user.contact.email"), told("origin", pending, part3, "user.contact.email"), told("police", pending, ukgdpr, "user.contact", "user.contact.email")}},
			Obligations: map[string]Obl{ledger.NoticeID("R", "origin"): {Action: ledger.ActionRectify, State: pending, Originator: true}, policeR: {Action: ledger.ActionRectify, State: pending}}},
		{Name: "s.48(7) the originator is told only of the categories that came from it",
			Steps:    with(OK(origin), OK(fromOrigin), OK(rectify("user.health_and_medical"))),
			Requests: map[string][]Told{"R": {told("cloud", pending, ukgdpr, "user.health_and_medical")}}},
		{Name: "s.48(7) applies to rectification: an erasure is not sent to the originator",
			Steps:    with(OK(origin), OK(fromOrigin), OK(Erasure("e", "R", a1, "user.contact.email"))),
			Requests: map[string][]Told{"R": {told("acro", pending, part3, "user.contact.email"), told("police", pending, ukgdpr, "user.contact.email")}}},
		{Name: "s.48(7) receivedFrom must be registered",
			Steps: with(Refused(fromOrigin, ledger.ReasonUnknownRecipient, `receivedFrom "origin" is not registered`))},
		{Name: "s.48(7) receivedFrom must be a competent authority",
			Steps: with(Refused(With(fromOrigin, func(d *ledger.Disclosure) { d.ReceivedFrom = "cloud" }), ledger.ReasonInvalidData, `receivedFrom "cloud" is registered as a controller, not a competent authority`))},
	}
}
