package policy

import (
	"strings"
	"testing"
	"time"
	_ "time/tzdata"

	"github.com/sharelog/sharelog/schemas"
)

// TestCalendar: the policy's calendar section, with the bank holidays of
// schemas/vocab/bank-holidays.yaml, gives the due dates a DPO would count
// (UK GDPR Art. 12(3): one month, ending on a working day in the ICO's
// reading).
func TestCalendar(t *testing.T) {
	tests := []struct {
		name, doc string
		received  string
		want      string
		err       string
	}{
		{name: "Art12(3) default: Europe/London, not rolled", doc: "", received: "2024-02-29T10:00:00Z", want: "2024-03-29T23:59:59.999999999Z"},
		{name: "Art12(3) England and Wales: past Good Friday and Easter Monday", doc: "calendar: {rollToWorkingDay: true, bankHolidays: england-and-wales}",
			received: "2024-02-29T10:00:00Z", want: "2024-04-02T22:59:59.999999999Z"},
		{name: "Art12(3) Scotland: past Good Friday only", doc: "calendar: {rollToWorkingDay: true, bankHolidays: scotland}",
			received: "2024-02-29T10:00:00Z", want: "2024-04-01T22:59:59.999999999Z"},
		{name: "Art12(3) Northern Ireland: St Patrick's Day", doc: "calendar: {rollToWorkingDay: true, bankHolidays: northern-ireland}",
			received: "2027-02-17T10:00:00Z", want: "2027-03-18T23:59:59.999999999Z"},
		{name: "Art12(3) Scotland: St Andrew's Day 2026", doc: "calendar: {rollToWorkingDay: true, bankHolidays: scotland}",
			received: "2026-10-30T10:00:00Z", want: "2026-12-01T23:59:59.999999999Z"},
		{name: "Art12(3) another time zone", doc: "calendar: {timeZone: America/New_York}", received: "2026-01-15T10:00:00Z", want: "2026-02-16T04:59:59.999999999Z"},
		{name: "an unknown division", doc: "calendar: {bankHolidays: wales}", err: `bankHolidays "wales" is not a division of vocab/bank-holidays.yaml (england-and-wales, northern-ireland, scotland)`},
		{name: "an unknown time zone", doc: "calendar: {timeZone: Europe/Londres}", err: `calendar: timeZone "Europe/Londres"`},
		{name: "a misspelt setting", doc: "calendar: {rollToWorkday: true}", err: "field rollToWorkday not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Parse([]byte(tt.doc))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error = %v, want one containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			d, err := p.LedgerDeadlines()
			if err != nil {
				t.Fatal(err)
			}
			received, _ := time.Parse(time.RFC3339, tt.received)
			// The recipients' default: one month from the decision, by the same calendar.
			if got := d.Due(received, "", 0); got.Format(time.RFC3339Nano) != tt.want {
				t.Errorf("due %s, want %s", got.Format(time.RFC3339Nano), tt.want)
			}
		})
	}
}

// TestBankHolidaysFile: every division's dates are dates and none falls on
// a weekend (a substitute day is listed instead).
func TestBankHolidaysFile(t *testing.T) {
	for _, div := range []string{"england-and-wales", "scotland", "northern-ireland"} {
		hs, err := BankHolidays(schemas.FS, div)
		if err != nil {
			t.Fatal(err)
		}
		if len(hs) < 30 {
			t.Errorf("%s: %d bank holidays, want the years 2024 to 2027", div, len(hs))
		}
		for d, title := range hs {
			day, _ := time.Parse(time.DateOnly, d)
			if wd := day.Weekday(); wd == time.Saturday || wd == time.Sunday {
				t.Errorf("%s: %s (%s) is a %s", div, d, title, wd)
			}
		}
	}
}

// TestExamplePolicy: the example policy in deploy/ loads, with its calendar.
func TestExamplePolicy(t *testing.T) {
	p, err := Load("../../deploy/policy.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	d, err := p.LedgerDeadlines()
	if err != nil {
		t.Fatal(err)
	}
	if c := d.Calendar; c == nil || c.Location.String() != "Europe/London" || !c.RollToWorkingDay || c.Holidays["2026-12-28"] == "" {
		t.Errorf("calendar = %+v, want Europe/London rolled past England and Wales' bank holidays", c)
	}
}
