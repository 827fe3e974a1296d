package store

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"

	"github.com/sharelog/sharelog/internal/ledger"
)

// Config configures a Store.
type Config struct {
	// Dir is the Badger directory. It is created (mode 0700) if absent.
	Dir string
	// KeyFile holds the site secret that keys the hashes of subject
	// identifiers: 32 random bytes, created with mode 0600 on first start and
	// loaded afterwards. Open refuses a key file of the wrong size or one that
	// its group or others may access. Losing it makes the subject index
	// unusable; keep it with the backups of Dir, but not in the same place.
	KeyFile string
	// Logger receives the store's logs; nil means slog.Default().
	Logger *slog.Logger
	// Deadlines says when rectification, erasure and restriction notices
	// are due; the zero value means one calendar month after the decision.
	Deadlines ledger.Deadlines
	// MasterKey wraps the per-entry data keys that seal personal data
	// (MasterKeyLen bytes). When nil it is read from MasterKeyFile, which is
	// created like KeyFile (32 random bytes, mode 0600) on first start; an
	// empty MasterKeyFile means master.key beside KeyFile. Losing it makes
	// every sealed part unreadable; keep it apart from backups of Dir.
	MasterKey     []byte
	MasterKeyFile string
	// EncryptionKey, when set (16, 24 or 32 bytes), turns on Badger's
	// encryption at rest (AES-CTR of every table and log file). It must be
	// the same on every open, and Verify needs it too.
	EncryptionKey []byte
	// EncryptAtRest turns on Badger's encryption at rest with a key derived
	// from the master key (AtRestKey), when EncryptionKey is nil.
	//
	// Encryption at rest is chosen when the ledger is created: Open
	// returns ErrLedgerUnencrypted for a ledger created without it when
	// Config asks for it, and ErrLedgerEncrypted for an encrypted one opened
	// without its key.
	EncryptAtRest bool
	// Secrets, when set, gives the salts and data keys that enter entries
	// instead of crypto/rand: the store shared by replicas, so that they
	// record identical entries (secrets.go). nil for a sharelog on its own.
	Secrets Secrets

	// Tests: the least capacity of the dedupe filter (seenMinCapacity when
	// 0); a channel on which each build of it, its snapshot taken, sends a
	// channel whose closing lets it scan (seen.go).
	seenCapacity uint
	seenGate     chan chan struct{}
}

// AtRestKey derives the key of Badger's encryption at rest from the master
// key: SHA-256 of a label and the master key. It keeps the data keys' and
// the files' encryption under one secret to keep apart from the data.
func AtRestKey(master []byte) []byte {
	h := sha256.New()
	h.Write([]byte("sharelog badger encryption at rest\x00"))
	h.Write(master)
	return h.Sum(nil)
}

// LoadMasterKey reads (or creates, on first start) the master key file.
func LoadMasterKey(path string) ([]byte, error) {
	k, _, err := loadSiteSecret(path)
	return k, err
}

// ErrBatchTooBig is returned (wrapped) by Batch.Append when the batch has
// outgrown one Badger transaction. Discard the batch and apply the same
// events again in smaller batches.
var ErrBatchTooBig = errors.New("store: batch too big for one transaction")

