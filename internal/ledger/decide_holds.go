package ledger

import (
	"cmp"
	"encoding/hex"
	"fmt"
	"slices"
	"time"
)

// This file holds the rules of legal holds as Decide applies them: placing
// and releasing a hold, an erasure under a hold turned into a restriction
// (DPA 2018 s.47(2); UK GDPR Art. 17(3)(b),(e)), and the erasure proceeding
// when the last hold over it is released.

// holdErasure is DPA 2018 s.47(2) and UK GDPR Art. 17(3)(b),(e): where an
// active legal hold covers the data an erasure's obligation is about (by
// the subject, or by the purpose and categories of one of the disclosures
// told of), the data is kept as evidence and restricted, not erased. The
// obligation and its notice ask the recipient to restrict, the notice
// gives the hold's reason and review date, and each covering hold records
// the request so that its release lets the erasure proceed.
func holdErasure(eff *RequestEffect, o *Obligation, n *Notice, active []HoldRecord, sums []DisclosureSummary) {
	if len(active) == 0 {
		return
	}
	var told []DisclosureSummary
	for _, s := range sums {
		if slices.Contains(o.Disclosures, s.ID) {
			told = append(told, s)
		}
	}
	holds := HoldsCovering(active, hexString(eff.Record.Subject), told)
	if len(holds) == 0 {
		return
	}
	o.Action, o.HeldBy = ActionRestrict, holds
	n.Action = ActionRestrict
	for _, id := range holds {
		i := slices.IndexFunc(eff.Held, func(h HoldRecord) bool { return h.Hold == id })
		if i < 0 {
			j := slices.IndexFunc(active, func(h HoldRecord) bool { return h.Hold == id })
			h := active[j]
			h.Erasures = append(slices.Clone(h.Erasures), eff.Record.Request)
			eff.Held = append(eff.Held, h)
			i = len(eff.Held) - 1
		}
		if n.Hold == nil {
			h := eff.Held[i]
			n.Hold = &NoticeHold{Hold: h.Hold, Reason: h.Reason, ReviewAt: h.ReviewAt}
		}
	}
}

// proceedAfterHold lets the erasures a released hold had turned into
// restrictions proceed (DPA 2018 s.47(2) ends with the need to keep the
// evidence): for each obligation it held that no other active hold still
// holds, an obligation to erase, with a stable notice id derived from the
// request and the recipient, due by the policy from the release. A
// recipient exempted from the held notice, or that answered it not-held,
// is not told again.
func proceedAfterHold(st State, rec *HoldRecord, at time.Time, deadlines Deadlines) (*ProceedEffect, error) {
	pe := &ProceedEffect{}
	for _, id := range rec.Erasures {
		req, err := st.Request(id)
		if err != nil {
			return nil, err
		}
		if req == nil {
			return nil, fmt.Errorf("ledger: hold %q names erasure %q, which is missing", rec.Hold, id)
		}
		if req.ForgottenAt != nil {
			continue
		}
		upd := *req
		upd.Notices = slices.Clone(req.Notices)
		for _, notice := range req.Notices {
			o, err := st.Obligation(notice)
			if err != nil {
				return nil, err
			}
			if o == nil || !slices.Contains(o.HeldBy, rec.Hold) {
				continue
			}
			if o.State == StateExempted || o.Outcome == OutcomeNotHeld {
				continue // never told (Art. 19's exemptions), or holds none of it
			}
			still := false
			for _, other := range o.HeldBy {
				if other == rec.Hold {
					continue
				}
				h, err := st.Hold(other)
				if err != nil {
					return nil, err
				}
				still = still || (h != nil && h.Active())
			}
			if still {
				continue
			}
			rcp, _ := st.Recipient(o.Recipient)
			no := Obligation{
				Notice:      AfterHoldNoticeID(id, o.Recipient),
				Request:     id,
				Action:      ActionErase,
				Recipient:   o.Recipient,
				Channel:     cmp.Or(rcp.Channel.Type, o.Channel),
				Regime:      o.Regime,
				Categories:  o.Categories,
				Disclosures: o.Disclosures,
				OpenedAt:    at,
				Due:         deadlines.Due(at, o.Regime, rcp.SLADays),
				State:       StatePending,
				Instruction: rcp.Role == RoleProcessor,
				AfterHold:   rec.Hold,
			}
			pe.Obligations = append(pe.Obligations, no)
			pe.Notices = append(pe.Notices, ProceedNotice{From: o.Notice, SubjectHash: req.Subject, Notice: Notice{
				Notice: no.Notice, Action: no.Action, Request: id, Categories: no.Categories,
				Disclosures: no.Disclosures, Due: no.Due, Instruction: no.Instruction,
			}})
			upd.Notices = append(upd.Notices, no.Notice)
		}
		if len(upd.Notices) > len(req.Notices) {
			pe.Requests = append(pe.Requests, upd)
		}
	}
	if len(pe.Obligations) == 0 {
		return nil, nil
	}
	return pe, nil
}

// AfterHoldNoticeID is the notice id of the obligation to erase that the
// release of a hold opens for request and recipient: stable, so that a
// replay opens the same notice, and distinct from the held one's.
func AfterHoldNoticeID(request, recipient string) string {
	return NoticeID(request+"\x00after-hold", recipient)
}

// decideHold places a legal hold: a hold id is placed once (ReasonConflict).
func decideHold(st State, d *Hold, at time.Time) (*Plan, error) {
	prior, err := st.Hold(d.Hold)
	if err != nil {
		return nil, err
	}
	if prior != nil {
		return nil, Invalid(ReasonConflict, "data.hold", "hold %q is already recorded (entry %d)", d.Hold, prior.Seq)
	}
	eff := &HoldEffect{Placed: true, Record: HoldRecord{Hold: d.Hold, Reason: d.Reason, PlacedBy: d.PlacedBy, ReviewAt: d.ReviewAt, PlacedAt: at}}
	plan := &Plan{Hold: eff}
	if d.Scope != nil {
		eff.Record.Purpose, eff.Record.Categories = d.Scope.Purpose, slices.Clone(d.Scope.Categories)
		if d.Scope.Subject != nil {
			eff.BySubject = true
			plan.Personal, plan.Names = true, []Subject{*d.Scope.Subject}
		}
	}
	return plan, nil
}

// decideHoldRelease releases a hold: it must be in the ledger
// (ReasonUnknownRequest) and still in place (ReasonConflict).
//
// The erasures the hold turned into restrictions proceed (proceedAfterHold).
func decideHoldRelease(st State, d *HoldReleased, at time.Time, deadlines Deadlines) (*Plan, error) {
	rec, err := st.Hold(d.Hold)
	if err != nil {
		return nil, err
	}
	switch {
	case rec == nil:
		return nil, Invalid(ReasonUnknownRequest, "data.hold", "hold %q is not in the ledger", d.Hold)
	case !rec.Active():
		return nil, Invalid(ReasonConflict, "data.hold", "hold %q was already released", d.Hold)
	}
	rec.ReleasedAt = &at
	plan := &Plan{Hold: &HoldEffect{Record: *rec}}
	if plan.Proceed, err = proceedAfterHold(st, rec, at, deadlines); err != nil {
		return nil, err
	}
	if rec.SubjectHash != "" {
		h, _ := hex.DecodeString(rec.SubjectHash)
		plan.Personal = true
		if plan.NamedHashes, err = knownHash(st, h); err != nil {
			return nil, err
		}
	}
	return plan, nil
}
