package store

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"

	"github.com/dgraph-io/badger/v4"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/sharelog/sharelog/internal/checkpoint"
	"github.com/sharelog/sharelog/internal/ledger"
)

// VerifyConfig configures Verify.
type VerifyConfig struct {
	// Dir is the ledger's Badger directory. It is opened read-only: the
	// server must be stopped, or Dir must be a copy.
	Dir string
	// Verifier checks the checkpoints' signatures: the public key the
	// auditor holds.
	Verifier note.Verifier
	// Checkpoints are signed checkpoints the auditor holds apart from the
	// ledger (saved from GET /v1/checkpoint). They are checked like the
	// stored ones, and they catch a rollback that deleted stored
	// checkpoints too.
	Checkpoints [][]byte
	// Progress, if set, is called every ProgressEvery entries and at the
	// end with the entries verified so far and the entries the ledger
	// claims to hold.
	Progress      func(done, total int64)
	ProgressEvery int64 // default 100,000
	// Logger receives Badger's logs; nil discards them.
	Logger *slog.Logger
	// EncryptionKey opens a ledger kept with Badger's encryption at rest
	// (Config.EncryptionKey, or AtRestKey of the master key).
	EncryptionKey []byte
	// Deadlines is the deadline policy the server ran with: the replay of
	// the entries computes the obligations' due dates with it.
	Deadlines ledger.Deadlines
	// TreeOnly skips the replay of the entries: only the entries, the tree
	// and the checkpoints are checked, not the state derived from them.
	TreeOnly bool
}

// VerifyResult is the answer for an intact ledger.
type VerifyResult struct {
	Size        int64     // entries, the tree size
	Root        tlog.Hash // the recomputed root of the tree of Size
	Checkpoints int       // checkpoints whose signature and root were checked
	Latest      int64     // size of the largest checkpoint checked, 0 if none
	// Records counts the derived records (indexes, registry, requests,
	// obligations, holds, dedupe records, subject locators) compared with
	// the replay of the entries; 0 with TreeOnly.
	Records int
	// Unchecked counts entries that named several people one of whom was
	// forgotten: the others can no longer be told apart, so their subject
	// index records from those entries are not compared.
	Unchecked int
	// Recovered is set when Dir's write-ahead log needed recovery (a copy
	// taken while the server ran, or a crash) and was recovered in a scratch
	// directory holding copies of the log files alone (recoveryDir); Dir
	// itself is never written.
	Recovered bool
}

// String is the one-line verdict.
func (r *VerifyResult) String() string {
	return fmt.Sprintf("intact: size %d root %s", r.Size, base64.StdEncoding.EncodeToString(r.Root[:]))
}

// TamperKind names what Verify found wrong.
type TamperKind string

// The kinds of tampering Verify tells apart.
const (
	TamperModified     TamperKind = "modified"      // an entry's value changed
	TamperDeleted      TamperKind = "deleted"       // an entry is gone, with or without renumbering the rest
	TamperInserted     TamperKind = "inserted"      // an entry that was never appended
	TamperReordered    TamperKind = "reordered"     // an entry moved to another position
	TamperRolledBack   TamperKind = "rolled-back"   // the ledger is shorter than a signed checkpoint
	TamperTreeHash     TamperKind = "tree-hash"     // a stored interior tree hash changed
	TamperCheckpoint   TamperKind = "checkpoint"    // a checkpoint's root disagrees with the ledger
	TamperBadSignature TamperKind = "bad-signature" // a stored checkpoint does not verify
)

// TamperError reports the first evidence of tampering Verify found.
type TamperError struct {
	Kind TamperKind
	// Seq is the entry concerned: the modified, missing, inserted or moved
	// entry; for TamperCheckpoint the first entry of the range that must
	// have changed.
	Seq int64
	// Size is the checkpoint's tree size (TamperRolledBack,
	// TamperCheckpoint, TamperBadSignature).
	Size int64
	// LedgerSize is the number of entries found (TamperRolledBack).
	LedgerSize int64
	Detail     string
}