// Store is the ledger kept in Badger. Queries may run concurrently with each
// other and with the one writer (see Begin).
type Store struct {
	db     *badger.DB
	keys   *keyring // wraps the data keys that seal personal data
	secret []byte
	log    *slog.Logger
	now    func() time.Time
	// secrets is Config.Secrets, nil for a sharelog on its own.
	secrets Secrets

	deadlines ledger.Deadlines

	writer sync.Mutex // held from Begin to Commit or Discard, passed on by CommitNext
	// writerWanted counts those waiting for writer besides the batches
	// (Compact, a larger dedupe filter's build: lockWriter): CommitNext
	// then commits and lets go of it, which a steady load never would.
	writerWanted atomic.Int32
	// tail is the Merkle tree's partial tiles and right edge as of the
	// last commit of a batch that added entries, nil until then (tree.go):
	// set by the writer, read by anyone, never changed once set.
	tail atomic.Pointer[treeTail]
	// salts holds committed subjects' salts for the writer; guarded by
	// writer (saltcache.go).
	salts saltCache
	// sealers holds subjects' keys ready to seal with, for the appending
	// batch; guarded by writer (sealcache.go).
	sealers sealerCache
	// marked holds the subjects that may have erasure markers, for the
	// appending batch (marked.go).
	marked markedSubjects
	// seen is the filter of the dedupe keys the ledger holds, which spares
	// the writer the lookup of a new event's (seen.go).
	seen seen
	// side is held for reading by the writes made beside the one writer
	// (checkpoints, scrub records) and for writing by Compact, during
	// which Badger refuses writes.
	side sync.RWMutex

	applied    atomic.Uint64
	count      atomic.Uint64
	indexedBy  atomic.Uint64                               // the indexedByKey record; 0 while the ledger has none
	profiles   profileCache                                // the summaries' profiles the ledger holds (profiles.go)
	legacyY    bool                                        // tests: write y keys for disclosures and no indexedByKey record, as ledgers written before did
	recipients atomic.Pointer[map[string]ledger.Recipient] // committed registry; never mutated

	mu     sync.Mutex
	wake   chan struct{} // closed and replaced on every commit
	closed chan struct{}
	once   sync.Once
}

// Open opens (or creates) the ledger in cfg.Dir with the site secret in
// cfg.KeyFile.
func Open(cfg Config) (*Store, error) {
	s, err := open(cfg)
	if err != nil {
		return nil, err
	}
	s.startSeen(cfg)
	return s, nil
}

// open is Open without the dedupe filter, which Restore starts once the
// backup is loaded.
func open(cfg Config) (*Store, error) {
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	logger = logger.With("system", "store")
	if cfg.Dir == "" {
		return nil, errors.New("store: Dir is required")
	}
	if err := cfg.Deadlines.Validate(); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	secret, created, err := loadSiteSecret(cfg.KeyFile)
	if err != nil {
		return nil, err
	}
	if created {
		logger.Info("created site secret", "path", cfg.KeyFile)
	}

	master := cfg.MasterKey
	if master == nil {
		path := cfg.MasterKeyFile
		if path == "" {
			path = filepath.Join(filepath.Dir(cfg.KeyFile), "master.key")
		}
		if master, created, err = loadSiteSecret(path); err != nil {
			return nil, err
		}
		if created {
			logger.Info("created master key", "path", path)
		}
	}
	keys, err := newKeyring(master)
	if err != nil {
		return nil, err
	}
	if cfg.EncryptAtRest && cfg.EncryptionKey == nil {
		cfg.EncryptionKey = AtRestKey(master)
	}

	db, err := badger.Open(badgerOptions(cfg.Dir, logger).WithEncryptionKey(cfg.EncryptionKey))
	if err != nil {
		return nil, fmt.Errorf("store: open badger: %w", atRestError(cfg.Dir, cfg.EncryptionKey, err))
	}
	if err := openFormat(db, cfg.Dir); err != nil { // format.go
		db.Close()
		return nil, err
	}
	s := &Store{
		db:        db,
		keys:      keys,
		secrets:   cfg.Secrets,
		secret:    secret,
		log:       logger,
		now:       time.Now,
		deadlines: cfg.Deadlines,
		wake:      make(chan struct{}),
		closed:    make(chan struct{}),
	}
	if err := s.load(); err != nil {
		db.Close()
		return nil, err
	}
	logger.Info("ledger opened", "dir", cfg.Dir, "applied", s.Applied(), "entries", s.Count(),
		"recipients", len(*s.recipients.Load()))
	return s, nil
}

