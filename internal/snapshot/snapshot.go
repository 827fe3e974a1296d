// Package snapshot keeps snapshots of the ledger in NATS, so that a new or
// lost replica rebuilds itself from the newest one plus the stream after it
// (DESIGN.md principle 1; issue 15 item 5).
//
// A snapshot is a Badger backup of the ledger at a committed position
// (store.Backup), compressed (zstd) and encrypted by sharelog before it
// leaves the process, and
// stored as one object of the JetStream object store bucket
// SHARELOG_SNAPSHOTS. The encryption is age's (filippo.io/age: a
// ChaCha20-Poly1305 STREAM of 64 KiB chunks, each authenticated, the end
// too), with a scrypt recipient whose passphrase is a 256-bit key derived
// from the master key (Key): every replica holding the master key can read
// a snapshot, and nothing else can. The object's metadata, in clear, holds
// only the position (applied stream sequence, entry count, tree root), the
// replica that took it and a check value of the site secret: no personal
// data.
//
// The object is first stored under a pending name and renamed to its final
// name, the applied stream sequence in 20 digits, only once complete; so
// the newest complete snapshot is the one with the greatest name. Once a
// snapshot is complete the older ones are deleted (Config.Keep keeps more):
// an older snapshot still holds the salts of people forgotten since it was
// taken, so a forgetting reaches the snapshots at the next snapshot.
//
// Restore reads a snapshot into a directory of its own, checks that it
// holds exactly the position its metadata records (entry count, applied
// sequence, and the tree root recomputed from the restored ledger), and
// only then moves it into place: a snapshot that fails to decrypt or to
// verify is refused with an error naming it, never half loaded. The
// replica then checks itself against the other replicas' checkpoints once
// its ingest runs (package witness; cmd/sharelog verifyRestored).
package snapshot

import (
	"bufio"
	"context"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"filippo.io/age"
	"github.com/klauspost/compress/zstd"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/sharelog/sharelog/internal/store"
)

// Bucket is the object store bucket of the snapshots.
const Bucket = "SHARELOG_SNAPSHOTS"

// pendingPrefix starts the name of a snapshot being written.
const pendingPrefix = "pending."

// Metadata keys of a snapshot object.
const (
	metaApplied  = "applied"
	metaCount    = "count"
	metaRoot     = "root"
	metaReplica  = "replica"
	metaKeyCheck = "site-key-check"
	metaFormat   = "format"
	formatV1     = "badger-backup+zstd+age-scrypt/1"
)

// chunkSize is the size of the object store's messages (its default).
const chunkSize = 128 << 10

// scryptWorkFactor is the log2 of scrypt's work factor. The passphrase is
// a 256-bit key, not a password: it needs no stretching, only the format.
const scryptWorkFactor = 10

// Config configures Snapshots.
type Config struct {
	// Replicas is the bucket's JetStream replication (default 1).
	Replicas int
	// Keep is how many complete snapshots are kept (default 1).
	Keep int
	// Replica names the replica taking snapshots, recorded in each.
	Replica string
	// RestoreTimeout bounds a restore's read of a snapshot when its
	// context has no deadline (default 1h).
	RestoreTimeout time.Duration
	// Logger receives the logs; nil means slog.Default().
	Logger *slog.Logger
}

// Snapshots takes and restores snapshots in the bucket.
type Snapshots struct {
	obs  jetstream.ObjectStore
	pass string // age passphrase, from the master key
	cfg  Config
	log  *slog.Logger
}

// Info describes a complete snapshot.
type Info struct {
	Name     string
	Position store.Position
	Replica  string
	KeyCheck string
	Size     uint64 // bytes in the object store (encrypted)
	Taken    time.Time
}

// Key derives the snapshots' key from the master key: HKDF-SHA256 with its
// own label, so that it is no other key of sharelog's.
func Key(master []byte) ([]byte, error) {
	return hkdf.Key(sha256.New, master, nil, "sharelog snapshot key", 32)
}

// New creates the bucket, or opens it, and returns Snapshots encrypting
// with a key derived from master.
func New(ctx context.Context, js jetstream.JetStream, master []byte, cfg Config) (*Snapshots, error) {
	if cfg.Replicas <= 0 {
		cfg.Replicas = 1
	}
	if cfg.Keep <= 0 {
		cfg.Keep = 1
	}
	if cfg.RestoreTimeout <= 0 {
		cfg.RestoreTimeout = time.Hour
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	key, err := Key(master)
	if err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	obs, err := js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket:      Bucket,
		Description: "sharelog ledger snapshots, encrypted (package snapshot)",
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
	})
	if err == nil {
		obs, err = leaderReads(ctx, js)
	}
	if err != nil {
		return nil, fmt.Errorf("snapshot: bucket %s: %w", Bucket, err)
	}
	return &Snapshots{obs: obs, pass: hex.EncodeToString(key), cfg: cfg, log: cfg.Logger.With("system", "snapshot")}, nil
}