func (e *TamperError) Error() string {
	switch e.Kind {
	case TamperModified:
		return fmt.Sprintf("entry %d modified", e.Seq)
	case TamperDeleted:
		return fmt.Sprintf("entry %d missing (deleted)", e.Seq)
	case TamperInserted:
		return fmt.Sprintf("extra entry inserted at %d", e.Seq)
	case TamperReordered:
		return fmt.Sprintf("entries reordered at %d", e.Seq)
	case TamperRolledBack:
		return fmt.Sprintf("tree rolled back: checkpoint size %d > ledger size %d", e.Size, e.LedgerSize)
	case TamperTreeHash:
		return fmt.Sprintf("tree hash altered at entry %d: %s", e.Seq, e.Detail)
	case TamperCheckpoint:
		return fmt.Sprintf("checkpoint size %d does not match the ledger: an entry from %d to %d was changed (where stored tree tiles cover it, with them rewritten to hide it)", e.Size, e.Seq, e.Size)
	case TamperBadSignature:
		return fmt.Sprintf("checkpoint size %d: %s", e.Size, e.Detail)
	}
	return fmt.Sprintf("ledger tampered with (%s) at entry %d", e.Kind, e.Seq)
}

// Verify checks the ledger in cfg.Dir offline, read-only (a directory whose
// write-ahead log needs recovery, such as a copy taken while the server ran,
// is recovered in a scratch directory that copies only the files Badger
// rewrites, and links the rest: see recoveryDir). It recomputes
// every leaf from the entry values and every tree hash from the leaves with
// tlog, compares them with the stored tree hashes, checks each checkpoint's
// signature with cfg.Verifier and its root against the recomputed tree of
// its size, and checks that no signed checkpoint is larger than the ledger.
// Matching every checkpoint against one recomputed tree implies that each
// later checkpoint is consistent with every earlier one.
//
// It then replays every entry through the ledger's rules (unless
// cfg.TreeOnly) and compares each derived record the ledger holds (indexes,
// the recipient registry, requests, obligations and their states, holds,
// dedupe records, the subjects' locators and salts) with what the entries
// give (verify_state.go).
//
// It returns the tree size and root of an intact ledger, a *TamperError
// describing the first problem of the entries or tree in ledger order, or a
// *StateError listing derived records that do not match the entries. Other
// errors (unreadable directory, cancelled ctx) are returned as they are.
func Verify(ctx context.Context, cfg VerifyConfig) (*VerifyResult, error) {
	if cfg.Verifier == nil {
		return nil, errors.New("verify: a public key is required")
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.ProgressEvery <= 0 {
		cfg.ProgressEvery = 100_000
	}
	db, recovered, cleanup, err := openReadOnly(cfg.Dir, cfg.EncryptionKey, logger)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	var res *VerifyResult
	err = db.View(func(txn *badger.Txn) error {
		v, err := newVerifier(ctx, txn, cfg)
		if err != nil {
			return err
		}
		defer v.close()
		res, err = v.run()
		return err
	})
	if res != nil {
		res.Recovered = recovered
	}
	return res, err
}

// openReadOnly opens the ledger in dir read-only for Verify and
// ReadKept. A directory whose write-ahead log needs recovery (a copy taken
// while the server ran, or a ledger after a crash) is recovered in a scratch
// directory (recoveryDir); dir itself is never written. cleanup closes the
// database and removes the scratch directory.
func openReadOnly(dir string, key []byte, logger *slog.Logger) (db *badger.DB, recovered bool, cleanup func(), err error) {
	db, err = badger.Open(badgerOptions(dir, logger).WithReadOnly(true).WithEncryptionKey(key))
	scratch := ""
	// Badger loses the error's identity on the way up; its text remains.
	if err != nil && (errors.Is(err, badger.ErrTruncateNeeded) || strings.Contains(err.Error(), badger.ErrTruncateNeeded.Error())) {
		// Its write-ahead log ends in space Badger must trim, which
		// read-only mode cannot do. Recover it in a scratch directory; dir
		// stays untouched.
		if scratch, err = recoveryDir(dir); err != nil {
			return nil, false, nil, fmt.Errorf("verify: recover %s's log: %w", dir, err)
		}
		db, err = badger.Open(badgerOptions(scratch, logger).WithSyncWrites(false).WithNumCompactors(0).
			WithCompactL0OnClose(false).WithEncryptionKey(key))
		recovered = true
	}
	if err != nil {
		if scratch != "" {
			os.RemoveAll(scratch)
		}
		return nil, false, nil, fmt.Errorf("verify: open ledger %s read-only (is the server still running? stop it or verify a copy): %w", dir, err)
	}
	if _, err := checkFormat(db, dir); err != nil { // format.go
		db.Close()
		if scratch != "" {
			os.RemoveAll(scratch)
		}
		return nil, false, nil, fmt.Errorf("verify: %w", err)
	}
	return db, recovered, func() {
		db.Close()
		if scratch != "" {
			os.RemoveAll(scratch)
		}
	}, nil
}

// verifier is one run of Verify.
type verifier struct {
	ctx    context.Context
	txn    *badger.Txn
	cfg    VerifyConfig
	meta   int64            // entry count in the meta record
	hashes *badger.Iterator // 'h' keys of a ledger written before tiles
	cps    *cpCursor
	absent []int64    // the tile of each tile level last found not stored
	tile   []struct { // the full tile of each tile level read last
		n    int64
		data []byte
	}
	replay *replay // nil with TreeOnly

	frontier [64]struct {
		index int64
		hash  tlog.Hash
		ok    bool
	}
	leafIndex map[tlog.Hash]int64 // stored leaf hash -> seq, built on the first mismatch
	checked   int
	latest    int64
	lastGood  int64 // size of the last checkpoint that matched
}

func newVerifier(ctx context.Context, txn *badger.Txn, cfg VerifyConfig) (*verifier, error) {
	meta, err := treeSize(txn)
	if err != nil {
		return nil, fmt.Errorf("verify: meta record: %w", err)
	}
	v := &verifier{ctx: ctx, txn: txn, cfg: cfg, meta: meta}
	if !cfg.TreeOnly {
		v.replay = newReplay(txn, cfg.Deadlines, meta)
	}
	v.cps, err = newCPCursor(txn, cfg.Checkpoints, cfg.Verifier)
	if err != nil {
		return nil, err
	}
	v.hashes = txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixTreeHash}, PrefetchValues: true, PrefetchSize: 1000})
	v.hashes.Rewind()
	return v, nil
}

