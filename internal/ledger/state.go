package ledger

import "time"

// State is what the rules read of the ledger as it stands: everything
// committed, and the events applied before in the same batch. The store
// implements it over its Badger transaction; MemState implements it in
// memory for tests and for verify's replay. Subjects are known only by
// their keyed hash (SubjectHash): an opaque, stable byte string that no
// rule interprets.
//
// A method returns nil (and no error) for a record the ledger does not
// hold; an error only when the state could not be read, which is fatal for
// the batch and never a refusal of the event.
type State interface {
	// Recipient returns the recipient's current definition.
	Recipient(id string) (Recipient, bool)
	// Request returns the record of a rectification, erasure, restriction or lifting.
	Request(id string) (*RequestRecord, error)
	// Obligation returns the obligation of a notice.
	Obligation(notice string) (*Obligation, error)
	// Hold returns a legal hold, active or released.
	Hold(id string) (*HoldRecord, error)
	// ActiveHolds returns the holds in place, in any order.
	ActiveHolds() ([]HoldRecord, error)
	// SubjectHash returns the keyed hash of a subject the ledger knows,
	// nil for one it never saw or has forgotten.
	SubjectHash(s Subject) ([]byte, error)
	// Known reports whether the subject with this keyed hash is known
	// (not forgotten).
	Known(subjectHash []byte) (bool, error)
	// Disclosures returns the summaries of the subject's disclosures in
	// (DisclosedAt, entry) order.
	Disclosures(subjectHash []byte) ([]DisclosureSummary, error)
	// Erasures returns the erasures and restrictions decided about the
	// subject, in the order they were recorded.
	Erasures(subjectHash []byte) ([]ErasureMarker, error)
}

// DisclosureSummary is what the rules need of one disclosure of one
// subject: no identifier, no free text.
type DisclosureSummary struct {
	ID           string // the disclosure's event id
	Recipient    string
	Purpose      string
	LawfulBasis  string
	Regime       string
	Categories   []string
	Inquiry      bool
	AfterErasure bool
	// WhileRestricted: made while a restriction of this data was in force.
	WhileRestricted bool
	DisclosedAt     time.Time
	// ReceivedFrom is the competent authority the data came from (DPA 2018
	// s.48(7)), "" when the disclosure does not say.
	ReceivedFrom string
}

// SummaryOf returns the summary of disclosure d recorded as event id.
func SummaryOf(id string, d *Disclosure, afterErasure bool) DisclosureSummary {
	return DisclosureSummary{
		ID: id, Recipient: d.Recipient, Purpose: d.Purpose, LawfulBasis: d.LawfulBasis,
		Regime: d.Regime, Categories: d.Categories, Inquiry: d.Inquiry,
		AfterErasure: afterErasure, DisclosedAt: d.DisclosedAt, ReceivedFrom: d.ReceivedFrom,
	}
}

// ErasureMarker is an erasure or a restriction decided about a subject: a
// disclosure of the same data made after the erasure, or while the
// restriction is in force, is flagged.
type ErasureMarker struct {
	Request    string
	DecidedAt  time.Time
	Categories []string // empty: all
}

// RequestRecord is what the ledger keeps of a request, under its request
// id. It holds no identifier: the subject only as its keyed hash.
type RequestRecord struct {
	Request     string    `json:"request"`
	Type        string    `json:"type"`
	Action      string    `json:"action"`
	Seq         uint64    `json:"seq"`
	DecidedAt   time.Time `json:"decidedAt"`
	Regime      string    `json:"regime,omitempty"`
	Categories  []string  `json:"categories,omitempty"`
	Subject     []byte    `json:"subject"`               // keyed hash
	Restriction string    `json:"restriction,omitempty"` // the restriction a lifting lifts
	LiftedBy    string    `json:"liftedBy,omitempty"`    // the lifting of a restriction
	// Answer is the clock for answering the person, for a request that
	// says when it was received (answer.go).
	Answer *AnswerClock `json:"answer,omitempty"`
	// SubjectInformedAt is when the person was told, before a lifting
	// (UK GDPR Art. 18(3)).
	SubjectInformedAt *time.Time `json:"subjectInformedAt,omitempty"`
	Notices           []string   `json:"notices"` // sorted by recipient
	// ForgottenAt is when the ledger forgot the subject.
	ForgottenAt *time.Time `json:"forgottenAt,omitempty"`
}

// Forget marks the request's subject forgotten at at. The record stays, as
// evidence that its recipients were told (UK GDPR Art. 5(2)); it never held
// an identifier.
func (r *RequestRecord) Forget(at time.Time) { r.ForgottenAt = &at }