// leaderReads turns off direct gets on the bucket's stream, which nats.go
// turns on for every object store, and returns the bucket opened again to
// read through the stream's leader. On a replicated bucket
// (--stream-replicas) any server holding it answers a direct get, a
// follower that has not yet applied what the leader acknowledged included,
// and that one says "not found" of an object stored a moment ago. Take
// renames the object it has just stored, Restore reads the snapshot List
// has just listed, and List asks first whether there is any object: each
// must see the bucket as its leader does (TestTakeWithStaleReplica). A
// replica starting later turns direct gets on again for a moment
// (CreateOrUpdateObjectStore), which changes nothing for the buckets
// opened already: they read through the leader.
func leaderReads(ctx context.Context, js jetstream.JetStream) (jetstream.ObjectStore, error) {
	stream, err := js.Stream(ctx, "OBJ_"+Bucket)
	if err != nil {
		return nil, err
	}
	if cfg := stream.CachedInfo().Config; cfg.AllowDirect {
		cfg.AllowDirect = false
		if _, err := js.UpdateStream(ctx, cfg); err != nil {
			return nil, err
		}
	}
	return js.ObjectStore(ctx, Bucket)
}

// Take takes a snapshot of st, stores it and deletes the older ones.
func (s *Snapshots) Take(ctx context.Context, st *store.Store) (Info, error) {
	start := time.Now()
	pending := pendingPrefix + strconv.FormatInt(start.UnixNano(), 10)
	rec, err := age.NewScryptRecipient(s.pass)
	if err != nil {
		return Info{}, fmt.Errorf("snapshot: %w", err)
	}
	rec.SetWorkFactor(scryptWorkFactor)

	// The backup is encrypted as it is written, into a pipe that the
	// object store reads in chunks: never whole in memory.
	pr, pw := io.Pipe()
	done := make(chan struct{})
	var pos store.Position
	go func() {
		defer close(done)
		// Whole chunks into the pipe: the object store makes a message
		// of each Read.
		buf := bufio.NewWriterSize(pw, chunkSize)
		enc, err := age.Encrypt(buf, rec)
		if err == nil {
			pos, err = backup(ctx, st, enc)
			if cerr := enc.Close(); err == nil {
				err = cerr
			}
		}
		if err == nil {
			err = buf.Flush()
		}
		pw.CloseWithError(err) // nil: EOF
	}()
	obj, err := s.obs.Put(ctx, jetstream.ObjectMeta{Name: pending, Opts: &jetstream.ObjectMetaOptions{ChunkSize: chunkSize}}, pr)
	pr.CloseWithError(errors.New("snapshot: object store stopped reading")) // unblocks the backup if Put failed
	<-done
	if err != nil {
		s.obs.Delete(context.WithoutCancel(ctx), pending) // a partial object, if any
		return Info{}, fmt.Errorf("snapshot: store: %w", err)
	}
	info := Info{
		Name:     name(pos.Applied),
		Position: pos,
		Replica:  s.cfg.Replica,
		KeyCheck: st.KeyCheck(),
		Size:     obj.Size,
		Taken:    start,
	}
	err = s.obs.UpdateMeta(ctx, pending, jetstream.ObjectMeta{Name: info.Name, Metadata: info.metadata()})
	if errors.Is(err, jetstream.ErrObjectAlreadyExists) {
		// A snapshot at this position exists already: this one adds nothing.
		s.obs.Delete(ctx, pending)
		return info, s.prune(ctx)
	}
	if err != nil {
		s.obs.Delete(context.WithoutCancel(ctx), pending)
		return Info{}, fmt.Errorf("snapshot: complete %s: %w", info.Name, err)
	}
	s.log.Info("snapshot taken", "name", info.Name, "applied", pos.Applied, "entries", pos.Count,
		"bytes", info.Size, "took", time.Since(start).Round(time.Millisecond))
	return info, s.prune(ctx)
}

// backup writes st's backup to w compressed with zstd: the ledger's clear
// parts compress (its sealed parts, ciphertext, do not).
func backup(ctx context.Context, st *store.Store, w io.Writer) (store.Position, error) {
	z, err := zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
	if err != nil {
		return store.Position{}, err
	}
	pos, err := st.Backup(ctx, z)
	if cerr := z.Close(); err == nil {
		err = cerr
	}
	return pos, err
}

