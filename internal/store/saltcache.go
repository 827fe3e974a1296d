package store

import (
	lru "github.com/hashicorp/golang-lru/v2"
)

// saltCacheSize bounds the subjects whose salts the writer keeps in memory
// (about 100 bytes each). Disclosures name some people far more often
// than others, and each Append would otherwise look the salt up in Badger
// (memtables, then every level): at most 64 Ki of them keeps about 6 MiB.
const saltCacheSize = 1 << 16

// saltCache holds committed salts by locator, for the one writer: a salt
// is put in only by a committed batch that read or made it, and the whole
// cache is emptied when a batch that deleted any salt (forgetting)
// commits. A batch that deletes a salt stops reading the cache. So the
// cache never holds a salt the ledger no longer has, as long as salts are
// deleted only through Batch.del.
type saltCache = lru.Cache[string, []byte]

func newSaltCache() *saltCache {
	c, err := lru.New[string, []byte](saltCacheSize)
	if err != nil {
		panic(err) // only for a size below 1
	}
	return c
}

// salt returns the salt stored under the locator loc as the batch sees it,
// nil when there is none.
func (b *Batch) salt(loc []byte) ([]byte, error) {
	if !b.saltDeleted {
		if salt, ok := b.s.salts.Get(string(loc)); ok {
			return salt, nil
		}
	}
	salt, err := txnValue(b.txn, saltKey(loc))
	if salt != nil && err == nil {
		b.saltSeen(loc, salt)
	}
	return salt, err
}

// saltSeen notes a salt the batch read from Badger or made, for the cache
// once the batch commits.
func (b *Batch) saltSeen(loc, salt []byte) {
	if b.seen == nil {
		b.seen = make(map[string][]byte)
	}
	b.seen[string(loc)] = salt
}

// cacheSalts updates the salt cache after the batch committed.
func (b *Batch) cacheSalts() {
	if b.saltDeleted {
		b.s.salts.Purge()
		return
	}
	for loc, salt := range b.seen {
		b.s.salts.Add(loc, salt)
	}
}
