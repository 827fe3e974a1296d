package store

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/dgraph-io/badger/v4"
	"golang.org/x/mod/sumdb/tlog"
)

// Position is a committed position of the ledger: the last stream sequence
// applied, the entry count (the Merkle tree's size) and the tree's root at
// that size.
type Position struct {
	Applied uint64
	Count   uint64
	Root    tlog.Hash
}

// Backup writes the committed ledger to w in Badger's backup format
// (badger.Stream.Backup, which db.Load reads back) and returns the position
// it holds. The whole backup is one consistent read: Badger's stream runs
// one reader (one transaction), and the position is the meta record that
// read saw, so the batches the one writer commits meanwhile are not in it.
// Keys deleted before the read (a forgotten subject's salt, say) are in it
// as deletion markers, without their values. The backup holds the ledger's
// values as the store reads them, not encrypted at rest: the caller encrypts
// it before it leaves the process (package snapshot). It is written as it is
// read, never held whole in memory.
func (s *Store) Backup(ctx context.Context, w io.Writer) (Position, error) {
	s.side.RLock() // Compact waits
	defer s.side.RUnlock()
	var (
		pos     Position
		metaErr error
	)
	stream := s.db.NewStream()
	stream.LogPrefix = "store.Backup"
	stream.NumGo = 1 // one reader, one transaction: one consistent read
	stream.ChooseKey = func(item *badger.Item) bool {
		if bytes.Equal(item.Key(), metaKey) && !item.IsDeletedOrExpired() {
			metaErr = item.Value(func(v []byte) error {
				var err error
				pos.Applied, pos.Count, err = decodeMeta(v)
				return err
			})
		}
		return true
	}
	if _, err := stream.Backup(ctxWriter{ctx, w}, 0); err != nil {
		return Position{}, fmt.Errorf("store: backup: %w", err)
	}
	if metaErr != nil {
		return Position{}, fmt.Errorf("store: backup: meta record: %w", metaErr)
	}
	// The tree's hashes below a size never change once the entries up to
	// it are committed, so the root at the backup's size read now is the
	// root at the time of the backup's read.
	err := s.view(ctx, func(txn *badger.Txn) error {
		r, size, err := s.txnTree(txn)
		if err != nil {
			return err
		}
		if size < int64(pos.Count) {
			return fmt.Errorf("the ledger holds %d entries, fewer than the backup", size)
		}
		pos.Root, err = tlog.TreeHash(int64(pos.Count), r)
		return err
	})
	if err != nil {
		return Position{}, fmt.Errorf("store: backup: tree root at %d: %w", pos.Count, err)
	}
	return pos, nil
}

// ctxWriter fails writes once ctx is done, which stops a backup.
type ctxWriter struct {
	ctx context.Context
	w   io.Writer
}

func (c ctxWriter) Write(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.w.Write(p)
}

// ErrNotEmpty is returned by Restore for a directory that already holds files.
var ErrNotEmpty = errors.New("store: restore needs an empty directory")

// Restore creates a ledger in cfg.Dir, which must be empty or absent, from a
// backup written by Backup, and returns it open. The keys are cfg's (site
// secret, master key, encryption at rest), as Open takes them: they are not
// in a backup, and must be those of the ledger the backup was taken from
// (KeyCheck tells). A backup that ends early or cannot be read gives an
// error, and the directory then holds a partial ledger: restore into a
// directory of its own and move it into place only once the restored ledger
// has been verified (package snapshot does).
func Restore(cfg Config, r io.Reader) (*Store, error) {
	entries, err := os.ReadDir(cfg.Dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("store: restore: %w", err)
	case len(entries) > 0:
		return nil, fmt.Errorf("%w: %s holds %d files", ErrNotEmpty, cfg.Dir, len(entries))
	}
	s, err := open(cfg) // the dedupe filter starts once the d keys are loaded
	if err != nil {
		return nil, err
	}
	if err := s.db.Load(r, 256); err != nil {
		s.Close()
		return nil, fmt.Errorf("store: restore: %w", err)
	}
	if err := s.load(); err != nil {
		s.Close()
		return nil, err
	}
	s.startSeen(cfg)
	s.log.Info("ledger restored from a backup", "applied", s.Applied(), "entries", s.Count())
	return s, nil
}

// KeyCheck returns a value that is equal for two ledgers if and only if
// they have the same site secret (with overwhelming probability), and says
// nothing of the secret: the first 8 bytes of HMAC-SHA256(secret, a label),
// in hex. A ledger restored with another site secret than its source's
// would find no subject by its identifier.
func (s *Store) KeyCheck() string {
	m := hmac.New(sha256.New, s.secret)
	m.Write([]byte("sharelog site secret check"))
	return hex.EncodeToString(m.Sum(nil)[:8])
}

