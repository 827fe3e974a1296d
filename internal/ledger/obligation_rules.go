package ledger

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"time"
)

// NoticeID returns the notice id of the obligation to tell recipient about
// request: "ntc-" and 20 hex digits of SHA-256(request 0x00 recipient). It is
// stable, so a repeated delivery can be recognised by the recipient, and a
// request replayed after a crash opens the same notice again.
func NoticeID(request, recipient string) string {
	h := sha256.New()
	h.Write([]byte(request))
	h.Write([]byte{0})
	h.Write([]byte(recipient))
	return "ntc-" + hex.EncodeToString(h.Sum(nil))[:20]
}

// RequestActions maps each request type to the notice action it asks of
// recipients. A new request type is added here and in Decide's request
// switch.
var RequestActions = map[string]string{
	TypeRectification:     ActionRectify,
	TypeErasure:           ActionErase,
	TypeRestriction:       ActionRestrict,
	TypeRestrictionLifted: ActionLiftRestriction,
}

// ObligationRegime decides the regime an obligation is under: DPA 2018
// Part 3 if the request, the recipient or any affected disclosure is under
// it, so that s.48 applies; otherwise the request's regime, the
// recipient's, or that of the affected disclosures (the first, sorted).
func ObligationRegime(request, recipient string, disclosures []string) string {
	if request == RegimeDPAPart3 || recipient == RegimeDPAPart3 || slices.Contains(disclosures, RegimeDPAPart3) {
		return RegimeDPAPart3
	}
	if request != "" {
		return request
	}
	if recipient != "" {
		return recipient
	}
	for _, r := range disclosures {
		if r != "" {
			return r
		}
	}
	return ""
}

// Ack outcomes.
const (
	OutcomeDone    = "done"
	OutcomeNotHeld = "not-held"
	OutcomeRefused = "refused"
)

// Acknowledge records a recipient's answer to the obligation's notice. The
// answer must come from the notice's own recipient, as the transport vouches
// (from; ReasonWrongRecipient), while the obligation is open
// (ReasonConflict). It returns an *InvalidError and leaves o unchanged when
// refused.
func (o *Obligation) Acknowledge(ack *NoticeAck, from string, at time.Time) error {
	if from != o.Recipient {
		who := "no recipient (it did not arrive on sharelog.in.ack.<recipient>)"
		if from != "" {
			who = fmt.Sprintf("recipient %q", from)
		}
		return Invalid(ReasonWrongRecipient, "data.notice",
			"notice %q went to recipient %q; this acknowledgement came from %s", o.Notice, o.Recipient, who)
	}
	if !o.Open() {
		return o.closedError()
	}
	if o.Instruction && ack.Outcome == OutcomeRefused {
		// UK GDPR Art. 28(3)(a),(g): a processor acts on the controller's
		// documented instructions and may not refuse one; the answer is
		// recorded and the obligation stays open, escalated.
		o.Outcome, o.AcknowledgedAt, o.EscalatedAt = ack.Outcome, &at, &at
		o.NextAttemptAt = nil
		return nil
	}
	o.State, o.Outcome, o.AcknowledgedAt = StateAcknowledged, ack.Outcome, &at
	o.NextAttemptAt = nil
	return nil
}

// Exempt records the controller's decision not to tell the recipient, while
// the obligation is open (ReasonConflict). UK GDPR Art. 19 allows it where
// telling is impossible or involves disproportionate effort; DPA 2018 s.48
// (Part 3) has no disproportionate-effort exception, so that reason is
// refused under dpa-part3 (ReasonExemptionRefused).
func (o *Obligation) Exempt(ex *Exemption, at time.Time) error {
	if !o.Open() {
		return o.closedError()
	}
	if ex.Reason == "disproportionate-effort" && o.Regime == RegimeDPAPart3 {
		return Invalid(ReasonExemptionRefused, "data.reason",
			"notice %q is under DPA 2018 Part 3: s.48 requires every recipient to be told and has no disproportionate-effort exception", o.Notice)
	}
	e := *ex
	o.State, o.Exemption, o.ExemptedAt = StateExempted, &e, &at
	o.NextAttemptAt = nil
	return nil
}

// Deliver records one delivery attempt. A delivered or sent notice moves a
// pending obligation to delivered; a failure keeps it pending with the
// time of the next attempt. An attempt on a closed obligation is evidence
// only: it changes nothing and Deliver returns false.
func (o *Obligation) Deliver(d *NoticeDelivery) bool {
	if !o.Open() {
		return false
	}
	at := d.At.UTC()
	o.Attempts++
	o.LastAttemptAt = &at
	if d.Reminder {
		o.Reminders++
	}
	switch d.Outcome {
	case DeliveryDelivered, DeliverySent:
		o.LastError, o.NextAttemptAt = "", nil
		if o.State == StatePending {
			o.State, o.DeliveredAt = StateDelivered, &at
		}
	default:
		o.LastError = d.Error
		o.NextAttemptAt = nil
		if d.NextAttemptAt != nil {
			next := d.NextAttemptAt.UTC()
			o.NextAttemptAt = &next
		}
	}
	return true
}

// Forget blanks what the obligation may say of the person once its subject
// is forgotten: the exemption's justification. The obligation itself stays,
// as evidence that the recipient was told (UK GDPR Art. 5(2)). It reports
// whether anything changed.
func (o *Obligation) Forget() bool {
	if o.Exemption == nil || o.Exemption.Justification == "" {
		return false
	}
	ex := *o.Exemption
	ex.Justification = ""
	o.Exemption = &ex
	return true
}

// SetOverdue derives Overdue from the clock: an open obligation past its due date.
func (o *Obligation) SetOverdue(now time.Time) { o.Overdue = o.Open() && now.After(o.Due) }

// DueForDelivery decides whether the obligation's notice is due for a
// delivery attempt at now (Overdue must be set): never attempted; failed
// with NextAttemptAt at or before now; or, when remindEvery > 0, delivered
// but overdue with no attempt in the last remindEvery (reminder). Manual
// notices are sent by a person and never due here; a pending obligation
// that failed with no NextAttemptAt is not retried.
func (o *Obligation) DueForDelivery(now time.Time, remindEvery time.Duration) (due, reminder bool) {
	if o.Channel == "manual" {
		return false, false
	}
	switch o.State {
	case StatePending:
		if o.Attempts == 0 {
			return true, false
		}
		return o.NextAttemptAt != nil && !o.NextAttemptAt.After(now), false
	case StateDelivered:
		if remindEvery <= 0 || !o.Overdue {
			return false, false
		}
		if o.NextAttemptAt != nil && !o.NextAttemptAt.After(now) {
			return true, true
		}
		return o.LastAttemptAt == nil || !o.LastAttemptAt.After(now.Add(-remindEvery)), true
	}
	return false, false
}

// InManualQueue reports whether a person still has to send the notice: a
// manual-channel obligation not yet marked sent.
func (o *Obligation) InManualQueue() bool { return o.Channel == "manual" && o.State == StatePending }

func (o *Obligation) closedError() error {
	return Invalid(ReasonConflict, "data.notice", "obligation %q is already closed (%s)", o.Notice, o.State)
}
