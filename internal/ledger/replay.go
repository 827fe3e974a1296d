package ledger

import "crypto/subtle"

// Replay decides what an event does whose (source, id) the ledger has
// already recorded. recorded is a digest of the recorded event's content,
// and replayed the same digest of the event sent again; recorded is nil when
// the ledger cannot tell: the recorded event's subject was forgotten, and
// its personal part can no longer be read.
//
// A replay of the same content is a Duplicate: sending an event again is
// harmless, whatever the transport's retries. A replay with other content
// is refused as a conflict (ReasonConflict), so that it is kept and seen
// rather than dropped as a duplicate: a recorded event is never replaced,
// and the producer that believes it recorded the second content must be
// told it did not (UK GDPR Art. 5(1)(d), accuracy; Art. 5(2), the record
// demonstrates what was disclosed). When the ledger cannot tell, the replay
// is a Duplicate: what it replays is forgotten.
func Replay(recorded, replayed []byte) (Outcome, error) {
	if recorded == nil || subtle.ConstantTimeCompare(recorded, replayed) == 1 {
		return Duplicate, nil
	}
	return Rejected, Invalid(ReasonConflict, "id",
		"an event with this source and id is already recorded with other content: a recorded event is never replaced; send the change as a new event with its own id")
}