func (v *verifier) close() {
	v.hashes.Close()
	v.cps.close()
}

// ReadHashes implements tlog.HashReader over the hashes recomputed so far:
// the latest at each level, all that tlog needs to extend the tree or hash
// it.
func (v *verifier) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, idx := range indexes {
		level, _ := tlog.SplitStoredHashIndex(idx)
		if f := &v.frontier[level]; f.ok && f.index == idx {
			out[i] = f.hash
			continue
		}
		return nil, fmt.Errorf("tree hash %d is not the newest of its level", idx)
	}
	return out, nil
}

func (v *verifier) run() (*VerifyResult, error) {
	it := newEntryIterator(v.txn, badger.IteratorOptions{PrefetchValues: true, PrefetchSize: 256})
	defer it.Close()
	var n int64 // entries verified
	total := v.meta
	if err := v.checkpointsUpTo(0); err != nil {
		return nil, err
	}
	for it.Rewind(); it.Valid(); it.Next() {
		seq := int64(binary.BigEndian.Uint64(it.Item().Key()[1:]))
		i := n + 1
		if seq != i {
			return nil, &TamperError{Kind: TamperDeleted, Seq: i}
		}
		value, err := entryValue(it.Item())
		if errors.Is(err, errCorrupt) {
			// Compressed bytes that do not decompress were changed.
			return nil, &TamperError{Kind: TamperModified, Seq: i}
		}
		if err != nil {
			return nil, fmt.Errorf("verify: read entry %d: %w", i, err)
		}
		if err := v.leaf(i, value); err != nil {
			return nil, err
		}
		if v.replay != nil {
			if err := v.replay.entry(uint64(i), value); err != nil {
				return nil, err
			}
		}
		n = i
		if err := v.checkpointsUpTo(n); err != nil {
			return nil, err
		}
		if n%v.cfg.ProgressEvery == 0 {
			if v.cfg.Progress != nil {
				v.cfg.Progress(n, max(total, n))
			}
			if err := v.ctx.Err(); err != nil {
				return nil, err
			}
		}
	}
	// Nothing may remain of a longer ledger: no leaf hash of entry n+1, no
	// tile beyond the full ones.
	if v.nextHashIndex() == tlog.StoredHashIndex(0, n) {
		return nil, &TamperError{Kind: TamperDeleted, Seq: n + 1}
	}
	if _, err := v.txn.Get(tileKey(0, n/tileWidth)); err == nil {
		return nil, &TamperError{Kind: TamperDeleted, Seq: n + 1}
	} else if !errors.Is(err, badger.ErrKeyNotFound) {
		return nil, fmt.Errorf("verify: %w", err)
	}
	if size, err := v.cps.largest(v.cfg.Verifier); err != nil {
		return nil, err
	} else if size > n {
		return nil, &TamperError{Kind: TamperRolledBack, Size: size, LedgerSize: n}
	}
	if v.meta > n {
		return nil, &TamperError{Kind: TamperDeleted, Seq: n + 1}
	}
	if v.cfg.Progress != nil && n%v.cfg.ProgressEvery != 0 {
		v.cfg.Progress(n, max(total, n))
	}
	root, err := tlog.TreeHash(n, v)
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	res := &VerifyResult{Size: n, Root: root, Checkpoints: v.checked, Latest: v.latest}
	if v.replay != nil {
		if res.Records, err = v.replay.compare(uint64(n)); err != nil {
			return nil, fmt.Errorf("verify: %w", err)
		}
		res.Unchecked = v.replay.unchecked
		if v.replay.total > 0 {
			return nil, &StateError{Differences: v.replay.diffs, Total: v.replay.total}
		}
	}
	return res, nil
}