// name is a complete snapshot's object name: the applied stream sequence,
// zero-padded so that names sort as positions do.
func name(applied uint64) string { return fmt.Sprintf("%020d", applied) }

func (i Info) metadata() map[string]string {
	return map[string]string{
		metaApplied:  strconv.FormatUint(i.Position.Applied, 10),
		metaCount:    strconv.FormatUint(i.Position.Count, 10),
		metaRoot:     i.Position.Root.String(),
		metaReplica:  i.Replica,
		metaKeyCheck: i.KeyCheck,
		metaFormat:   formatV1,
	}
}

// infoOf reads a complete snapshot's object info.
func infoOf(o *jetstream.ObjectInfo) (Info, error) {
	md := o.Metadata
	if md[metaFormat] != formatV1 {
		return Info{}, fmt.Errorf("snapshot %s: format %q, want %q", o.Name, md[metaFormat], formatV1)
	}
	applied, err1 := strconv.ParseUint(md[metaApplied], 10, 64)
	count, err2 := strconv.ParseUint(md[metaCount], 10, 64)
	root, err3 := tlog.ParseHash(md[metaRoot])
	if err := errors.Join(err1, err2, err3); err != nil {
		return Info{}, fmt.Errorf("snapshot %s: metadata: %w", o.Name, err)
	}
	return Info{
		Name:     o.Name,
		Position: store.Position{Applied: applied, Count: count, Root: root},
		Replica:  md[metaReplica],
		KeyCheck: md[metaKeyCheck],
		Size:     o.Size,
		Taken:    o.ModTime,
	}, nil
}

// List returns the complete snapshots, oldest first.
func (s *Snapshots) List(ctx context.Context) ([]Info, error) {
	objs, err := s.obs.List(ctx)
	if errors.Is(err, jetstream.ErrNoObjectsFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("snapshot: list %s: %w", Bucket, err)
	}
	var infos []Info
	for _, o := range objs {
		if strings.HasPrefix(o.Name, pendingPrefix) {
			continue
		}
		i, err := infoOf(o)
		if err != nil {
			return nil, err
		}
		infos = append(infos, i)
	}
	slices.SortFunc(infos, func(a, b Info) int { return strings.Compare(a.Name, b.Name) })
	return infos, nil
}

// Latest returns the newest complete snapshot, and false if there is none.
func (s *Snapshots) Latest(ctx context.Context) (Info, bool, error) {
	infos, err := s.List(ctx)
	if err != nil || len(infos) == 0 {
		return Info{}, false, err
	}
	return infos[len(infos)-1], true, nil
}

// pendingMaxAge is the age past which a pending object is taken for the
// remains of a snapshot that failed, and deleted.
const pendingMaxAge = time.Hour

// prune deletes every complete snapshot but the Keep newest, and pending
// objects older than pendingMaxAge.
func (s *Snapshots) prune(ctx context.Context) error {
	objs, err := s.obs.List(ctx)
	if errors.Is(err, jetstream.ErrNoObjectsFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("snapshot: list %s: %w", Bucket, err)
	}
	var complete []string
	for _, o := range objs {
		if strings.HasPrefix(o.Name, pendingPrefix) {
			if time.Since(o.ModTime) > pendingMaxAge {
				if err := s.obs.Delete(ctx, o.Name); err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
					return fmt.Errorf("snapshot: delete %s: %w", o.Name, err)
				}
			}
			continue
		}
		complete = append(complete, o.Name)
	}
	slices.Sort(complete)
	for _, n := range complete[:max(0, len(complete)-s.cfg.Keep)] {
		if err := s.obs.Delete(ctx, n); err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
			return fmt.Errorf("snapshot: delete %s: %w", n, err)
		}
		s.log.Info("older snapshot deleted", "name", n)
	}
	return nil
}

