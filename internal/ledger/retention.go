package ledger

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// RetentionRule keeps the disclosures made for Purpose (under Regime, or
// any regime when empty) for Months then Days after DisclosedAt, like the
// DBS notice's three months for general enquiries (UK GDPR Art. 5(1)(e)).
type RetentionRule struct {
	Purpose string `json:"purpose" yaml:"purpose"`
	Regime  string `json:"regime,omitempty" yaml:"regime"`
	Months  int    `json:"months,omitempty" yaml:"months"`
	Days    int    `json:"days,omitempty" yaml:"days"`
}

// Validate reports a rule without a purpose or a period.
func (r RetentionRule) Validate() error {
	switch {
	case r.Purpose == "":
		return errors.New("retention: a rule needs a purpose")
	case r.Months < 0 || r.Days < 0 || r.Months == 0 && r.Days == 0:
		return fmt.Errorf("retention: %s: give a positive number of months or days", r.Purpose)
	}
	return nil
}

// ForgetPolicy says when the ledger may forget a subject.
type ForgetPolicy struct {
	// ErasureAfter, when positive, lets the ledger forget the subject of an
	// erasure this long after its decision even while some recipients have
	// not answered. Zero: only once every obligation is closed.
	ErasureAfter time.Duration
	// Retention rules per purpose and regime. A subject expires when every
	// one of its disclosures is past the period of a rule; a disclosure no
	// rule covers is kept.
	Retention []RetentionRule
}

// Rule returns the most specific rule for purpose and regime: one naming
// the regime before one for any regime.
func (p ForgetPolicy) Rule(purpose, regime string) (RetentionRule, bool) {
	var any RetentionRule
	found := false
	for _, r := range p.Retention {
		if r.Purpose != purpose {
			continue
		}
		if r.Regime == regime {
			return r, true
		}
		if r.Regime == "" {
			any, found = r, true
		}
	}
	return any, found
}

// ErasureForgets decides whether an erasure lets the ledger forget its
// subject at now, and why. Only an erasure of all the person's data (no
// categories) forgets them: an erasure of some categories leaves the rest
// of the record (UK GDPR Art. 17(1)). The subject goes once every
// obligation is acknowledged or exempted (ForgetErasureClosed): until then
// the ledger must still be able to tell the recipients who have not
// answered (Art. 19). With p.ErasureAfter set it goes that long after the
// decision whatever the obligations' state (ForgetErasureTimeout).
func (p ForgetPolicy) ErasureForgets(r *RequestRecord, obligations []Obligation, now time.Time) (reason string, ok bool) {
	if r.Type != TypeErasure || len(r.Categories) > 0 || r.ForgottenAt != nil {
		return "", false
	}
	if !slices.ContainsFunc(obligations, func(o Obligation) bool { return o.Open() }) {
		return ForgetErasureClosed, true
	}
	if p.ErasureAfter > 0 && !now.Before(r.DecidedAt.Add(p.ErasureAfter)) {
		return ForgetErasureTimeout, true
	}
	return "", false
}

// Expired reports whether a disclosure made at disclosedAt for purpose
// under regime is past its retention period at now. A disclosure no rule
// covers never expires.
func (p ForgetPolicy) Expired(purpose, regime string, disclosedAt, now time.Time) bool {
	r, ok := p.Rule(purpose, regime)
	return ok && !AddMonths(disclosedAt, r.Months).AddDate(0, 0, r.Days).After(now)
}

// RetentionForgets decides whether a subject's record has expired at now:
// every one of its disclosures is past the retention period of its purpose
// and regime (UK GDPR Art. 5(1)(e)). It returns the last disclosure, whose
// purpose and regime the forgetting names.
func (p ForgetPolicy) RetentionForgets(disclosures []DisclosureSummary, now time.Time) (last DisclosureSummary, ok bool) {
	if len(p.Retention) == 0 || len(disclosures) == 0 {
		return last, false
	}
	for _, d := range disclosures {
		if !p.Expired(d.Purpose, d.Regime, d.DisclosedAt, now) {
			return last, false
		}
		last = d
	}
	return last, true
}
