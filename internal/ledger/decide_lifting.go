package ledger

import (
	"cmp"
	"fmt"
	"time"
)

// This file holds the rules of lifting a restriction: the person told first
// (UK GDPR Art. 18(3)), and who is told of the lifting (Art. 19).

// InformedBeforeLifting is UK GDPR Art. 18(3): a data subject who obtained
// a restriction is informed before it is lifted. A lifting must say when
// (subjectInformedAt), and that must be strictly before the lifting's
// decision, compared to the nanosecond as both were sent: being told at
// 10:00:00 of a lifting decided at 10:00:59 the same minute is before it;
// being told at the very instant of the decision is not. It returns an
// *InvalidError naming the provision, or nil.
func InformedBeforeLifting(d *RestrictionLifted) error {
	switch {
	case d.SubjectInformedAt == nil:
		return Invalid(ReasonInvalidData, "data.subjectInformedAt",
			"UK GDPR Art. 18(3): the person must be informed before a restriction is lifted; the lifting does not say when they were (subjectInformedAt)")
	case !d.SubjectInformedAt.Before(d.DecidedAt):
		return Invalid(ReasonInvalidData, "data.subjectInformedAt",
			"UK GDPR Art. 18(3): the person must be informed before a restriction is lifted; subjectInformedAt %s is not before the lifting's decision at %s",
			d.SubjectInformedAt.UTC().Format(time.RFC3339Nano), d.DecidedAt.UTC().Format(time.RFC3339Nano))
	}
	return nil
}

// decideLifting plans the lifting of a restriction: one obligation to each
// recipient that was to be told of the restriction, with the same categories
// and disclosures, except recipients exempted from it (they were never told).
func decideLifting(st State, eff *RequestEffect, d *RestrictionLifted, at time.Time, deadlines Deadlines) error {
	restr, err := st.Request(d.Restriction)
	if err != nil {
		return err
	}
	switch {
	case restr == nil:
		return Invalid(ReasonUnknownRequest, "data.restriction", "restriction %q is not in the ledger", d.Restriction)
	case restr.Type != TypeRestriction:
		return Invalid(ReasonUnknownRequest, "data.restriction", "request %q is a %s, not a restriction", d.Restriction, restr.Type)
	case restr.LiftedBy != "":
		return Invalid(ReasonConflict, "data.restriction", "restriction %q was already lifted by request %q", d.Restriction, restr.LiftedBy)
	case string(restr.Subject) != string(eff.Record.Subject):
		return Invalid(ReasonConflict, "data.subject", "the subject is not the subject of restriction %q", d.Restriction)
	}
	if err := InformedBeforeLifting(d); err != nil {
		return err
	}
	informed := d.SubjectInformedAt.UTC()
	eff.Record.SubjectInformedAt = &informed
	eff.Record.Categories = restr.Categories
	eff.Record.Regime = restr.Regime
	lifted := *restr
	lifted.LiftedBy = eff.Record.Request
	eff.Lifted = &lifted
	for _, n := range restr.Notices {
		ro, err := st.Obligation(n)
		if err != nil {
			return err
		}
		if ro == nil {
			return fmt.Errorf("ledger: restriction %q names notice %q, which is missing", restr.Request, n)
		}
		if ro.State == StateExempted {
			continue
		}
		rcp, _ := st.Recipient(ro.Recipient)
		o := Obligation{
			Notice:      NoticeID(eff.Record.Request, ro.Recipient),
			Request:     eff.Record.Request,
			Action:      eff.Record.Action,
			Recipient:   ro.Recipient,
			Channel:     cmp.Or(rcp.Channel.Type, ro.Channel),
			Regime:      ro.Regime,
			Categories:  ro.Categories,
			Disclosures: ro.Disclosures,
			OpenedAt:    at,
			Due:         deadlines.Due(eff.Record.DecidedAt, ro.Regime, rcp.SLADays),
			State:       StatePending,
			Instruction: rcp.Role == RoleProcessor,
		}
		eff.Obligations = append(eff.Obligations, o)
		eff.Notices = append(eff.Notices, Notice{
			Notice: o.Notice, Action: o.Action, Request: o.Request, Subject: d.Subject,
			Categories: o.Categories, Disclosures: o.Disclosures, Due: o.Due, Instruction: o.Instruction,
		})
	}
	return nil
}

// restrictedAt reports whether restriction rec was in force at t: decided
// at or before t and not lifted by a lifting decided at or before t.
func restrictedAt(st State, rec *RequestRecord, t time.Time) (bool, error) {
	if rec.DecidedAt.After(t) {
		return false, nil
	}
	if rec.LiftedBy == "" {
		return true, nil
	}
	l, err := st.Request(rec.LiftedBy)
	if err != nil || l == nil {
		return l == nil && err == nil, err
	}
	return l.DecidedAt.After(t), nil
}
