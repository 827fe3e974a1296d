package store

import (
	"github.com/dgraph-io/badger/v4"
)

// markedSubjects is the set of subjects that may have erasure markers (an
// x key, written by an erasure or a restriction): every disclosure asks
// for its subjects' markers (ledger.State.Erasures), and almost none has
// any, so a subject not in the set is answered without reading Badger.
//
// It may hold more than the subjects with an x key, never fewer: Open (and
// Restore) fill it with a key-only scan of the x keys, and a batch adds a
// subject when it writes the subject's x key, before that write and so
// before the commit. A member with no x key (its batch was discarded, or
// a forgetting deleted the key) only costs the read it would have cost
// without the set; members are never taken out, but Open starts again from
// what Badger holds. Keys are the 16-byte keyed hashes as arrays, so the
// map holds no pointer for the garbage collector to scan: about 40 bytes a
// subject (doc.go). It is used by the appending batch only (Batch.state),
// and filled before any batch begins.
type markedSubjects struct {
	m map[[subjectHashLen]byte]struct{}
}

// has reports whether the subject with keyed hash h may have markers.
func (ms *markedSubjects) has(h []byte) bool {
	if len(h) != subjectHashLen {
		return true // not a keyed hash the set holds: read Badger
	}
	_, ok := ms.m[[subjectHashLen]byte(h)]
	return ok
}

// add notes that the subject with keyed hash h may have markers.
func (ms *markedSubjects) add(h []byte) {
	if len(h) != subjectHashLen {
		return // has reads Badger for such a hash
	}
	if ms.m == nil {
		ms.m = make(map[[subjectHashLen]byte]struct{})
	}
	ms.m[[subjectHashLen]byte(h)] = struct{}{}
}

// loadMarked returns the set of the subjects with an x key within txn.
func loadMarked(txn *badger.Txn) markedSubjects {
	ms := markedSubjects{m: make(map[[subjectHashLen]byte]struct{})}
	it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixErasure}})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		ms.add(it.Item().Key()[1:])
	}
	return ms
}