// CheckTree recomputes, entry by entry, the tree hashes each entry value
// gives with the hashes before it (tlog.StoredHashes, as Append does) and
// compares the full tiles with the stored ones (and the hashes of a ledger
// written before tiles with its 'h' keys). It fails on an entry missing,
// out of place or changed, and on a stored tile the entries do not give. The
// partial tiles are not stored: TreeHead recomputes them from the entries.
// With TreeHead's root equal to a root trusted otherwise (a snapshot's,
// another replica's checkpoint), it shows that the ledger holds exactly the
// entries of that root. It reads the entries and the tiles once each, side by
// side, in one read.
func (s *Store) CheckTree(ctx context.Context) error {
	return s.view(ctx, func(txn *badger.Txn) error {
		count, err := treeSize(txn)
		if err != nil {
			return err
		}
		opts := badger.IteratorOptions{PrefetchValues: true, PrefetchSize: 100}
		entries := newEntryIterator(txn, opts)
		defer entries.Close()
		opts.Prefix = []byte{prefixTreeHash}
		hashes := txn.NewIterator(opts)
		defer hashes.Close()
		hashes.Rewind()
		// The newest hash of each level: the ones StoredHashes reads.
		var f frontier
		var partial [][]byte // the hashes of each tile level since its last full tile
		var n int64
		for entries.Rewind(); entries.Valid(); entries.Next() {
			if n%ctxCheckEvery == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			key := entries.Item().Key()
			if len(key) != 9 || int64(binary.BigEndian.Uint64(key[1:])) != n+1 {
				return fmt.Errorf("store: tree check: entry %d missing", n+1)
			}
			value, err := entryValue(entries.Item())
			if err != nil {
				return fmt.Errorf("store: tree check: entry %d: %w", n+1, err)
			}
			want, err := tlog.StoredHashes(n, value, &f)
			if err != nil {
				return fmt.Errorf("store: tree check: entry %d: %w", n+1, err)
			}
			base := tlog.StoredHashIndex(0, n)
			for i, h := range want {
				idx := base + int64(i)
				// A ledger written before tiles holds its hashes as 'h' keys,
				// in the order they are recomputed.
				if hashes.Valid() && bytes.Equal(hashes.Item().Key(), treeHashKey(idx)) {
					err := hashes.Item().Value(func(v []byte) error {
						if !bytes.Equal(v, h[:]) {
							return fmt.Errorf("store: tree check: entry %d does not give the tree's stored hashes", n+1)
						}
						return nil
					})
					if err != nil {
						return err
					}
					hashes.Next()
				}
				f.set(i, idx, h)
				if i%tileHeight != 0 {
					continue
				}
				level := i / tileHeight
				if level == len(partial) {
					partial = append(partial, make([]byte, 0, tileBytes))
				}
				partial[level] = append(partial[level], h[:]...)
				if len(partial[level]) == tileBytes {
					tile := (n >> i) / tileWidth
					stored, err := readTile(txn, level, tile)
					if err != nil {
						return fmt.Errorf("store: tree check: entry %d: %w", n+1, err)
					}
					if !bytes.Equal(stored, partial[level]) {
						if level == 0 {
							for k := 0; ; k += tlog.HashSize {
								if !bytes.Equal(stored[k:k+tlog.HashSize], partial[0][k:k+tlog.HashSize]) {
									return fmt.Errorf("store: tree check: entry %d does not give its leaf hash in tree tile 0/%d", tile*tileWidth+int64(k/tlog.HashSize)+1, tile)
								}
							}
						}
						return fmt.Errorf("store: tree check: entry %d: tree tile %d/%d is not the one the entries give", n+1, level, tile)
					}
					partial[level] = partial[level][:0]
				}
			}
			n++
		}
		if n != count {
			return fmt.Errorf("store: tree check: %d entries, the ledger counts %d", n, count)
		}
		if hashes.Valid() {
			return fmt.Errorf("store: tree check: tree hash %d stored beyond the %d entries", binary.BigEndian.Uint64(hashes.Item().Key()[1:]), n)
		}
		return nil
	})
}

// frontier holds the newest stored hash of each level of the tree, which
// are the only ones tlog.StoredHashes reads when the next leaf is added.
type frontier []struct {
	index int64
	hash  tlog.Hash
}

func (f *frontier) set(level int, index int64, h tlog.Hash) {
	for len(*f) <= level {
		*f = append(*f, struct {
			index int64
			hash  tlog.Hash
		}{index: -1})
	}
	(*f)[level].index, (*f)[level].hash = index, h
}

// ReadHashes implements tlog.HashReader.
func (f *frontier) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
next:
	for i, idx := range indexes {
		for _, l := range *f {
			if l.index == idx {
				out[i] = l.hash
				continue next
			}
		}
		return nil, fmt.Errorf("tree hash %d is not the newest of its level", idx)
	}
	return out, nil
}