// Restore restores snapshot info into cfg.Dir and returns the ledger open.
// It loads the snapshot into cfg.Dir+".restore" (removed first, if a
// restore stopped there) and verifies it; only then does it move it to
// cfg.Dir, replacing the ledger there (one behind the stream, whose place
// the snapshot takes). A failure before that leaves cfg.Dir as it was.
func (s *Snapshots) Restore(ctx context.Context, info Info, cfg store.Config) (*store.Store, error) {
	start := time.Now()
	final := cfg.Dir
	cfg.Dir = final + ".restore"
	if err := os.RemoveAll(cfg.Dir); err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	st, err := s.load(ctx, info, cfg)
	if err == nil {
		err = st.Close()
	}
	if err == nil {
		err = replaceDir(cfg.Dir, final)
	}
	if err != nil {
		os.RemoveAll(cfg.Dir)
		return nil, fmt.Errorf("snapshot %s refused: %w", info.Name, err)
	}
	cfg.Dir = final
	if st, err = store.Open(cfg); err != nil {
		return nil, err
	}
	s.log.Info("ledger restored from snapshot", "name", info.Name, "applied", info.Position.Applied,
		"entries", info.Position.Count, "bytes", info.Size, "took", time.Since(start).Round(time.Millisecond))
	return st, nil
}

// replaceDir renames dir to final, moving aside and then removing what
// final held.
func replaceDir(dir, final string) error {
	old := final + ".replaced"
	if err := os.RemoveAll(old); err != nil {
		return err
	}
	if err := os.Rename(final, old); err != nil && !os.IsNotExist(err) {
		return err
	}
	if err := os.Rename(dir, final); err != nil {
		return err
	}
	return os.RemoveAll(old)
}

// load reads, decrypts and loads the snapshot into cfg.Dir, and verifies
// the ledger it gives.
func (s *Snapshots) load(ctx context.Context, info Info, cfg store.Config) (*store.Store, error) {
	// Without a deadline the object store gives the whole read its
	// default timeout (5 s): too short for a large ledger.
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.cfg.RestoreTimeout)
		defer cancel()
	}
	obj, err := s.obs.Get(ctx, info.Name)
	if err != nil {
		return nil, fmt.Errorf("get: %w", err)
	}
	defer obj.Close()
	id, err := age.NewScryptIdentity(s.pass)
	if err != nil {
		return nil, err
	}
	plain, err := age.Decrypt(obj, id)
	if err != nil {
		return nil, fmt.Errorf("decrypt (is the master key the one of the replica that took it?): %w", err)
	}
	z, err := zstd.NewReader(plain, zstd.WithDecoderConcurrency(1))
	if err != nil {
		return nil, err
	}
	defer z.Close()
	st, err := store.Restore(cfg, z)
	if err != nil {
		return nil, fmt.Errorf("decrypt and load: %w", err)
	}
	// age refuses data after the last chunk; reading the object to its end
	// makes the object store check its digest.
	if _, err := io.Copy(io.Discard, obj); err != nil {
		st.Close()
		return nil, fmt.Errorf("read: %w", err)
	}
	if err := s.verify(ctx, info, st); err != nil {
		st.Close()
		return nil, err
	}
	return st, nil
}

// verify checks a restored ledger against the snapshot's metadata, and its
// site secret against the snapshot's.
func (s *Snapshots) verify(ctx context.Context, info Info, st *store.Store) error {
	want := info.Position
	if st.Applied() != want.Applied || st.Count() != want.Count {
		return fmt.Errorf("restored ledger holds %d entries to stream sequence %d, its metadata says %d to %d",
			st.Count(), st.Applied(), want.Count, want.Applied)
	}
	size, root, err := st.TreeHead(ctx)
	if err != nil {
		return fmt.Errorf("tree head: %w", err)
	}
	if size != int64(want.Count) || root != want.Root {
		return fmt.Errorf("restored ledger's tree root at size %d is %s, the snapshot's is %s at %d", size, root, want.Root, want.Count)
	}
	// The root alone is read from the stored hashes: each entry must give them.
	if err := st.CheckTree(ctx); err != nil {
		return err
	}
	if kc := st.KeyCheck(); info.KeyCheck != "" && kc != info.KeyCheck {
		return fmt.Errorf("this replica's site secret is not the one of the replica that took it (site secret check %s, snapshot's %s): copy its site.key", kc, info.KeyCheck)
	}
	return nil
}

// Run takes a snapshot every every, when leader says this replica leads
// (nil: always), until ctx is done; it then returns nil. A snapshot that
// fails is logged and tried again at the next tick: a missed snapshot
// delays nothing but the next rebuild's catching up.
func (s *Snapshots) Run(ctx context.Context, st *store.Store, every time.Duration, leader func() bool) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if leader != nil && !leader() {
			continue
		}
		if latest, ok, err := s.Latest(ctx); err == nil && ok && latest.Position.Applied == st.Applied() {
			continue // nothing new since the newest snapshot
		}
		if _, err := s.Take(ctx, st); err != nil && ctx.Err() == nil {
			s.log.Error("snapshot failed", "err", err)
		}
	}
}
