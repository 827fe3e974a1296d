package ledger

import (
	"fmt"
	"testing"
	"time"
)

func day(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 10, 0, 0, 0, time.UTC) }

// TestAddMonths: UK GDPR Art. 12(3) gives "one month"; a calendar month
// from a day that the next month lacks ends on that month's last day
// (the corresponding-date rule; Dodds v Walker [1981]). Leap years follow
// the Gregorian calendar.
func TestAddMonths(t *testing.T) {
	tests := []struct {
		name   string
		from   time.Time
		months int
		want   time.Time
	}{
		{"Art12(3) 31 Jan + 1 month is the end of February", day(2025, 1, 31), 1, day(2025, 2, 28)},
		{"Art12(3) leap year: 31 Jan + 1 month is 29 Feb", day(2024, 1, 31), 1, day(2024, 2, 29)},
		{"Art12(3) leap year: 30 Jan + 1 month", day(2024, 1, 30), 1, day(2024, 2, 29)},
		{"Art12(3) year divisible by 400 is leap", day(2000, 1, 31), 1, day(2000, 2, 29)},
		{"Art12(3) year divisible by 100 is not leap", day(2100, 1, 31), 1, day(2100, 2, 28)},
		{"Art12(3) 28 Jan + 1 month", day(2025, 1, 28), 1, day(2025, 2, 28)},
		{"Art12(3) mid-month keeps the day", day(2025, 1, 15), 1, day(2025, 2, 15)},
		{"Art12(3) 31 Mar + 1 month is 30 Apr", day(2025, 3, 31), 1, day(2025, 4, 30)},
		{"Art12(3) 31 Aug + 1 month is 30 Sep", day(2025, 8, 31), 1, day(2025, 9, 30)},
		{"Art12(3) across the year boundary", day(2025, 12, 31), 1, day(2026, 1, 31)},
		{"Art12(3) extension: two further months", day(2025, 12, 31), 2, day(2026, 2, 28)},
		{"29 Feb + 12 months is 28 Feb", day(2024, 2, 29), 12, day(2025, 2, 28)},
		{"28 Feb + 1 month is 28 Mar, not the month's end", day(2025, 2, 28), 1, day(2025, 3, 28)},
		{"Art12(3) three months", day(2025, 5, 31), 3, day(2025, 8, 31)},
		{"zero months", day(2025, 5, 10), 0, day(2025, 5, 10)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := AddMonths(tt.from, tt.months); !got.Equal(tt.want) {
				t.Errorf("AddMonths(%s, %d) = %s, want %s", tt.from.Format(time.DateOnly), tt.months, got, tt.want)
			}
		})
	}
}

// TestDue: notices are due one calendar month after the decision unless the
// policy says otherwise per regime; a recipient's SLA can only shorten it
// (Art. 12(3): an agreement never stretches the controller's time).
func TestDue(t *testing.T) {
	policy := Deadlines{Regimes: map[string]Deadline{RegimeDPAPart3: {Days: 14}, RegimeEUGDPR: {Months: 2}}}
	tests := []struct {
		name   string
		d      Deadlines
		regime string
		sla    int
		want   time.Time
	}{
		{"Art12(3) default: one calendar month", Deadlines{}, "", 0, day(2025, 2, 28)},
		{"default of 10 days", Deadlines{Default: Deadline{Days: 10}}, "", 0, day(2025, 2, 10)},
		{"DPA s.48 policy for Part 3: 14 days", policy, RegimeDPAPart3, 0, day(2025, 2, 14)},
		{"EU GDPR policy: 2 months", policy, RegimeEUGDPR, 0, day(2025, 3, 31)},
		{"regime without an entry takes the default", policy, RegimeUKGDPR, 0, day(2025, 2, 28)},
		{"Art12(3) recipient SLA shortens", Deadlines{}, "", 7, day(2025, 2, 7)},
		{"Art12(3) recipient SLA never stretches", Deadlines{}, "", 90, day(2025, 2, 28)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.d.Due(day(2025, 1, 31), tt.regime, tt.sla); !got.Equal(tt.want) {
				t.Errorf("Due = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestDeadlinesValidate(t *testing.T) {
	tests := []struct {
		d    Deadlines
		want string
	}{
		{Deadlines{}, ""},
		{Deadlines{Default: Deadline{Months: 2}, Regimes: map[string]Deadline{"dpa-part3": {Days: 14}}}, ""},
		{Deadlines{Default: Deadline{Months: -1}}, "deadlines: default: months and days must not be negative"},
		{Deadlines{Regimes: map[string]Deadline{"ccpa": {Days: 1}}}, `deadlines: unknown regime "ccpa" (uk-gdpr, eu-gdpr, dpa-part3, dpa-part4)`},
		{Deadlines{Regimes: map[string]Deadline{"uk-gdpr": {}}}, "deadlines: uk-gdpr: give months or days"},
		{Deadlines{Default: Deadline{Months: 37}}, "deadlines: default: at most 36 months and 1100 days"},
	}
	for _, tt := range tests {
		err := tt.d.Validate()
		if got := fmt.Sprint(err); (err == nil && tt.want != "") || (err != nil && got != tt.want) {
			t.Errorf("Validate(%+v) = %v, want %q", tt.d, err, tt.want)
		}
	}
}
