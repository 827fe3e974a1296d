package ledger

import "time"

// Entry is one record of the ledger: an event as it was applied.
// Seq numbers entries densely from 1 in ledger order, which is the order of
// the SHARELOG_IN stream; StreamSeq is the stream sequence it was applied from.
type Entry struct {
	Seq        uint64    `json:"seq"`
	StreamSeq  uint64    `json:"streamSeq"`
	RecordedAt time.Time `json:"recordedAt"`
	Event      Event     `json:"event"`
	// Forgotten is set when the entry names a subject the ledger has
	// forgotten: its sealed part (identifiers, free text, rectified values)
	// can no longer be read, and Event holds only the pseudonymous part
	// (subject identifiers empty).
	Forgotten bool `json:"forgotten,omitempty"`
}

// Outcome says what applying an event did.
type Outcome int

const (
	// Recorded: the event is a new ledger entry.
	Recorded Outcome = iota + 1
	// Duplicate: an event with the same (source, id) is already recorded; nothing changed.
	Duplicate
	// Rejected: the event breaks a rule that depends on the ledger's state; nothing changed.
	Rejected
)

func (o Outcome) String() string {
	switch o {
	case Recorded:
		return "recorded"
	case Duplicate:
		return "duplicate"
	case Rejected:
		return "rejected"
	}
	return "unknown"
}
