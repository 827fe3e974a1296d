package ledger

import (
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // Europe/London on any machine
)

// Bank holidays as the policy loads them from schemas/vocab/bank-holidays.yaml
// (the dates the cases below need).
var (
	englandWales = map[string]string{
		"2024-03-29": "Good Friday", "2024-04-01": "Easter Monday", "2026-04-03": "Good Friday",
		"2026-04-06": "Easter Monday", "2026-12-25": "Christmas Day", "2026-12-28": "Boxing Day (substitute day)",
		"2027-01-01": "New Year's Day",
	}
	scotland = map[string]string{
		"2024-03-29": "Good Friday", "2026-08-03": "Summer bank holiday", "2026-12-25": "Christmas Day",
		"2026-12-28": "Boxing Day (substitute day)",
	}
)

func london(t *testing.T, roll bool, holidays map[string]string) Calendar {
	t.Helper()
	loc, err := time.LoadLocation("Europe/London")
	if err != nil {
		t.Fatal(err)
	}
	return Calendar{Location: loc, RollToWorkingDay: roll, Holidays: holidays}
}

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}

// TestAnswerDue: the month to answer the person runs from receipt (UK GDPR
// Art. 12(3); DPA 2018 s.54(3)) and ends at the end of the corresponding
// day in the controller's time zone; the policy may roll a deadline on a
// weekend or bank holiday to the next working day (the ICO's reading).
func TestAnswerDue(t *testing.T) {
	const eod = "T23:59:59.999999999Z"    // the end of a day in London in winter (GMT)
	const eodBST = "T22:59:59.999999999Z" // ... and in summer (BST)
	tests := []struct {
		name     string
		cal      Calendar
		received string
		want     string
	}{
		{"Art12(3) 31 January: the month ends on 28 February", london(t, false, nil), "2025-01-31T10:00:00Z", "2025-02-28" + eod},
		{"Art12(3) 29 January in a leap year: 29 February", london(t, false, nil), "2024-01-29T10:00:00Z", "2024-02-29" + eod},
		{"Art12(3) 31 January in a leap year: 29 February", london(t, false, nil), "2024-01-31T10:00:00Z", "2024-02-29" + eod},
		{"Art12(3) 29 February: 29 March, Good Friday, not rolled", london(t, false, englandWales), "2024-02-29T10:00:00Z", "2024-03-29" + eod},
		{"Art12(3) 29 February rolled past Good Friday, the weekend and Easter Monday (England and Wales)", london(t, true, englandWales), "2024-02-29T10:00:00Z", "2024-04-02" + eodBST},
		{"Art12(3) 29 February rolled past Good Friday and the weekend only (Scotland has no Easter Monday)", london(t, true, scotland), "2024-02-29T10:00:00Z", "2024-04-01" + eodBST},
		{"Art12(3) a due date in summer ends at midnight in London, 23:00 UTC", london(t, false, nil), "2026-09-15T08:00:00Z", "2026-10-15" + eodBST},
		{"Art12(3) received 23:30 UTC on 30 June is 1 July in London", london(t, false, nil), "2026-06-30T23:30:00Z", "2026-08-01" + eodBST},
		{"Art12(3) ... and counted in UTC without a time zone", Calendar{}, "2026-06-30T23:30:00Z", "2026-07-30" + eod},
		{"Art12(3) received on a bank holiday: the month still runs from that day", london(t, true, englandWales), "2026-12-25T09:00:00Z", "2027-01-25" + eod},
		{"Art12(3) received on a substitute bank holiday", london(t, true, englandWales), "2026-12-28T09:00:00Z", "2027-01-28" + eod},
		{"Art12(3) due on Saturday 26 December rolled past Monday 28th, a substitute bank holiday", london(t, true, englandWales), "2026-11-26T09:00:00Z", "2026-12-29" + eod},
		{"Art12(3) due on Saturday 1 August rolled to Monday 3rd in England", london(t, true, englandWales), "2026-06-30T23:30:00Z", "2026-08-03" + eodBST},
		{"Art12(3) ... and to Tuesday 4th in Scotland (summer bank holiday)", london(t, true, scotland), "2026-06-30T23:30:00Z", "2026-08-04" + eodBST},
		{"Art12(3) due on New Year's Day rolled to Monday 4 January", london(t, true, englandWales), "2026-12-01T12:00:00Z", "2027-01-04" + eod},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewAnswerClock(utc(tt.received), utc(tt.received), tt.cal)
			if want := utc(tt.want); !c.Due.Equal(want) || !c.FirstMonthEnds.Equal(want) {
				t.Errorf("due %s, first month ends %s, want %s", c.Due.Format(time.RFC3339Nano), c.FirstMonthEnds.Format(time.RFC3339Nano), tt.want)
			}
		})
	}
}

