package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
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
	Deadlines Deadlines
}

// ErrBatchTooBig is returned (wrapped) by Batch.Append when the batch has
// outgrown one Badger transaction. Discard the batch and apply the same
// events again in smaller batches.
var ErrBatchTooBig = errors.New("store: batch too big for one transaction")

// Store is the ledger kept in Badger. Queries may run concurrently with each
// other and with the one writer (see Begin).
type Store struct {
	db     *badger.DB
	secret []byte
	log    *slog.Logger
	now    func() time.Time

	deadlines Deadlines

	writer sync.Mutex // held from Begin to Commit or Discard

	applied    atomic.Uint64
	count      atomic.Uint64
	recipients atomic.Pointer[map[string]ledger.Recipient] // committed registry; never mutated

	mu     sync.Mutex
	wake   chan struct{} // closed and replaced on every commit
	closed chan struct{}
	once   sync.Once
}

// Open opens (or creates) the ledger in cfg.Dir with the site secret in
// cfg.KeyFile.
func Open(cfg Config) (*Store, error) {
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

	db, err := badger.Open(badgerOptions(cfg.Dir, logger))
	if err != nil {
		return nil, fmt.Errorf("store: open badger: %w", err)
	}
	s := &Store{
		db:        db,
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

// badgerOptions tunes Badger for this workload on a small machine: every
// commit synced, one version per key, no conflict detection (one writer),
// events up to 32 KiB kept in the LSM tree where they are compressed with
// ZSTD, modest memtables and caches.
func badgerOptions(dir string, logger *slog.Logger) badger.Options {
	return badger.DefaultOptions(dir).
		WithSyncWrites(true).
		WithNumVersionsToKeep(1).
		WithDetectConflicts(false).
		WithCompression(options.ZSTD).
		WithZSTDCompressionLevel(1).
		WithValueThreshold(32 << 10).
		WithMemTableSize(64 << 20).
		WithNumMemtables(3).
		WithNumLevelZeroTables(4).
		WithNumLevelZeroTablesStall(12).
		WithNumCompactors(2).
		WithNumGoroutines(2).
		WithBlockCacheSize(64 << 20).
		WithIndexCacheSize(32 << 20).
		WithMetricsEnabled(false).
		WithLogger(badgerLogger{logger.With("component", "badger")})
}

// load reads the meta record and the recipient registry.
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

// published makes a commit visible: new counters and registry, then wakes
// WaitApplied callers.
func (s *Store) published(applied, count uint64, reg *map[string]ledger.Recipient) {
	if reg != nil {
		s.recipients.Store(reg)
	}
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
