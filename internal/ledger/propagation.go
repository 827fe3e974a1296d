package ledger

import "time"

// TypeNoticeDelivery records one attempt to deliver a notice. sharelog
// publishes it to SHARELOG_IN itself (source "sharelog/notify"), so that every
// attempt is a ledger entry applied by the one writer: evidence, in order.
const TypeNoticeDelivery = "org.sharelog.notice.delivery.v1"

// Delivery outcomes.
const (
	DeliveryDelivered = "delivered" // on the recipient's NATS subject, or a 2xx from its webhook
	DeliveryFailed    = "failed"    // not delivered; NextAttemptAt says when it is tried again
	DeliverySent      = "sent"      // a person marked a manual notice as sent
)

// NoticeDelivery is one delivery attempt of a notice (org.sharelog.notice.delivery.v1).
// A 2xx from a webhook means delivered, not acknowledged.
type NoticeDelivery struct {
	Notice        string     `json:"notice" validate:"required,max=200"`
	Attempt       int        `json:"attempt" validate:"min=1"`
	Channel       string     `json:"channel" validate:"required,oneof=nats webhook manual"`
	Outcome       string     `json:"outcome" validate:"required,oneof=delivered failed sent"`
	Status        int        `json:"status,omitempty" validate:"min=0,max=999"`
	Error         string     `json:"error,omitempty" validate:"max=1000"`
	At            time.Time  `json:"at" validate:"required"`
	NextAttemptAt *time.Time `json:"nextAttemptAt,omitempty"`
	Reminder      bool       `json:"reminder,omitempty"`
	SentBy        string     `json:"sentBy,omitempty" validate:"max=200"`
}

// Obligation states. Overdue is not a state: it is derived from Due and the
// clock for an obligation that is still open (pending or delivered).
const (
	StatePending      = "pending"      // opened; not yet delivered
	StateDelivered    = "delivered"    // delivered or sent; no acknowledgement yet
	StateAcknowledged = "acknowledged" // the recipient answered; see Outcome
	StateExempted     = "exempted"     // the controller recorded an exemption
)

// Obligation is the duty to tell one recipient about one request
// (rectification, erasure, restriction or lifting of a restriction), and
// what became of it. Its Notice id is stable: derived from the request and
// the recipient, so a repeated delivery can be deduplicated by the recipient.
type Obligation struct {
	Notice      string    `json:"notice"`
	Request     string    `json:"request"`
	Action      string    `json:"action"`
	Recipient   string    `json:"recipient"`
	Name        string    `json:"name,omitempty"`
	Channel     string    `json:"channel"`
	Regime      string    `json:"regime,omitempty"`
	Categories  []string  `json:"categories"`
	Disclosures []string  `json:"disclosures"`
	OpenedAt    time.Time `json:"openedAt"`
	Due         time.Time `json:"due"`
	State       string    `json:"state"`
	Overdue     bool      `json:"overdue,omitempty"`

	Attempts       int        `json:"attempts"`
	Reminders      int        `json:"reminders,omitempty"`
	LastAttemptAt  *time.Time `json:"lastAttemptAt,omitempty"`
	LastError      string     `json:"lastError,omitempty"`
	NextAttemptAt  *time.Time `json:"nextAttemptAt,omitempty"`
	DeliveredAt    *time.Time `json:"deliveredAt,omitempty"`
	AcknowledgedAt *time.Time `json:"acknowledgedAt,omitempty"`
	Outcome        string     `json:"outcome,omitempty"` // done, not-held, refused
	Exemption      *Exemption `json:"exemption,omitempty"`
	ExemptedAt     *time.Time `json:"exemptedAt,omitempty"`

	// AnswerDue is the deadline for answering the person who made the
	// request, when it says when it was received; AnswerOverdue is set
	// when it has passed with the clock running and this obligation still
	// open. Both are filled in by queries, never stored.
	AnswerDue     *time.Time `json:"answerDue,omitempty"`
	AnswerOverdue bool       `json:"answerOverdue,omitempty"`
	// Instruction is set for a notice to a processor: the controller's
	// documented instruction (UK GDPR Art. 28(3)(a),(g)), not a
	// notification under Art. 19.
	Instruction bool `json:"instruction,omitempty"`
	// EscalatedAt is when a processor answered an instruction "refused":
	// a processor may not refuse a documented instruction, so the
	// obligation stays open and is escalated to the controller.
	EscalatedAt *time.Time `json:"escalatedAt,omitempty"`
	// Originator is set for the competent authority the data came from,
	// told of a rectification (DPA 2018 s.48(7)), not a recipient of it.
	Originator bool `json:"originator,omitempty"`
	// HeldBy names the active legal holds that turned this erasure's
	// obligation into a restriction (DPA 2018 s.47(2); UK GDPR Art.
	// 17(3)(b),(e)), sorted. AfterHold names the hold whose release let the
	// erasure proceed, on the obligation to erase it opened then.
	HeldBy    []string `json:"heldBy,omitempty"`
	AfterHold string   `json:"afterHold,omitempty"`
}

// Open reports whether the obligation still waits for the recipient or the controller.
func (o *Obligation) Open() bool { return o.State == StatePending || o.State == StateDelivered }

// RequestStatus is the propagation of one request to every recipient.
// Obligations are sorted by recipient id. No obligations means no recipient
// ever received the affected data.
type RequestStatus struct {
	Request    string    `json:"request"`
	Type       string    `json:"type"`
	Action     string    `json:"action"`
	DecidedAt  time.Time `json:"decidedAt"`
	Regime     string    `json:"regime,omitempty"`
	Categories []string  `json:"categories,omitempty"` // empty: all
	// SubjectInformedAt is when the person was told of a lifting, before
	// it was decided (UK GDPR Art. 18(3)).
	SubjectInformedAt *time.Time   `json:"subjectInformedAt,omitempty"`
	Obligations       []Obligation `json:"obligations"`
	// Holds names the active legal holds covering the request's subject.
	Holds []string `json:"holds,omitempty"`
	// ForgottenAt is when the ledger forgot the request's subject.
	ForgottenAt *time.Time `json:"forgottenAt,omitempty"`
	// Answer is the deadline for answering the person, for a request that
	// says when it was received (UK GDPR Art. 12(3); DPA 2018 s.54), beside
	// the obligations' deadlines for telling recipients.
	Answer *AnswerClock `json:"answer,omitempty"`
}

// OutgoingNotice is a notice due for a delivery attempt: the obligation as it
// stands and the notice as a structured CloudEvent (org.sharelog.notice.v1),
// carrying only what this recipient received.
type OutgoingNotice struct {
	Obligation Obligation `json:"obligation"`
	Event      []byte     `json:"-"`
	// Reminder is true when the notice was delivered before and the
	// obligation is overdue: this attempt is a reminder.
	Reminder bool `json:"reminder,omitempty"`
}