// TestAnswerClock: extensions (Art. 12(3); DPA 2018 s.54(3A)) and the clock
// stopped while the controller waits for the person (Art. 12A; s.54(3B)-(3C)).
func TestAnswerClock(t *testing.T) {
	cal := london(t, true, englandWales)
	noRoll := london(t, false, englandWales)
	ext := func(months int, decided string, informed string) func(*AnswerClock, Calendar) error {
		return func(c *AnswerClock, cal Calendar) error {
			e := &Extension{Request: "R", Months: months, Reason: "complex", DecidedAt: utc(decided)}
			if informed != "" {
				at := utc(informed)
				e.SubjectInformedAt = &at
			}
			return c.Extend("R", e, cal)
		}
	}
	pause := func(reason, asked string) func(*AnswerClock, Calendar) error {
		return func(c *AnswerClock, cal Calendar) error {
			return c.Pause("R", &RequestPaused{Request: "R", Reason: reason, AskedAt: utc(asked)}, cal)
		}
	}
	resume := func(received string) func(*AnswerClock, Calendar) error {
		return func(c *AnswerClock, cal Calendar) error {
			return c.Resume("R", &RequestResumed{Request: "R", ReceivedAt: utc(received)}, cal)
		}
	}
	type step = func(*AnswerClock, Calendar) error
	tests := []struct {
		name       string
		cal        Calendar
		received   string
		steps      []step
		reason     Reason // of the last step's refusal; "" for none
		detail     string
		due        string
		paused     bool
		extendedBy int
	}{
		{name: "Art12(3) two further months, decided on the first month's last day", cal: cal, received: "2025-01-31T10:00:00Z",
			steps: []step{ext(2, "2025-02-28T23:00:00Z", "2025-02-28T23:30:00Z")}, due: "2025-04-30T22:59:59.999999999Z", extendedBy: 2},
		{name: "s.54(3A) one further month", cal: cal, received: "2026-03-02T10:00:00Z",
			steps: []step{ext(1, "2026-03-20T10:00:00Z", "")}, due: "2026-05-04T22:59:59.999999999Z", extendedBy: 1},
		{name: "Art12(3) an extension decided after the first month is refused", cal: cal, received: "2025-01-31T10:00:00Z",
			steps: []step{ext(2, "2025-03-01T00:00:01Z", "")}, reason: ReasonExtensionRefused,
			detail: "within one month of receipt of request \"R\"; that month ended 2025-02-28T23:59:59Z and the extension was decided 2025-03-01T00:00:01Z",
			due:    "2025-02-28T23:59:59.999999999Z"},
		{name: "Art12(3) the person told of the extension after the first month: refused", cal: cal, received: "2025-01-31T10:00:00Z",
			steps: []step{ext(2, "2025-02-20T10:00:00Z", "2025-03-03T09:00:00Z")}, reason: ReasonExtensionRefused,
			detail: "the person must be told of the extension and its reasons within one month", due: "2025-02-28T23:59:59.999999999Z"},
		{name: "Art12(3) the first month ends on the rolled working day: an extension on Easter Monday is in time", cal: cal, received: "2024-02-29T10:00:00Z",
			steps: []step{ext(2, "2024-04-01T12:00:00Z", "")}, due: "2024-05-29T22:59:59.999999999Z", extendedBy: 2},
		{name: "Art12(3) ... and refused without rolling", cal: noRoll, received: "2024-02-29T10:00:00Z",
			steps: []step{ext(2, "2024-04-01T12:00:00Z", "")}, reason: ReasonExtensionRefused, detail: "that month ended 2024-03-29T23:59:59Z",
			due: "2024-03-29T23:59:59.999999999Z"},
		{name: "Art12(3) two further months in all: a second extension is refused", cal: cal, received: "2026-03-02T10:00:00Z",
			steps: []step{ext(1, "2026-03-10T10:00:00Z", ""), ext(1, "2026-03-11T10:00:00Z", "")}, reason: ReasonConflict,
			detail: "already extended by 1 month(s)", due: "2026-05-04T22:59:59.999999999Z", extendedBy: 1},
		{name: "an extension decided before the request arrived is refused", cal: cal, received: "2026-03-02T10:00:00Z",
			steps: []step{ext(1, "2026-03-01T10:00:00Z", "")}, reason: ReasonInvalidData, detail: "before request", due: "2026-04-02T22:59:59.999999999Z"},
		{name: "Art12A(4) clarification: the days from asking to the answer do not count (to Easter Monday, rolled)", cal: cal, received: "2026-03-01T10:00:00Z",
			steps: []step{pause(PauseClarification, "2026-03-05T10:00:00Z"), resume("2026-03-09T16:00:00Z")}, due: "2026-04-07T22:59:59.999999999Z"},
		{name: "s.54(3C) clarification, not rolled: due on Easter Monday", cal: noRoll, received: "2026-03-01T10:00:00Z",
			steps: []step{pause(PauseClarification, "2026-03-05T10:00:00Z"), resume("2026-03-09T16:00:00Z")}, due: "2026-04-06T22:59:59.999999999Z"},
		{name: "Art12A(2)(b) identity: the month begins when the information arrives", cal: cal, received: "2026-03-01T10:00:00Z",
			steps: []step{pause(PauseIdentity, "2026-03-02T10:00:00Z"), resume("2026-03-20T10:00:00Z")}, due: "2026-04-20T22:59:59.999999999Z"},
		{name: "s.54(3C) while the controller waits the clock is stopped", cal: cal, received: "2026-03-01T10:00:00Z",
			steps: []step{pause(PauseClarification, "2026-03-05T10:00:00Z")}, due: "2026-04-01T22:59:59.999999999Z", paused: true},
		{name: "Art12A an extension while the clock is stopped counts the pause to its decision", cal: cal, received: "2026-03-01T10:00:00Z",
			steps: []step{pause(PauseClarification, "2026-03-20T10:00:00Z"), ext(2, "2026-04-05T10:00:00Z", "")}, due: "2026-06-01T22:59:59.999999999Z",
			paused: true, extendedBy: 2},
		{name: "Art12(3) clarification and extension together", cal: cal, received: "2026-03-01T10:00:00Z",
			steps: []step{pause(PauseClarification, "2026-03-05T10:00:00Z"), resume("2026-03-09T16:00:00Z"), ext(2, "2026-03-20T10:00:00Z", "")},
			due:   "2026-06-08T22:59:59.999999999Z", extendedBy: 2},
		{name: "a pause once the deadline has passed cannot revive it", cal: cal, received: "2026-03-01T10:00:00Z",
			steps: []step{pause(PauseClarification, "2026-04-02T10:00:00Z")}, reason: ReasonConflict, detail: "a pause cannot revive it", due: "2026-04-01T22:59:59.999999999Z"},
		{name: "a pause while paused is refused", cal: cal, received: "2026-03-01T10:00:00Z",
			steps: []step{pause(PauseClarification, "2026-03-05T10:00:00Z"), pause(PauseIdentity, "2026-03-06T10:00:00Z")}, reason: ReasonConflict,
			detail: "already paused", due: "2026-04-01T22:59:59.999999999Z", paused: true},
		{name: "a resumption of a running clock is refused", cal: cal, received: "2026-03-01T10:00:00Z",
			steps: []step{resume("2026-03-09T16:00:00Z")}, reason: ReasonConflict, detail: "is not paused", due: "2026-04-01T22:59:59.999999999Z"},
		{name: "the information cannot arrive before it was asked for", cal: cal, received: "2026-03-01T10:00:00Z",
			steps: []step{pause(PauseClarification, "2026-03-05T10:00:00Z"), resume("2026-03-04T16:00:00Z")}, reason: ReasonInvalidData,
			detail: "arrived before it was asked for", due: "2026-04-01T22:59:59.999999999Z", paused: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewAnswerClock(utc(tt.received), utc(tt.received), tt.cal)
			var err error
			for i, s := range tt.steps {
				if err = s(c, tt.cal); err != nil && i < len(tt.steps)-1 {
					t.Fatalf("step %d: %v", i, err)
				}
			}
			if tt.reason == "" && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if tt.reason != "" {
				ie, ok := err.(*InvalidError)
				if !ok || ie.Reason() != tt.reason || !strings.Contains(ie.Error(), tt.detail) {
					t.Fatalf("error %v, want %s containing %q", err, tt.reason, tt.detail)
				}
			}
			if want := utc(tt.due); !c.Due.Equal(want) {
				t.Errorf("due %s, want %s", c.Due.Format(time.RFC3339Nano), tt.due)
			}
			if c.Paused != tt.paused {
				t.Errorf("paused %v, want %v", c.Paused, tt.paused)
			}
			if got := 0; c.Extension != nil {
				got = c.Extension.Months
				if got != tt.extendedBy {
					t.Errorf("extended by %d, want %d", got, tt.extendedBy)
				}
			} else if tt.extendedBy != 0 {
				t.Errorf("not extended, want %d", tt.extendedBy)
			}
		})
	}
}

