package store

import (
	"crypto/cipher"
	"encoding/binary"
)

// sealerCacheSlots is the number of subjects whose keys, ready to seal
// with, the writer keeps in memory: 4 Ki slots of 64 bytes and an AES-GCM
// of 768 bytes each (Go 1.26), about 3.3 MiB when all are in use. On
// sharelog bench's subjects (100,000 drawn from a Zipf distribution) about
// three entries in four find their subject's key in it.
const sealerCacheSlots = 1 << 12

// sealerCache keeps the keys of subjects the writer sealed entries under
// recently, with their AES-256-GCM (cipher.AEAD), by keyed hash: deriving a
// subject's key (HKDF, four SHA-256 blocks) and expanding it into an AES
// key schedule and GCM tables for every entry cost more CPU, and far more
// allocation, than the sealing itself. What it holds is a function of the
// subject's keyed hash (its salt and the master key give the key), so a
// slot never goes stale; a subject's forgetting takes its slot out at once
// (Batch.dropSealer), so that the key does not outlive its salt in memory,
// and Batch.subjectSealer only looks in it for a subject the batch holds
// the salt of. It is direct-mapped like saltCache. It is used by the
// appending batch only, guarded by Store.writer.
type sealerCache struct {
	slots []sealerSlot // nil until the first entry sealed under a subject's key
}

type sealerSlot struct {
	h    [subjectHashLen]byte
	key  [dataKeyLen]byte
	aead cipher.AEAD // nil: the slot is free
}

func (c *sealerCache) slot(h []byte) *sealerSlot {
	if c.slots == nil {
		c.slots = make([]sealerSlot, sealerCacheSlots)
	}
	// The keyed hash is an HMAC: any of its bits spread subjects evenly.
	return &c.slots[binary.BigEndian.Uint64(h)%sealerCacheSlots]
}

// get returns the slot of the subject with keyed hash h, or nil.
func (c *sealerCache) get(h []byte) *sealerSlot {
	if len(h) != subjectHashLen {
		return nil
	}
	if s := c.slot(h); s.aead != nil && string(s.h[:]) == string(h) {
		return s
	}
	return nil
}

// put keeps key and its AEAD as the subject with keyed hash h's, in place
// of the slot's.
func (c *sealerCache) put(h, key []byte, a cipher.AEAD) {
	if len(h) != subjectHashLen || len(key) != dataKeyLen {
		return
	}
	s := c.slot(h)
	copy(s.h[:], h)
	copy(s.key[:], key)
	s.aead = a
}

// drop forgets the key of the subject with keyed hash h.
func (c *sealerCache) drop(h []byte) {
	if s := c.get(h); s != nil {
		*s = sealerSlot{}
	}
}

// subjectSealer returns the key of the subject with keyed hash h, in a new
// slice, and its AEAD. A subject whose salt the batch holds (read or made
// in it: keepSubjectKey) is sealed under the store's cache; any other is
// read from the keystore, and fails when it is gone.
func (b *Batch) subjectSealer(h []byte) ([]byte, cipher.AEAD, error) {
	if _, ok := b.salts[string(h)]; ok {
		if s := b.s.sealers.get(h); s != nil {
			return append(make([]byte, 0, dataKeyLen), s.key[:]...), s.aead, nil
		}
	}
	key, err := b.subjectKey(h)
	if err != nil {
		return nil, nil, err
	}
	a, err := newAEAD(key)
	if err != nil {
		return nil, nil, err
	}
	if _, ok := b.salts[string(h)]; ok {
		b.s.sealers.put(h, key, a)
		b.sealersPut = append(b.sealersPut, h)
	}
	return key, a, nil
}

// uncacheSealers takes the keys the batch put in the store's cache out of
// it again: the batch failed, or was discarded. A batch begun before its
// predecessor committed (CommitNext) may have read, from its snapshot, the
// salt of a subject the predecessor forgot: it fails, and the key must not
// outlive the salt in memory.
func (b *Batch) uncacheSealers() {
	for _, h := range b.sealersPut {
		b.s.sealers.drop(h)
	}
	b.sealersPut = nil
}