// leaf recomputes the tree hashes that entry i's value adds and compares
// them with the stored ones: those of full tiles, and the 'h' keys of a
// ledger written before tiles.
func (v *verifier) leaf(i int64, value []byte) error {
	if i > v.meta {
		return &TamperError{Kind: TamperInserted, Seq: i}
	}
	leaf := tlog.RecordHash(value)
	computed, err := tlog.StoredHashesForRecordHash(i-1, leaf, v)
	if err != nil {
		return fmt.Errorf("verify: entry %d: %w", i, err)
	}
	base := tlog.StoredHashIndex(0, i-1)
	for j, want := range computed {
		idx := base + int64(j)
		if got, ok := v.nextHash(idx); ok {
			switch {
			case got != want && j == 0:
				return v.diagnose(i, leaf)
			case got != want:
				return &TamperError{Kind: TamperTreeHash, Seq: i, Detail: fmt.Sprintf("tree hash %d differs from the one recomputed", idx)}
			}
		}
		if j%tileHeight == 0 {
			if err := v.tileHash(i, j/tileHeight, (i-1)>>j, want, leaf); err != nil {
				return err
			}
		}
		v.frontier[j].index, v.frontier[j].hash, v.frontier[j].ok = idx, want, true
	}
	return nil
}

// tileHash compares hash number k of tile level level, recomputed as want
// when entry i (of leaf hash leaf) was added, with the stored one if its
// tile is full in the ledger's tree.
func (v *verifier) tileHash(i int64, level int, k int64, want, leaf tlog.Hash) error {
	n := k / tileWidth
	if !tileFull(v.meta, level, n) {
		// In the partial tile, not stored; unless the ledger was longer
		// (and its entry count lowered): then its tile is compared.
		if ok, err := v.tileStored(level, n); err != nil || !ok {
			return err
		}
	}
	for len(v.tile) <= level {
		v.tile = append(v.tile, struct {
			n    int64
			data []byte
		}{n: -1})
	}
	t := &v.tile[level]
	if t.n != n {
		data, err := readTile(v.txn, level, n)
		switch {
		case errors.Is(err, errCorrupt):
			return &TamperError{Kind: TamperTreeHash, Seq: i, Detail: strings.TrimPrefix(err.Error(), "store: ")}
		case errors.Is(err, errTileMissing):
			return &TamperError{Kind: TamperTreeHash, Seq: i, Detail: fmt.Sprintf("tree tile %d/%d missing", level, n)}
		case err != nil:
			return fmt.Errorf("verify: entry %d: %w", i, err)
		}
		t.n, t.data = n, data
	}
	off := int(k%tileWidth) * tlog.HashSize
	if bytes.Equal(t.data[off:off+tlog.HashSize], want[:]) {
		return nil
	}
	if level == 0 {
		return v.diagnose(i, leaf)
	}
	return &TamperError{Kind: TamperTreeHash, Seq: i, Detail: fmt.Sprintf("tree tile %d/%d differs from the one recomputed", level, n)}
}