// TestAnswerOverdue: overdue once the deadline has passed while the clock
// runs and the action on the request is not complete.
func TestAnswerOverdue(t *testing.T) {
	cal := london(t, false, nil)
	c := NewAnswerClock(utc("2025-01-31T10:00:00Z"), utc("2025-02-02T10:00:00Z"), cal)
	tests := []struct {
		name   string
		now    string
		open   bool
		paused bool
		want   bool
	}{
		{"Art12(3) the last moment of 28 February is in time", "2025-02-28T23:59:59Z", true, false, false},
		{"Art12(3) 1 March, 00:00 in London, is late", "2025-03-01T00:00:00Z", true, false, true},
		{"Art12(3) the action complete: not overdue", "2025-06-01T00:00:00Z", false, false, false},
		{"s.54(3C) the clock stopped: not overdue", "2025-06-01T00:00:00Z", true, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := *c
			c.Paused = tt.paused
			c.SetOverdue(utc(tt.now), tt.open)
			if c.Overdue != tt.want {
				t.Errorf("overdue %v, want %v", c.Overdue, tt.want)
			}
		})
	}
	if c.DecidedLate {
		t.Error("decided in time, but DecidedLate")
	}
	if late := NewAnswerClock(utc("2025-01-31T10:00:00Z"), utc("2025-03-01T10:00:00Z"), cal); !late.DecidedLate {
		t.Error("Art12(3) decided after the month: DecidedLate not set")
	}
}

