package ledger

import "time"

// TypeSubjectForgotten records that the ledger forgot a data subject: the
// subject's keys and salt were destroyed and its index entries purged.
// sharelog publishes it itself (source "sharelog/retention") on
// sharelog.in.notify; the ledger refuses it from anywhere else. Its data
// never holds the identifier, only the subject's keyed hash, which nothing
// can link to the person once the salt is gone.
const TypeSubjectForgotten = "org.sharelog.subject.forgotten.v1"

// Why a subject was forgotten.
const (
	// ForgetErasureClosed: every obligation of an erasure of the subject
	// was acknowledged or exempted.
	ForgetErasureClosed = "erasure-closed"
	// ForgetErasureTimeout: the configured time since an erasure passed,
	// whatever its obligations' state.
	ForgetErasureTimeout = "erasure-timeout"
	// ForgetRetention: every disclosure of the subject passed the
	// retention period of its purpose and regime.
	ForgetRetention = "retention"
)

// SubjectForgotten is the data of org.sharelog.subject.forgotten.v1.
type SubjectForgotten struct {
	// SubjectHash is the subject's keyed hash as the ledger keeps it
	// (hex), never the identifier.
	SubjectHash string `json:"subjectHash" validate:"required,hexadecimal,len=32"`
	Reason      string `json:"reason" validate:"required,oneof=erasure-closed erasure-timeout retention"`
	// Request is the erasure that led to the forgetting (erasure reasons).
	Request string `json:"request,omitempty" validate:"max=200"`
	// Purpose and Regime are the retention rule that expired (retention).
	Purpose string    `json:"purpose,omitempty" validate:"max=200"`
	Regime  string    `json:"regime,omitempty" validate:"max=50"`
	At      time.Time `json:"at" validate:"required"`
}

// ForgetCandidate is a subject the ledger may forget, as the retention job
// sees it: its keyed hash (hex), why, and the legal holds that stop it for
// now (empty when it can be forgotten).
type ForgetCandidate struct {
	SubjectHash string   `json:"subjectHash"`
	Reason      string   `json:"reason"`
	Request     string   `json:"request,omitempty"`
	Purpose     string   `json:"purpose,omitempty"`
	Regime      string   `json:"regime,omitempty"`
	HeldBy      []string `json:"heldBy,omitempty"`
}

// HoldRecord is a legal hold as the ledger keeps it: the hold's scope (the
// subject only as a keyed hash), why, who placed it, when to review it, and
// when it was placed and released.
type HoldRecord struct {
	Hold        string     `json:"hold"`
	SubjectHash string     `json:"subjectHash,omitempty"`
	Purpose     string     `json:"purpose,omitempty"`
	Categories  []string   `json:"categories,omitempty"`
	Reason      string     `json:"reason"`
	PlacedBy    string     `json:"placedBy,omitempty"`
	ReviewAt    *time.Time `json:"reviewAt,omitempty"`
	PlacedAt    time.Time  `json:"placedAt"`
	ReleasedAt  *time.Time `json:"releasedAt,omitempty"`
	Seq         uint64     `json:"seq"`
	// Erasures are the erasure requests whose obligations this hold turned
	// into restrictions (DPA 2018 s.47(2)): they proceed when it is released.
	Erasures []string `json:"erasures,omitempty"`
}

// Active reports whether the hold is still in place.
func (h *HoldRecord) Active() bool { return h.ReleasedAt == nil }
