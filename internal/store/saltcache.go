package store

import "encoding/binary"

// saltCacheSlots is the number of subjects whose salts the writer keeps in
// memory: 64 Ki slots of 49 bytes, about 3 MiB.
const saltCacheSlots = 1 << 16

// saltCache keeps committed subjects' salts by locator for the one writer,
// so that appending an event about a subject seen recently reads no salt
// from Badger. It is a direct-mapped table in one array without pointers,
// which the garbage collector does not scan (an LRU of maps and list nodes
// was tried and cost more in collection than it saved). It only ever holds
// salts Badger holds, or holds once the commit in flight completes: a
// batch's salts enter it when the batch commits (Batch.cacheSalts), or when
// its commit is issued by CommitNext, for the next batch, and leave it
// again if that commit fails (Batch.uncacheSalts); a forgetting takes the
// subject's out at once. It is guarded by Store.writer.
type saltCache struct {
	slots []saltSlot // nil until the first batch that looks a subject up
}

type saltSlot struct {
	loc  [subjectHashLen]byte
	salt [saltLen]byte
	used bool
}

func (c *saltCache) slot(loc []byte) *saltSlot {
	if c.slots == nil {
		c.slots = make([]saltSlot, saltCacheSlots)
	}
	// The locator is an HMAC: any of its bits spread subjects evenly.
	return &c.slots[binary.BigEndian.Uint64(loc)%saltCacheSlots]
}

// get returns a copy of the salt of the subject with locator loc, or nil.
func (c *saltCache) get(loc []byte) []byte {
	if len(loc) != subjectHashLen {
		return nil
	}
	if s := c.slot(loc); s.used && string(s.loc[:]) == string(loc) {
		return append(make([]byte, 0, saltLen), s.salt[:]...)
	}
	return nil
}

// put keeps salt as the subject with locator loc's, in place of the slot's;
// both are of the lengths the cache holds (Batch.saw).
func (c *saltCache) put(loc, salt []byte) {
	s := c.slot(loc)
	copy(s.loc[:], loc)
	copy(s.salt[:], salt)
	s.used = true
}

// drop forgets the salt of the subject with locator loc.
func (c *saltCache) drop(loc []byte) {
	if len(loc) != subjectHashLen {
		return
	}
	if s := c.slot(loc); s.used && string(s.loc[:]) == string(loc) {
		s.used = false
	}
}

// saw notes a salt the batch read from Badger or made, for the store's
// cache once the batch commits.
func (b *Batch) saw(loc, salt []byte) {
	if len(loc) == subjectHashLen && len(salt) == saltLen {
		b.seen = append(b.seen, saltSlot{loc: [subjectHashLen]byte(loc), salt: [saltLen]byte(salt), used: true})
	}
}

// cacheSalts puts the salts the batch saw in the store's cache: at commit,
// once Badger holds them, or as CommitNext issues the commit.
func (b *Batch) cacheSalts() {
	for i := range b.seen {
		if s := &b.seen[i]; s.used {
			b.s.salts.put(s.loc[:], s.salt[:])
		}
	}
}

// uncacheSalts takes the salts the batch saw out of the store's cache:
// its commit failed, and Badger may not hold those it made.
func (b *Batch) uncacheSalts() {
	for i := range b.seen {
		if s := &b.seen[i]; s.used {
			b.s.salts.drop(s.loc[:])
		}
	}
}

// dropSalt takes the salt of the subject with locator loc, which the batch
// deletes, out of the store's cache and of what the batch saw.
func (b *Batch) dropSalt(loc []byte) {
	b.s.salts.drop(loc)
	delete(b.made, string(loc))
	for i := range b.seen {
		if string(b.seen[i].loc[:]) == string(loc) {
			b.seen[i].used = false
		}
	}
}
