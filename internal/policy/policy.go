// Package policy reads sharelog's policy file (serve --policy FILE): the
// controller's choices that the law leaves open, such as when notices to
// recipients are due. It is YAML:
//
//	deadlines:
//	  default: {months: 1}        # one calendar month after the decision
//	  regimes:
//	    dpa-part3: {days: 14}     # per regime, months then days
//
//	calendar:
//	  timeZone: Europe/London     # a due date is the end of its day here (the default)
//	  rollToWorkingDay: true      # a due date on a weekend or bank holiday moves to the next working day
//	  bankHolidays: england-and-wales   # or scotland, northern-ireland (schemas/vocab/bank-holidays.yaml)
//
//	retention:
//	  erasureAfter: 2160h         # forget an erased person this long after the decision, answered or not
//	  rules:                      # keep disclosures per purpose (and regime), then forget the person
//	    - {purpose: essential.service, regime: uk-gdpr, months: 3}
//
// A recipient's slaDays (in the recipient registry) can only bring a due
// date forward; see ledger.Deadlines. Retention is ledger.ForgetPolicy: a
// person is forgotten when all of their disclosures are past a rule's
// period (a disclosure no rule covers is kept), unless a legal hold covers
// them; see package retention. Unknown fields are errors, so that a
// misspelt setting is not silently ignored.
package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/sharelog/sharelog/internal/ledger"
	"github.com/sharelog/sharelog/schemas"
	"go.yaml.in/yaml/v3"
)

// MaxFileSize is the largest policy file Load accepts, in bytes.
const MaxFileSize = 1 << 20

// Policy is the content of a policy file. The zero Policy is the default:
// notices due one calendar month after the decision.
type Policy struct {
	Deadlines ledger.Deadlines `yaml:"deadlines"`
	Calendar  Calendar         `yaml:"calendar"`
	Retention Retention        `yaml:"retention"`
}

// Calendar is the policy file's calendar section: the DPO's calendar, by
// which every due date is counted (ledger.Calendar).
type Calendar struct {
	// TimeZone is an IANA zone name; empty means ledger.DefaultTimeZone.
	TimeZone string `yaml:"timeZone"`
	// RollToWorkingDay moves a due date on a weekend or bank holiday to
	// the next working day.
	RollToWorkingDay bool `yaml:"rollToWorkingDay"`
	// BankHolidays names a division of schemas/vocab/bank-holidays.yaml;
	// empty means weekends only.
	BankHolidays string `yaml:"bankHolidays"`
}

// Ledger returns the calendar as the rules take it, with the division's
// bank holidays read from the vocabulary. It names the field and value
// that are wrong.
func (c Calendar) Ledger() (*ledger.Calendar, error) {
	zone := c.TimeZone
	if zone == "" {
		zone = ledger.DefaultTimeZone
	}
	loc, err := time.LoadLocation(zone)
	if err != nil {
		return nil, fmt.Errorf("calendar: timeZone %q: %w", zone, err)
	}
	cal := &ledger.Calendar{Location: loc, RollToWorkingDay: c.RollToWorkingDay}
	if c.BankHolidays != "" {
		hs, err := BankHolidays(schemas.FS, c.BankHolidays)
		if err != nil {
			return nil, err
		}
		cal.Holidays = hs
	}
	return cal, cal.Validate()
}

// LedgerDeadlines returns the deadlines with the calendar they are counted
// by, as ledger.Decide takes them.
func (p *Policy) LedgerDeadlines() (ledger.Deadlines, error) {
	d := p.Deadlines
	cal, err := p.Calendar.Ledger()
	if err != nil {
		return d, err
	}
	d.Calendar = cal
	return d, nil
}

// BankHolidaysFile is the vocabulary of bank holidays in schemas.FS.
const BankHolidaysFile = "vocab/bank-holidays.yaml"

// BankHolidays reads one division's bank holidays (date -> title) from
// the vocabulary file in fsys, naming the divisions when it has no such
// division.
func BankHolidays(fsys fs.FS, division string) (map[string]string, error) {
	b, err := fs.ReadFile(fsys, BankHolidaysFile)
	if err != nil {
		return nil, fmt.Errorf("calendar: %w", err)
	}
	var doc struct {
		Divisions map[string][]struct {
			Date  string `yaml:"date"`
			Title string `yaml:"title"`
		} `yaml:"divisions"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("calendar: %s: %w", BankHolidaysFile, err)
	}
	days, ok := doc.Divisions[division]
	if !ok {
		return nil, fmt.Errorf("calendar: bankHolidays %q is not a division of %s (%s)", division, BankHolidaysFile,
			strings.Join(slices.Sorted(maps.Keys(doc.Divisions)), ", "))
	}
	out := make(map[string]string, len(days))
	for _, d := range days {
		if _, err := time.Parse(time.DateOnly, d.Date); err != nil {
			return nil, fmt.Errorf("calendar: %s: %s: %q is not a date (YYYY-MM-DD)", BankHolidaysFile, division, d.Date)
		}
		out[d.Date] = d.Title
	}
	return out, nil
}

// Retention is the policy file's retention section.
type Retention struct {
	// ErasureAfter, when set, forgets the subject of an erasure this long
	// after its decision even while recipients have not answered.
	ErasureAfter time.Duration          `yaml:"erasureAfter"`
	Rules        []ledger.RetentionRule `yaml:"rules"`
}

// ForgetPolicy returns the retention section as the store's ForgetPolicy.
func (r Retention) ForgetPolicy() ledger.ForgetPolicy {
	return ledger.ForgetPolicy{ErasureAfter: r.ErasureAfter, Retention: r.Rules}
}

// Load reads and checks the policy file at path. An empty path gives the
// default policy, as an empty document does.
func Load(path string) (*Policy, error) {
	if path == "" {
		return Parse(nil)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("policy %s: %w", path, err)
	}
	if len(b) > MaxFileSize {
		return nil, fmt.Errorf("policy %s: larger than %d bytes", path, MaxFileSize)
	}
	p, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("policy %s: %w", path, err)
	}
	return p, nil
}

// Parse decodes and checks a policy document. An empty document is the
// default policy.
func Parse(b []byte) (*Policy, error) {
	var p Policy
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&p); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	if err := p.Deadlines.Validate(); err != nil {
		return nil, err
	}
	if _, err := p.Calendar.Ledger(); err != nil {
		return nil, err
	}
	if p.Retention.ErasureAfter < 0 {
		return nil, errors.New("retention: erasureAfter must not be negative")
	}
	for _, r := range p.Retention.Rules {
		if err := r.Validate(); err != nil {
			return nil, err
		}
	}
	return &p, nil
}