// TestNoticeDueByCalendar: with a calendar, a recipient's notice is due at
// the end of the day its period ends, in the controller's time zone,
// counted from the decision's date there.
func TestNoticeDueByCalendar(t *testing.T) {
	cal := london(t, true, englandWales)
	d := Deadlines{Calendar: &cal, Regimes: map[string]Deadline{RegimeDPAPart3: {Days: 14}}}
	tests := []struct {
		name, decided, regime string
		sla                   int
		want                  string
	}{
		{"Art19 one month from 31 January: end of 28 February", "2025-01-31T10:00:00Z", "", 0, "2025-02-28T23:59:59.999999999Z"},
		{"s.48 14 days from 20 March 2026 is Good Friday, rolled past Easter Monday", "2026-03-20T10:00:00Z", RegimeDPAPart3, 0, "2026-04-07T22:59:59.999999999Z"},
		{"Art19 decided 23:30 UTC on 30 April is 1 May in London", "2026-04-30T23:30:00Z", "", 0, "2026-06-01T22:59:59.999999999Z"},
		{"Art19 an SLA of 7 days ends on a working day", "2025-01-31T10:00:00Z", "", 7, "2025-02-07T23:59:59.999999999Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := d.Due(utc(tt.decided), tt.regime, tt.sla); !got.Equal(utc(tt.want)) {
				t.Errorf("due %s, want %s", got.Format(time.RFC3339Nano), tt.want)
			}
		})
	}
}

func TestCalendarValidate(t *testing.T) {
	if err := (Calendar{Holidays: map[string]string{"2026-12-25": "Christmas Day"}}).Validate(); err != nil {
		t.Errorf("Validate = %v", err)
	}
	if err := (Calendar{Holidays: map[string]string{"25/12/2026": "Christmas Day"}}).Validate(); err == nil || !strings.Contains(err.Error(), `bank holiday "25/12/2026" is not a date`) {
		t.Errorf("Validate = %v, want the bad date named", err)
	}
}
