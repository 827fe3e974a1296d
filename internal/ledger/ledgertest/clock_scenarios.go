package ledgertest

import (
	"time"
	_ "time/tzdata" // the scenarios' calendar is Europe/London's

	"github.com/sharelog/sharelog/internal/ledger"
)

// London is a DPO's calendar: Europe/London, deadlines rolled to the next
// working day past weekends and these bank holidays of England and Wales
// (as the policy loads them from schemas/vocab/bank-holidays.yaml).
func London() ledger.Deadlines {
	loc, err := time.LoadLocation("Europe/London")
	if err != nil {
		panic(err)
	}
	return ledger.Deadlines{Calendar: &ledger.Calendar{Location: loc, RollToWorkingDay: true, Holidays: map[string]string{
		"2026-04-03": "Good Friday", "2026-04-06": "Easter Monday", "2026-05-04": "Early May bank holiday",
	}}}
}

func date(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}

// clockScenarios are the person's clock: receipt, extensions and pauses
// (UK GDPR Art. 12(3) and 12A; DPA 2018 s.54).
func clockScenarios() []Scenario {
	received := date("2026-02-10T16:00:00Z")
	erasure := Received(Erasure("e", "R", a1), received)
	due := date("2026-03-10T23:59:59.999999999Z")
	return []Scenario{
		{Name: "Art12(3) a request received 10 February is answered by the end of 10 March, London time", Deadlines: London(),
			Steps:   with(OK(erasure)),
			Answers: map[string]*Answer{"R": {Due: due, FirstMonthEnds: due}}},
		{Name: "Art12(3) a request that does not say when it arrived has no answer clock", Deadlines: London(),
			Steps: with(OK(erasureR)), Answers: map[string]*Answer{"R": nil}},
		{Name: "Art12(3) received 31 January: due Saturday 28 February, rolled to Monday 2 March, so a decision on 1 March is in time", Deadlines: London(),
			Steps:   with(OK(Received(Restriction("r", "R", a1), date("2026-01-31T10:00:00Z")))),
			Answers: map[string]*Answer{"R": {Due: date("2026-03-02T23:59:59.999999999Z"), FirstMonthEnds: date("2026-03-02T23:59:59.999999999Z")}}},
		{Name: "Art12(3) received 20 January and decided 1 March: decided late", Deadlines: London(),
			Steps:   with(OK(Received(Restriction("r", "R", a1), date("2026-01-20T10:00:00Z")))),
			Answers: map[string]*Answer{"R": {Due: date("2026-02-20T23:59:59.999999999Z"), FirstMonthEnds: date("2026-02-20T23:59:59.999999999Z"), DecidedLate: true}}},
		{Name: "Art12(3) a request cannot be received after it was decided", Deadlines: London(),
			Steps: with(Refused(Received(Erasure("e", "R", a1), T0.Add(time.Hour)), ledger.ReasonInvalidData, "after it was decided"))},
		{Name: "Art12(3) two further months decided within the first month", Deadlines: London(),
			Steps: with(OK(erasure), OK(Extension("x", "R", 2, date("2026-03-05T10:00:00Z")))),
			// 10 May 2026 is a Sunday: rolled to Monday 11th, in BST.
			Answers: map[string]*Answer{"R": {Due: date("2026-05-11T22:59:59.999999999Z"), FirstMonthEnds: due, ExtendedBy: 2}}},
		{Name: "Art12(3) an extension decided after the first month is refused with the date it ended", Deadlines: London(),
			Steps: with(OK(erasure), Refused(Extension("x", "R", 2, date("2026-03-11T00:00:00Z")), ledger.ReasonExtensionRefused,
				"that month ended 2026-03-10T23:59:59Z and the extension was decided 2026-03-11T00:00:00Z")),
			Answers: map[string]*Answer{"R": {Due: due, FirstMonthEnds: due}}},
		{Name: "s.54(3A) an extension names a request in the ledger",
			Steps: with(Refused(Extension("x", "nope", 1, T0), ledger.ReasonUnknownRequest, `request "nope" is not in the ledger`))},
		{Name: "s.54(3A) an extension needs a request that says when it arrived",
			Steps: with(OK(erasureR), Refused(Extension("x", "R", 1, T0), ledger.ReasonConflict, "without receivedAt"))},
		{Name: "Art12A(4) the days waiting for clarification do not count", Deadlines: London(),
			Steps: with(OK(erasure), OK(Paused("p", "R", ledger.PauseClarification, date("2026-02-20T10:00:00Z"))),
				Refused(Paused("p2", "R", ledger.PauseIdentity, date("2026-02-21T10:00:00Z")), ledger.ReasonConflict, "already paused"),
				OK(Resumed("q", "R", date("2026-02-24T10:00:00Z"))),
				Refused(Resumed("q2", "R", date("2026-02-25T10:00:00Z")), ledger.ReasonConflict, "not paused")),
			// Five days (20 to 24 February) added to 10 March: Sunday 15th, rolled to Monday 16th.
			Answers: map[string]*Answer{"R": {Due: date("2026-03-16T23:59:59.999999999Z"), FirstMonthEnds: date("2026-03-16T23:59:59.999999999Z")}}},
		{Name: "s.54(3C) while the controller waits for identity information the clock is stopped", Deadlines: London(),
			Steps:   with(OK(erasure), OK(Paused("p", "R", ledger.PauseIdentity, date("2026-02-11T10:00:00Z")))),
			Answers: map[string]*Answer{"R": {Due: due, FirstMonthEnds: due, Paused: true}}},
	}
}