// tileStored reports whether tile n of tile level level has a 'T' key; it
// remembers the last answer of each level.
func (v *verifier) tileStored(level int, n int64) (bool, error) {
	for len(v.absent) <= level {
		v.absent = append(v.absent, -1)
	}
	if v.absent[level] == n {
		return false, nil
	}
	_, err := v.txn.Get(tileKey(level, n))
	switch {
	case errors.Is(err, badger.ErrKeyNotFound):
		v.absent[level] = n
		return false, nil
	case err != nil:
		return false, fmt.Errorf("verify: %w", err)
	}
	return true, nil
}

// nextHashIndex returns the index of the next stored hash, -1 if none.
func (v *verifier) nextHashIndex() int64 {
	if !v.hashes.Valid() {
		return -1
	}
	return int64(binary.BigEndian.Uint64(v.hashes.Item().Key()[1:]))
}

// nextHash returns the stored hash number idx if it is the next one (a
// value that is not a hash is returned as the zero hash, which differs).
func (v *verifier) nextHash(idx int64) (tlog.Hash, bool) {
	var h tlog.Hash
	if v.nextHashIndex() != idx {
		return h, false
	}
	v.hashes.Item().Value(func(b []byte) error {
		if len(b) == tlog.HashSize {
			copy(h[:], b)
		}
		return nil
	})
	v.hashes.Next()
	return h, true
}

// diagnose names what happened at entry i, whose leaf hash is not the one
// stored for leaf i, by looking for it (and for the next entry's) among the
// stored leaves.
func (v *verifier) diagnose(i int64, leaf tlog.Hash) error {
	if v.leafIndex == nil {
		v.leafIndex = make(map[tlog.Hash]int64)
		it := v.txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixTreeHash}, PrefetchValues: true})
		for it.Rewind(); it.Valid(); it.Next() {
			level, n := tlog.SplitStoredHashIndex(int64(binary.BigEndian.Uint64(it.Item().Key()[1:])))
			if level != 0 {
				continue
			}
			var h tlog.Hash
			if err := it.Item().Value(func(b []byte) error { copy(h[:], b); return nil }); err == nil {
				v.leafIndex[h] = n + 1
			}
		}
		it.Close()
		it = v.txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixTile, 0}, PrefetchValues: true})
		for it.Rewind(); it.Valid(); it.Next() {
			n := int64(binary.BigEndian.Uint64(it.Item().Key()[2:]))
			it.Item().Value(func(b []byte) error {
				for k := 0; k+tlog.HashSize <= len(b); k += tlog.HashSize {
					v.leafIndex[tlog.Hash(b[k:k+tlog.HashSize])] = n*tileWidth + int64(k/tlog.HashSize) + 1
				}
				return nil
			})
		}
		it.Close()
	}
	at, found := v.leafIndex[leaf]
	next := int64(-1)
	if item, err := getEntryItem(v.txn, uint64(i+1)); err == nil {
		if value, err := entryValue(item); err == nil {
			if s, ok := v.leafIndex[tlog.RecordHash(value)]; ok {
				next = s
			}
		}
	}
	switch {
	case found && at == i+1 && next != i:
		// Entry i holds what was entry i+1, and the next holds what was i+2:
		// entry i was deleted and the rest renumbered.
		return &TamperError{Kind: TamperDeleted, Seq: i}
	case found && at > i:
		return &TamperError{Kind: TamperReordered, Seq: i}
	case !found && next == i:
		// The next entry holds what was entry i: entry i is new.
		return &TamperError{Kind: TamperInserted, Seq: i}
	}
	return &TamperError{Kind: TamperModified, Seq: i}
}