// tableCompression compresses Badger's tables: Snappy, not ZSTD. What the
// tables hold (keys, subject summaries, value pointers) is rewritten by
// every compaction, and with ledgers of millions of events compactions are
// most of Badger's work: in a 10M-event ingest ZSTD's compression and
// decompression took 12 µs of CPU per event, more than a tenth of the
// whole. Snappy costs about 6% more bytes on disk (593-600 ledger bytes per
// event against 559-564) and gives up nothing at 1M; at 10M it takes 5-22%
// more events per second. The merges of the larger levels stall the ingest
// for seconds with either: over 60 s windows at 10,000 events/s, p99
// publish-to-queryable 3.8-4.6 s with Snappy and 1.9-6.1 s with ZSTD. The
// figures are in docs/performance-history.md (ninth and tenth rounds). Badger
// records each table's
// compression, so a ledger written with ZSTD is read as it is, and its
// tables turn to Snappy as compactions rewrite them. Tests that search the
// files for deleted bytes turn it off, so that compression cannot hide
// them.
var tableCompression = options.Snappy

// valueThreshold sends entries to Badger's value log, written once, while
// the index values stay in the LSM tree. Entries are stored compressed
// (packEntry): 100,000 disclosures of the test workload, 650-810 bytes,
// keep 384-447 (1st percentile to maximum), while the index values are far
// smaller (subject summaries 75-171 bytes before profiles were kept apart,
// mostly under 64 since: a threshold of 64 sent almost none to the value
// log; recipients about 110, keys, salts and hashes 8-60). In the LSM tree
// every compaction rewrote and compressed the entries again. The value log
// is never rewritten but by RunValueLogGC (Compact): entries are written
// once and never deleted, so it holds little garbage.
const valueThreshold = 256

// badgerOptions tunes Badger for this workload on a small machine: every
// commit synced, one version per key, conflict detection (a batch opened
// before the commit of the one before reads a stale snapshot, and Badger
// refuses its commit when it read a key that commit wrote: pipeline.go),
// values of valueThreshold bytes or more in the value log, the rest in
// the LSM tree compressed (tableCompression) in 16 KiB blocks, modest memtables and
// caches. Memory goes mostly to table builders (memtable flushes and
// compactions hold whole tables), so memtables are 32 MiB and tables stay
// 2 MiB at every level: at 1M events the store's anonymous memory was
// 1,094 MiB against 1,791 MiB with 64 MiB memtables and tables doubling per
// level, at the same append rate.
//
// Level 0 holds up to 8 tables (Badger's writes stall at 16) before they
// are merged into the base level. Most keys are hash-ordered, so every
// level-0 table spans the whole key space and every L0->Lbase compaction
// rewrites (decrypts, decompresses, recompresses, encrypts) the whole base
// level, time-ordered keys included; twice the tables per merge halves
// those rewrites. At 1M events (sharelog bench --phases full, alternating
// runs on a shared 2-core machine at load 4-11) 8 tables (stall 16) took
// 167 and 195 µs of CPU per event against 176 and 242 for 4 (stall 12) in
// the neighbouring runs (main: 169-242 in 8 runs), who's p99 during
// compactions 8 and 6 ms against 190 and 124, ledger bytes per event 636
// against 635, anonymous memory 463 and 681 MiB against 577 and 665.
func badgerOptions(dir string, logger *slog.Logger) badger.Options {
	o := badger.DefaultOptions(dir)
	o.TableSizeMultiplier = 1 // no With method
	return o.
		WithSyncWrites(true).
		WithNumVersionsToKeep(1).
		WithDetectConflicts(true).
		WithCompression(tableCompression).
		WithBlockSize(16 << 10).
		WithValueThreshold(valueThreshold).
		WithMemTableSize(32 << 20).
		WithNumMemtables(3).
		WithNumLevelZeroTables(8).
		WithNumLevelZeroTablesStall(16).
		WithNumCompactors(2).
		WithNumGoroutines(2).
		WithBlockCacheSize(64 << 20).
		WithIndexCacheSize(32 << 20).
		WithMetricsEnabled(false).
		WithLogger(badgerLogger{logger.With("component", "badger")})
}

