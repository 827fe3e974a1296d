package ledger

import (
	"fmt"
	"strings"
	"time"
)

// Deadline is a period after a request's decision: whole calendar months,
// then days. A month after 31 January is the last day of February.
type Deadline struct {
	Months int `json:"months,omitempty" yaml:"months"`
	Days   int `json:"days,omitempty" yaml:"days"`
}

// Deadlines says when each obligation to tell a recipient is due.
//
// An obligation is due Default after its request's decision (one calendar
// month when Default is zero), or Regimes[regime] when its regime has an
// entry. A recipient's SLADays, when set, can only bring the due date
// forward: the obligation is due at the earlier of the two. An agreement
// with a recipient never stretches the time the controller has under the
// law (UK GDPR Art. 12(3)).
//
// The due date is computed once, when the request is applied, and kept: a
// later change of configuration does not move the deadlines of requests
// already recorded.
type Deadlines struct {
	Default Deadline            `json:"default" yaml:"default"`
	Regimes map[string]Deadline `json:"regimes,omitempty" yaml:"regimes"`
	// Calendar, when set, makes every due date the end of its day in the
	// controller's time zone, rolled to a working day when it says so
	// (calendar.go). The policy always sets it (Europe/London by
	// default); without it a notice is due at the very instant a period
	// after the decision ends, and the person's clock counts in UTC.
	Calendar *Calendar `json:"-" yaml:"-"`
}

func (d Deadlines) calendar() Calendar {
	if d.Calendar == nil {
		return Calendar{}
	}
	return *d.Calendar
}

// Validate reports a deadline that is negative, zero or absurdly long,
// naming the regime.
func (d Deadlines) Validate() error {
	check := func(name string, p Deadline) error {
		if p.Months < 0 || p.Days < 0 {
			return fmt.Errorf("deadlines: %s: months and days must not be negative", name)
		}
		if p.Months > 36 || p.Days > 1100 {
			return fmt.Errorf("deadlines: %s: at most 36 months and 1100 days", name)
		}
		if p.Months == 0 && p.Days == 0 && name != "default" {
			return fmt.Errorf("deadlines: %s: give months or days", name)
		}
		return nil
	}
	if err := check("default", d.Default); err != nil {
		return err
	}
	for regime, p := range d.Regimes {
		if !ValidRegime(regime) {
			return fmt.Errorf("deadlines: unknown regime %q (%s)", regime, strings.Join(AllRegimes, ", "))
		}
		if err := check(regime, p); err != nil {
			return err
		}
	}
	return nil
}

// Due returns when an obligation under regime to a recipient with the given
// SLA (days, 0 for none) is due, for a request decided at decidedAt.
func (d Deadlines) Due(decidedAt time.Time, regime string, slaDays int) time.Time {
	p, ok := d.Regimes[regime]
	if !ok {
		p = d.Default
	}
	if p.Months == 0 && p.Days == 0 {
		p.Months = 1
	}
	if d.Calendar != nil {
		decidedAt = decidedAt.In(d.Calendar.loc()) // count from the decision's date where the controller is
	}
	due := AddMonths(decidedAt, p.Months).AddDate(0, 0, p.Days)
	if slaDays > 0 {
		if sla := decidedAt.AddDate(0, 0, slaDays); sla.Before(due) {
			due = sla
		}
	}
	if d.Calendar != nil {
		return d.Calendar.DueBy(due)
	}
	return due.UTC()
}

// AddMonths adds n calendar months to t, clamping the day to the last day of
// the resulting month: 31 January plus one month is 28 (or 29) February.
// The time of day is kept.
func AddMonths(t time.Time, n int) time.Time {
	y, m, d := t.Date()
	first := time.Date(y, m+time.Month(n), 1, 0, 0, 0, 0, t.Location())
	last := first.AddDate(0, 1, -1).Day()
	d = min(d, last)
	return time.Date(first.Year(), first.Month(), d, t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), t.Location())
}
