package store

import (
	"encoding/binary"
	"time"
)

// Key prefixes of propagation: requests, obligations, their notices and
// indexes. doc.go describes the layout in full.
const (
	prefixRequest      = 'q' // q request-id                 -> request record JSON
	prefixObligation   = 'o' // o notice                     -> obligation JSON
	prefixNotice       = 'n' // n notice                     -> sealed notice payload
	prefixByDue        = 'u' // u due(8) notice              -> (empty)
	prefixRecipientDue = 'v' // v recipient 0x00 due(8) notice -> (empty)
	prefixOpen         = 'w' // w opened(8) notice           -> due(8), open obligations only
	prefixSubjectOblig = 'j' // j K16(subject) notice        -> recipient
	prefixSubjectReq   = 'g' // g K16(subject) request-id    -> (empty)
	prefixErasure      = 'x' // x K16(subject)               -> markers: (decidedAt(8) request categories)...
	prefixAfterErasure = 'f' // f seq(8)                     -> erasure request id
	prefixRestricted   = 'b' // b seq(8)                     -> restriction request id (Art. 18(2))
)

func requestKey(id string) []byte { return append([]byte{prefixRequest}, id...) }

func obligationKey(notice string) []byte { return append([]byte{prefixObligation}, notice...) }

func noticeKey(notice string) []byte { return append([]byte{prefixNotice}, notice...) }

func byDueKey(due time.Time, notice string) []byte {
	k := binary.BigEndian.AppendUint64([]byte{prefixByDue}, encodeTime(due))
	return append(k, notice...)
}

// recipientDuePrefix is the prefix of every recipient-due key of recipient.
func recipientDuePrefix(recipient string) []byte {
	k := append([]byte{prefixRecipientDue}, recipient...)
	return append(k, 0)
}

func recipientDueKey(recipient string, due time.Time, notice string) []byte {
	k := binary.BigEndian.AppendUint64(recipientDuePrefix(recipient), encodeTime(due))
	return append(k, notice...)
}

func openKey(opened time.Time, notice string) []byte {
	k := binary.BigEndian.AppendUint64([]byte{prefixOpen}, encodeTime(opened))
	return append(k, notice...)
}

func subjectObligationPrefix(subjectHash []byte) []byte {
	return append([]byte{prefixSubjectOblig}, subjectHash...)
}

func subjectObligationKey(subjectHash []byte, notice string) []byte {
	return append(subjectObligationPrefix(subjectHash), notice...)
}

func erasureKey(subjectHash []byte) []byte {
	return append([]byte{prefixErasure}, subjectHash...)
}

func afterErasureKey(seq uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{prefixAfterErasure}, seq)
}

func restrictedKey(seq uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{prefixRestricted}, seq)
}

func subjectRequestPrefix(subjectHash []byte) []byte {
	return append([]byte{prefixSubjectReq}, subjectHash...)
}

func subjectRequestKey(subjectHash []byte, request string) []byte {
	return append(subjectRequestPrefix(subjectHash), request...)
}

// Every kind of key has its own prefix byte: a duplicate case below does not
// compile.
var _ = func(k byte) bool {
	switch k {
	case prefixMeta, prefixIndexedBy, prefixFormat, prefixProfile, prefixDedupe, prefixEntry, prefixEntryV0, prefixSubject, prefixRecipient, prefixByRecip, prefixByTime,
		prefixTreeHash, prefixTile, prefixCheckpoint,
		prefixRequest, prefixObligation, prefixNotice, prefixByDue, prefixRecipientDue, prefixOpen,
		prefixSubjectOblig, prefixSubjectReq, prefixErasure, prefixAfterErasure, prefixRestricted,
		prefixSalt, prefixSubjectLoc, prefixDataKey, prefixSealedFor, prefixHold, prefixScrub, prefixSentinel:
		return true
	}
	return false
}
