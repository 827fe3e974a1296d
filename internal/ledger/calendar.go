package ledger

import (
	"fmt"
	"time"
)

// DefaultTimeZone is the controller's time zone when the policy names none.
const DefaultTimeZone = "Europe/London"

// Calendar is the DPO's calendar: the controller's time zone, in which a
// due date ends, and the days that are not working days. It is data: the
// policy loads the time zone and a list of bank holidays (schemas/vocab)
// and hands them to the rules here.
//
// The zero Calendar counts in UTC and rolls nothing.
type Calendar struct {
	// Location is the controller's time zone; nil means UTC.
	Location *time.Location
	// RollToWorkingDay moves a due date that falls on a Saturday, a Sunday
	// or one of Holidays to the next working day (the ICO's reading of
	// "one month" for a period ending on a non-working day).
	RollToWorkingDay bool
	// Holidays are the bank holidays of the controller's part of the UK,
	// as dates (time.DateOnly) in Location.
	Holidays map[string]string
}

func (c Calendar) loc() *time.Location {
	if c.Location == nil {
		return time.UTC
	}
	return c.Location
}

// Date returns the calendar date of t in the controller's time zone, at
// midnight there.
func (c Calendar) Date(t time.Time) time.Time {
	y, m, d := t.In(c.loc()).Date()
	return time.Date(y, m, d, 0, 0, 0, 0, c.loc())
}

// WorkingDay reports whether the date of t (in the controller's time
// zone) is a working day: neither a weekend nor a bank holiday.
func (c Calendar) WorkingDay(t time.Time) bool {
	d := c.Date(t)
	if wd := d.Weekday(); wd == time.Saturday || wd == time.Sunday {
		return false
	}
	_, holiday := c.Holidays[d.Format(time.DateOnly)]
	return !holiday
}

// EndOfDay returns the last instant of the day of date (a midnight from
// Date) in the controller's time zone: the moment a due date expires.
func (c Calendar) EndOfDay(date time.Time) time.Time {
	y, m, d := date.Date()
	return time.Date(y, m, d+1, 0, 0, 0, 0, c.loc()).Add(-time.Nanosecond)
}

// DueBy returns when a period that ends on the date of t is over: the end
// of that day in the controller's time zone, rolled to the end of the next
// working day when the policy says so. The result is in UTC.
func (c Calendar) DueBy(t time.Time) time.Time {
	d := c.Date(t)
	if c.RollToWorkingDay {
		for i := 0; i < 31 && !c.WorkingDay(d); i++ {
			y, m, dd := d.Date()
			d = time.Date(y, m, dd+1, 0, 0, 0, 0, c.loc())
		}
	}
	return c.EndOfDay(d).UTC()
}

// Validate reports a holiday that is not a date.
func (c Calendar) Validate() error {
	for d := range c.Holidays {
		if _, err := time.Parse(time.DateOnly, d); err != nil {
			return fmt.Errorf("calendar: bank holiday %q is not a date (YYYY-MM-DD)", d)
		}
	}
	return nil
}