// load reads the meta record, the recipient registry and the subjects with
// erasure markers.
func (s *Store) load() error {
	reg := make(map[string]ledger.Recipient)
	err := s.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(metaKey)
		switch {
		case errors.Is(err, badger.ErrKeyNotFound):
		case err != nil:
			return err
		default:
			err = item.Value(func(v []byte) error {
				applied, count, err := decodeMeta(v)
				s.applied.Store(applied)
				s.count.Store(count)
				return err
			})
			if err != nil {
				return err
			}
		}
		s.indexedBy.Store(0)
		switch item, err := txn.Get(indexedByKey); {
		case errors.Is(err, badger.ErrKeyNotFound):
		case err != nil:
			return err
		default:
			err = item.Value(func(v []byte) error {
				n, err := decodeIndexedBy(v)
				s.indexedBy.Store(n)
				return err
			})
			if err != nil {
				return err
			}
		}
		s.marked = loadMarked(txn) // marked.go
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixRecipient}, PrefetchValues: true, PrefetchSize: 100})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			var r ledger.Recipient
			if err := it.Item().Value(func(v []byte) error { return json.Unmarshal(v, &r) }); err != nil {
				return err
			}
			reg[r.ID] = r
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: load ledger state: %w", err)
	}
	s.recipients.Store(&reg)
	return nil
}

// Close closes the ledger. An open batch must be committed or discarded
// first. WaitApplied calls still waiting return EUNAVAILABLE.
func (s *Store) Close() error {
	var err error
	s.once.Do(func() {
		close(s.closed)
		s.closeSeen()
		err = s.db.Close()
		if err != nil {
			err = fmt.Errorf("store: close badger: %w", err)
		}
	})
	return err
}

// Applied returns the last stream sequence applied to the ledger, 0 if none.
// It reads memory only.
func (s *Store) Applied() uint64 { return s.applied.Load() }

// Count returns the number of ledger entries, which is the Seq of the last
// one. It reads memory only.
func (s *Store) Count() uint64 { return s.count.Load() }

// WaitApplied waits until Applied() >= streamSeq. It returns ctx's error if
// ctx ends first, and EUNAVAILABLE if the store is closed first.
func (s *Store) WaitApplied(ctx context.Context, streamSeq uint64) error {
	for {
		s.mu.Lock()
		wake := s.wake
		s.mu.Unlock()
		// Checked after taking the channel: a commit that raised Applied
		// before this point is seen here, and one after it closes wake.
		if s.Applied() >= streamSeq {
			return nil
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return ctx.Err()
		case <-s.closed:
			return ledger.Errorf(ledger.EUNAVAILABLE, "ledger is closed")
		}
	}
}

// published makes a commit visible: new counters, then wakes WaitApplied
// callers.
func (s *Store) published(applied, count uint64) {
	// Count before Applied: a reader that loads Applied and then Count
	// (the stream-keep job, cmd/sharelog/streamkeep.go) never sees an
	// applied stream sequence whose entries the count leaves out.
	s.count.Store(count)
	s.applied.Store(applied)
	s.mu.Lock()
	close(s.wake)
	s.wake = make(chan struct{})
	s.mu.Unlock()
}

// badgerLogger passes Badger's logs to slog. Badger's info messages (table
// and replay housekeeping) go to debug.
type badgerLogger struct{ l *slog.Logger }

func (b badgerLogger) Errorf(f string, a ...any) { b.log(slog.LevelError, f, a) }
func (b badgerLogger) Warningf(f string, a ...any) {
	b.log(slog.LevelWarn, f, a)
}
func (b badgerLogger) Infof(f string, a ...any)  { b.log(slog.LevelDebug, f, a) }
func (b badgerLogger) Debugf(f string, a ...any) { b.log(slog.LevelDebug-4, f, a) }

func (b badgerLogger) log(level slog.Level, f string, a []any) {
	ctx := context.Background()
	if !b.l.Enabled(ctx, level) {
		return
	}
	b.l.Log(ctx, level, strings.TrimSpace(fmt.Sprintf(f, a...)))
}

// Compacting reports whether Badger has compactions to catch up on: a level
// of its LSM tree over its target size, or too many memtable flushes waiting
// in level 0. A burst of writes leaves some; until they are done they take
// CPU from ingest and queries.
func (s *Store) Compacting() bool {
	for _, l := range s.db.Levels() {
		if l.Score >= 1 {
			return true
		}
	}
	return false
}
