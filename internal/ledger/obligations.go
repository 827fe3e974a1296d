package ledger

import "time"

// ObligationFilter selects obligations across requests. Zero fields do not
// filter. Overdue keeps only open obligations past their due date or whose
// request's deadline for answering the person has passed (AnswerOverdue);
// State is one of the obligation states. Results come in (Due, Notice)
// order, at most Limit (DefaultLimit when 0, MaxLimit at most).
type ObligationFilter struct {
	Overdue   bool   `json:"overdue,omitempty"`
	Recipient string `json:"recipient,omitempty"`
	State     string `json:"state,omitempty"`
	Limit     int    `json:"limit,omitempty"`
}

// ObligationList is the answer to an ObligationFilter. More is true when
// further obligations matched beyond the limit.
type ObligationList struct {
	Obligations []Obligation `json:"obligations"`
	More        bool         `json:"more,omitempty"`
}

// SubjectReport tells a data subject about the rectifications, erasures and
// restrictions of their data and which recipients were told of each, and
// when (UK GDPR Art. 19, second sentence). It names no other person.
// Requests are sorted by decision time, then request id.
type SubjectReport struct {
	Requests []SubjectRequest `json:"requests"`
}

// SubjectRequest is one request about the subject and its propagation.
// Recipients are sorted by recipient id; none means no recipient received
// the affected data.
type SubjectRequest struct {
	Request    string    `json:"request"`
	Type       string    `json:"type"`
	Action     string    `json:"action"`
	DecidedAt  time.Time `json:"decidedAt"`
	Categories []string  `json:"categories,omitempty"` // empty: all
	// SubjectInformedAt is when the person was told of a lifting, before
	// it was decided (UK GDPR Art. 18(3)).
	SubjectInformedAt *time.Time          `json:"subjectInformedAt,omitempty"`
	Recipients        []RecipientNotified `json:"recipients"`

	// Answer is the deadline for answering the person, when the request
	// says when it was received (UK GDPR Art. 12(3); DPA 2018 s.54).
	Answer *AnswerClock `json:"answer,omitempty"`
}

// RecipientNotified says whether and when one recipient was told of a
// request: ToldAt is when the notice was first delivered (or marked sent),
// AcknowledgedAt when the recipient answered. An exempted recipient was not
// told; Exemption gives the reason.
type RecipientNotified struct {
	Recipient      string     `json:"recipient"`
	Name           string     `json:"name,omitempty"`
	Notice         string     `json:"notice"`
	State          string     `json:"state"`
	Categories     []string   `json:"categories"`
	Due            time.Time  `json:"due"`
	Overdue        bool       `json:"overdue,omitempty"`
	ToldAt         *time.Time `json:"toldAt,omitempty"`
	AcknowledgedAt *time.Time `json:"acknowledgedAt,omitempty"`
	Outcome        string     `json:"outcome,omitempty"`
	Exemption      string     `json:"exemption,omitempty"` // the exemption's reason
	ExemptedAt     *time.Time `json:"exemptedAt,omitempty"`
}