// checkpointsUpTo checks every checkpoint of size at most n against the
// tree of size n recomputed so far (sizes below n were checked earlier).
func (v *verifier) checkpointsUpTo(n int64) error {
	for {
		cp, ok, err := v.cps.peek(v.cfg.Verifier)
		if err != nil || !ok || cp.Size > n {
			return err
		}
		v.cps.next()
		if cp.Size == 0 {
			continue
		}
		root, err := tlog.TreeHash(n, v)
		if err != nil {
			return fmt.Errorf("verify: %w", err)
		}
		if root != cp.Root {
			return &TamperError{Kind: TamperCheckpoint, Seq: v.lastGood + 1, Size: cp.Size}
		}
		v.lastGood = cp.Size
		v.checked++
		v.latest = cp.Size
	}
}

// cpCursor yields the stored and the auditor's checkpoints in size order,
// each verified.
type cpCursor struct {
	it       *badger.Iterator
	external []checkpoint.Checkpoint // verified, sorted by size
	head     *checkpoint.Checkpoint  // verified stored checkpoint at it, if read
}

func newCPCursor(txn *badger.Txn, external [][]byte, verifier note.Verifier) (*cpCursor, error) {
	var ext []checkpoint.Checkpoint
	for k, msg := range external {
		cp, err := checkpoint.Open(msg, verifier)
		if err != nil {
			return nil, fmt.Errorf("verify: checkpoint given (%d): %w", k+1, err)
		}
		ext = append(ext, cp)
	}
	slices.SortFunc(ext, func(a, b checkpoint.Checkpoint) int { return int(a.Size - b.Size) })
	c := &cpCursor{
		it:       txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixCheckpoint}, PrefetchValues: true, PrefetchSize: 100}),
		external: ext,
	}
	c.it.Rewind()
	return c, nil
}

func (c *cpCursor) close() { c.it.Close() }

// stored returns the verified stored checkpoint at the iterator.
func (c *cpCursor) stored(v note.Verifier) (*checkpoint.Checkpoint, error) {
	if c.head != nil || !c.it.Valid() {
		return c.head, nil
	}
	size := int64(binary.BigEndian.Uint64(c.it.Item().Key()[1:]))
	msg, err := c.it.Item().ValueCopy(nil)
	if err != nil {
		return nil, fmt.Errorf("verify: read checkpoint %d: %w", size, err)
	}
	cp, err := checkpoint.Open(msg, v)
	if err != nil {
		return nil, &TamperError{Kind: TamperBadSignature, Size: size, Detail: err.Error()}
	}
	if cp.Size != size {
		return nil, &TamperError{Kind: TamperBadSignature, Size: size, Detail: fmt.Sprintf("stored as size %d but signed for size %d", size, cp.Size)}
	}
	c.head = &cp
	return c.head, nil
}

// peek returns the next checkpoint in size order without consuming it.
func (c *cpCursor) peek(v note.Verifier) (checkpoint.Checkpoint, bool, error) {
	st, err := c.stored(v)
	if err != nil {
		return checkpoint.Checkpoint{}, false, err
	}
	switch {
	case st != nil && (len(c.external) == 0 || st.Size <= c.external[0].Size):
		return *st, true, nil
	case len(c.external) > 0:
		return c.external[0], true, nil
	}
	return checkpoint.Checkpoint{}, false, nil
}

// next consumes the checkpoint peek returned.
func (c *cpCursor) next() {
	if c.head != nil && (len(c.external) == 0 || c.head.Size <= c.external[0].Size) {
		c.head = nil
		c.it.Next()
		return
	}
	if len(c.external) > 0 {
		c.external = c.external[1:]
	}
}

// largest consumes the remaining checkpoints, verifying each, and returns
// the largest size among them (0 if none).
func (c *cpCursor) largest(v note.Verifier) (int64, error) {
	var size int64
	for {
		cp, ok, err := c.peek(v)
		if err != nil || !ok {
			return size, err
		}
		size = max(size, cp.Size)
		c.next()
	}
}
