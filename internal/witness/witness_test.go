package witness

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	natsio "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/sharelog/sharelog/internal/checkpoint"
	"github.com/sharelog/sharelog/internal/ledger"
	"github.com/sharelog/sharelog/internal/nats"
	"github.com/sharelog/sharelog/internal/store"
)

// Identical ledgers: a store stamps each entry with the time it records it
// (and would give each person a random salt), so two stores fed the same
// events differ until the fold is deterministic. These tests make replicas
// the way a replica is made from a snapshot: one ledger of recipient events
// (they name nobody) is built, closed and copied, directory and keys, once
// per replica.

// startJetStream starts one embedded NATS server with JetStream and returns
// a JetStream client with the witness stream made.
func startJetStream(t *testing.T) (*natsio.Conn, jetstream.JetStream) {
	t.Helper()
	ns, err := nats.StartServer(nats.ServerConfig{Listen: "127.0.0.1:0", StoreDir: filepath.Join(t.TempDir(), "js")}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Shutdown)
	nc, err := natsio.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if err := EnsureStream(context.Background(), js, 0); err != nil {
		t.Fatal(err)
	}
	if err := EnsureStream(context.Background(), js, 0); err != nil {
		t.Errorf("EnsureStream again: %v", err)
	}
	return nc, js
}

// storeConfig is the store configuration of a ledger under root.
func storeConfig(root string) store.Config {
	return store.Config{
		Dir:     filepath.Join(root, "ledger"),
		KeyFile: filepath.Join(root, "site.key"),
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}

// recipientEvent is a recipient registration: an entry that names nobody.
func recipientEvent(t testing.TB, id string) *ledger.Event {
	t.Helper()
	ts := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	data := &ledger.Recipient{ID: id, Name: "Recipient " + id, Role: ledger.RoleController, Country: "GB", Channel: ledger.Channel{Type: "manual"}}
	raw, err := json.Marshal(map[string]any{
		"specversion": "1.0", "id": "rcp-" + id, "source": "admin", "type": ledger.TypeRecipient,
		"time": ts, "datacontenttype": "application/json", "data": data,
	})
	if err != nil {
		t.Fatal(err)
	}
	return &ledger.Event{Source: "admin", ID: "rcp-" + id, Type: ledger.TypeRecipient, Time: ts, Data: data, Raw: raw}
}

// grow appends n recipient entries to the ledger under root (closed).
func grow(t *testing.T, root string, from, n int) {
	t.Helper()
	s, err := store.Open(storeConfig(root))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	b := s.Begin()
	defer b.Discard()
	seq := s.Applied()
	for i := range n {
		seq++
		if o, err := b.Append(seq, recipientEvent(t, fmt.Sprintf("r%d", from+i))); err != nil || o != ledger.Recorded {
			t.Fatalf("append: %v, %v", o, err)
		}
	}
	if err := b.Commit(seq); err != nil {
		t.Fatal(err)
	}
}

// copyDir copies the directory tree src to dst.
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o700)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		info, _ := d.Info()
		return os.WriteFile(target, b, info.Mode().Perm())
	})
	if err != nil {
		t.Fatal(err)
	}
}

// syncBuffer is a log destination safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// replica is one running replica: its ledger, its checkpoint key and its
// Witness's loop.
type replica struct {
	name    string
	root    string
	keyFile string
	store   *store.Store
	w       *Witness
	logs    *syncBuffer
	stop    func()
}

// start opens the replica's ledger, signs a checkpoint of it with its own
// key and starts its Witness.
func (r *replica) start(t *testing.T, js jetstream.JetStream) {
	t.Helper()
	var err error
	if r.store, err = store.Open(storeConfig(r.root)); err != nil {
		t.Fatal(err)
	}
	signer, vkey, _, err := checkpoint.LoadOrCreateKey(r.keyFile, "", "sharelog/"+r.name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := checkpoint.NewCheckpointer(r.store, signer, nil).Checkpoint(context.Background()); err != nil {
		t.Fatal(err)
	}
	r.logs = &syncBuffer{}
	r.w, err = New(Config{
		Replica: r.name, Tree: r.store, Key: vkey, Registerer: prometheus.NewRegistry(),
		Logger: slog.New(slog.NewTextHandler(r.logs, nil)),
	}, js)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.w.Run(ctx) }()
	r.stop = func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("%s: Run = %v", r.name, err)
		}
		r.store.Close()
		r.stop = func() {}
	}
	t.Cleanup(func() { r.stop() })
}

// replicas makes one replica per size: each a copy of one ledger grown to
// that size.
func replicas(t *testing.T, sizes ...int) []*replica {
	t.Helper()
	src := t.TempDir()
	var out []*replica
	have := 0
	for i, size := range sizes {
		if size < have {
			t.Fatal("sizes must not decrease")
		}
		grow(t, src, have, size-have)
		have = size
		r := &replica{name: fmt.Sprintf("r%d", i+1), root: t.TempDir(), keyFile: filepath.Join(t.TempDir(), "checkpoint.key")}
		copyDir(t, src, r.root)
		out = append(out, r)
	}
	return out
}

// tamper rewrites entry seq of the closed ledger under root as an insider
// with Badger access would: the entry changed, the Merkle tree's hashes
// recomputed over it and the signed checkpoints deleted, so that the
// replica signs its rewritten tree again. Key layout as package store has
// it (keys.go, tree.go): e seq(8) for entries, h index(8) for tree hashes,
// c size(8) for checkpoints.
func tamper(t *testing.T, root string, seq uint64) {
	t.Helper()
	db, err := badger.Open(badger.DefaultOptions(filepath.Join(root, "ledger")).WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	key := func(prefix byte, n uint64) []byte {
		k := []byte{prefix, 0, 0, 0, 0, 0, 0, 0, 0}
		binary.BigEndian.PutUint64(k[1:], n)
		return k
	}
	get := func(txn *badger.Txn, k []byte) []byte {
		item, err := txn.Get(k)
		if err != nil {
			t.Fatalf("get %q: %v", k, err)
		}
		v, _ := item.ValueCopy(nil)
		return v
	}
	// Entries are kept compressed; the tree is over their values.
	entry := func(txn *badger.Txn, n uint64) []byte {
		v, err := store.EntryValue(get(txn, store.EntryKey(n)))
		if err != nil {
			t.Fatalf("entry %d: %v", n, err)
		}
		return v
	}
	err = db.Update(func(txn *badger.Txn) error {
		v := entry(txn, seq)
		v[len(v)-3] ^= 1
		if err := txn.Set(store.EntryKey(seq), store.StoredEntry(v)); err != nil {
			return err
		}
		hashes := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
			out := make([]tlog.Hash, len(idx))
			for i, x := range idx {
				copy(out[i][:], get(txn, key('h', uint64(x))))
			}
			return out, nil
		})
		for n := int64(0); ; n++ {
			if _, err := txn.Get(store.EntryKey(uint64(n + 1))); errors.Is(err, badger.ErrKeyNotFound) {
				break
			}
			hs, err := tlog.StoredHashes(n, entry(txn, uint64(n+1)), hashes)
			if err != nil {
				return err
			}
			for j, h := range hs {
				if err := txn.Set(key('h', uint64(tlog.StoredHashIndex(0, n)+int64(j))), h[:]); err != nil {
					return err
				}
			}
		}
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{'c'}})
		var cps [][]byte
		for it.Rewind(); it.Valid(); it.Next() {
			cps = append(cps, it.Item().KeyCopy(nil))
		}
		it.Close()
		for _, k := range cps {
			if err := txn.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// eventually waits up to 15 s for cond.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within 15 s: %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func verify(t *testing.T, r *replica, timeout time.Duration) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return r.w.Verify(ctx)
}

// TestWitnessNamesATamperedReplica: three replicas of one ledger agree; one
// replica's ledger is rewritten and its tree re-signed; the two others name
// it, with the size and both roots, and it reports itself not ready.
func TestWitnessNamesATamperedReplica(t *testing.T) {
	_, js := startJetStream(t)
	rs := replicas(t, 10, 10, 10)
	for _, r := range rs {
		r.start(t, js)
	}
	for _, r := range rs {
		if err := verify(t, r, 15*time.Second); err != nil {
			t.Fatalf("%s: Verify of equal ledgers = %v", r.name, err)
		}
	}
	eventually(t, "every replica checks both others", func() bool {
		for _, r := range rs {
			for _, o := range rs {
				if o != r && value(r.w.checks.WithLabelValues(o.name, "match")) == 0 {
					return false
				}
			}
		}
		return true
	})
	good, _ := rs[0].store.RootAt(context.Background(), 10)
	for _, r := range rs {
		if err := r.w.Ready(); err != nil || len(r.w.Warnings()) > 0 || len(r.w.Differences()) > 0 {
			t.Errorf("%s with equal ledgers: Ready %v, warnings %q", r.name, err, r.w.Warnings())
		}
		if strings.Contains(r.logs.String(), "level=ERROR") {
			t.Errorf("%s logged an error with equal ledgers:\n%s", r.name, r.logs)
		}
	}

	// An insider rewrites entry 3 of r3 and restarts it.
	bad := rs[2]
	bad.stop()
	tamper(t, bad.root, 3)
	bad.start(t, js)
	badRoot, _ := bad.store.RootAt(context.Background(), 10)
	if badRoot == good {
		t.Fatal("tampering left the root unchanged")
	}
	for _, r := range rs[:2] {
		eventually(t, r.name+" names r3", func() bool { return len(r.w.Differences()) > 0 })
		want := Difference{Replica: "r3", Size: 10, Theirs: badRoot, Ours: good}
		if d := r.w.Differences(); len(d) != 1 || d[0] != want {
			t.Errorf("%s: differences %+v, want %+v", r.name, d, want)
		}
		if got := value(r.w.mismatch.WithLabelValues("r3")); got != 1 {
			t.Errorf("%s: sharelog_witness_mismatch{replica=r3} = %v, want 1", r.name, got)
		}
		if got := value(r.w.mismatch.WithLabelValues(rs[1-indexOf(rs, r)].name)); got != 0 {
			t.Errorf("%s: mismatch gauge of the honest replica = %v", r.name, got)
		}
		if err := r.w.Ready(); err != nil {
			t.Errorf("%s, in the majority: Ready = %v", r.name, err)
		}
		if w := r.w.Warnings(); len(w) != 1 || !strings.Contains(w[0], "replica r3 at size 10 has root "+hexHash(badRoot)) {
			t.Errorf("%s: warnings %q", r.name, w)
		}
		logs := r.logs.String()
		for _, s := range []string{"level=ERROR", "other=r3", "size=10", "their_root=" + hexHash(badRoot), "our_root=" + hexHash(good)} {
			if !strings.Contains(logs, s) {
				t.Errorf("%s: log lacks %q:\n%s", r.name, s, logs)
			}
		}
		if err := verify(t, r, 5*time.Second); err == nil || !strings.Contains(err.Error(), "replica r3 at size 10") {
			t.Errorf("%s: Verify = %v, want r3 named", r.name, err)
		}
	}
	eventually(t, "r3 finds itself alone", func() bool { return bad.w.Ready() != nil })
	if err := bad.w.Ready(); !strings.Contains(err.Error(), "1 of 3 replicas checked, itself included, agree with it; it differs from r1, r2") {
		t.Errorf("r3: Ready = %v", err)
	}
	if err := verify(t, bad, 5*time.Second); err == nil || !strings.Contains(err.Error(), "replica r1 at size 10") || !strings.Contains(err.Error(), "replica r2 at size 10") {
		t.Errorf("r3: Verify = %v, want both others named", err)
	}
}

func indexOf(rs []*replica, r *replica) int {
	for i := range rs {
		if rs[i] == r {
			return i
		}
	}
	return -1
}

// TestWitnessAcrossSizes: replicas at sizes 10, 7 and 5, the smallest
// rewritten at entry 2. No two share a size: the two larger check it against
// their tree at size 5 and name it; the larger checks the middle one at size
// 7 and agrees; the smallest cannot check anyone yet, and its Verify says so.
func TestWitnessAcrossSizes(t *testing.T) {
	_, js := startJetStream(t)
	rs := replicas(t, 5, 7, 10) // r1: 5, r2: 7, r3: 10
	tamper(t, rs[0].root, 2)
	for _, r := range rs {
		r.start(t, js)
	}
	small, mid, large := rs[0], rs[1], rs[2]
	badRoot, _ := small.store.RootAt(context.Background(), 5)
	good, _ := large.store.RootAt(context.Background(), 5)
	for _, r := range []*replica{mid, large} {
		eventually(t, r.name+" names r1", func() bool { return len(r.w.Differences()) > 0 })
		want := Difference{Replica: "r1", Size: 5, Theirs: badRoot, Ours: good}
		if d := r.w.Differences(); len(d) != 1 || d[0] != want {
			t.Errorf("%s: differences %+v, want %+v", r.name, d, want)
		}
	}
	eventually(t, "r3 checks r2 at size 7", func() bool {
		return value(large.w.checks.WithLabelValues("r2", "match")) > 0
	})
	if err := large.w.Ready(); err != nil {
		t.Errorf("r3 (r2 agrees, r1 differs): Ready = %v", err)
	}
	// r2 has checked r1 (differs) but not r3 (ahead of it): no majority.
	if err := mid.w.Ready(); err == nil || !strings.Contains(err.Error(), "1 of 2 replicas checked") {
		t.Errorf("r2 (r3 ahead, r1 differs): Ready = %v, want not ready", err)
	}
	if err := verify(t, small, 2*time.Second); !errors.Is(err, context.DeadlineExceeded) || len(small.w.Differences()) != 0 {
		t.Errorf("r1, behind everyone: Verify = %v, differences %v; want a timeout and none", err, small.w.Differences())
	}
}

// TestWitnessRefusesForgedCheckpoints: a checkpoint published as a replica
// but signed by another key is refused and named, and changes nothing.
func TestWitnessRefusesForgedCheckpoints(t *testing.T) {
	nc, js := startJetStream(t)
	rs := replicas(t, 4, 4)
	for _, r := range rs {
		r.start(t, js)
	}
	for _, r := range rs {
		if err := verify(t, r, 15*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	// The forger signs a checkpoint of another root in r2's key name
	// with a key of its own, and publishes it with its key, then with
	// r2's real key.
	skey, vkey, err := note.GenerateKey(nil, "sharelog/r2")
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := note.NewSigner(skey)
	forged, err := checkpoint.Sign(checkpoint.Checkpoint{Origin: "sharelog/r2", Size: 4, Root: tlog.RecordHash([]byte("forged"))}, signer)
	if err != nil {
		t.Fatal(err)
	}
	realKey, _ := checkpoint.PublicKey(rs[1].keyFile)
	for _, key := range []string{vkey, realKey} {
		msg, _ := json.Marshal(Message{Key: key, Checkpoint: string(forged)})
		if _, err := js.Publish(context.Background(), SubjectPrefix+"r2", msg); err != nil {
			t.Fatal(err)
		}
	}
	if err := nc.Publish(SubjectPrefix+"r2", []byte("not json")); err != nil {
		t.Fatal(err)
	}
	r1 := rs[0]
	eventually(t, "r1 refuses the three", func() bool {
		return value(r1.w.checks.WithLabelValues("r2", "refused")) == 3
	})
	if d := r1.w.Differences(); len(d) != 0 || r1.w.Ready() != nil {
		t.Errorf("a forged checkpoint counted as r2's: differences %v, ready %v", d, r1.w.Ready())
	}
	if got := value(r1.w.mismatch.WithLabelValues("r2")); got != 0 {
		t.Errorf("mismatch gauge of r2 = %v after a forgery", got)
	}
	if w := r1.w.Warnings(); len(w) != 1 || !strings.Contains(w[0], "published as replica r2 was refused") {
		t.Errorf("warnings %q", w)
	}
	logs := r1.logs.String()
	forgerID := "sharelog/r2+" + strings.Split(vkey, "+")[1]
	if !strings.Contains(logs, "other=r2") || !strings.Contains(logs, "signed by "+forgerID+", not by this replica's key") {
		t.Errorf("r1's log does not name r2 and the forging key %s:\n%s", forgerID, logs)
	}
}

// TestWitnessKeysFile: with a keys file, a replica it does not list is
// refused, and a listed one is checked.
func TestWitnessKeysFile(t *testing.T) {
	_, js := startJetStream(t)
	rs := replicas(t, 3, 3, 3)
	rs[0].start(t, js) // pins on first sight
	k1, _ := checkpoint.PublicKey(rs[0].keyFile)
	r2 := rs[1]
	signer, k2, _, err := checkpoint.LoadOrCreateKey(r2.keyFile, "", "sharelog/r2")
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "witness.keys")
	os.WriteFile(file, []byte("# the replicas\nr1 "+k1+"\n\nr2 "+k2+"\n"), 0o644)
	keys, err := LoadKeys(file)
	if err != nil || len(keys) != 2 {
		t.Fatalf("LoadKeys = %v, %v", keys, err)
	}
	// r2 requires the keys; r3 is not listed.
	vkey := k2
	r2.store, _ = store.Open(storeConfig(r2.root))
	checkpoint.NewCheckpointer(r2.store, signer, nil).Checkpoint(context.Background())
	r2.logs = &syncBuffer{}
	r2.w, err = New(Config{Replica: "r2", Tree: r2.store, Key: vkey, Keys: keys, Logger: slog.New(slog.NewTextHandler(r2.logs, nil))}, js)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r2.w.Run(ctx) }()
	defer func() { cancel(); <-done; r2.store.Close() }()
	rs[2].start(t, js)
	eventually(t, "r2 checks r1 and refuses r3", func() bool {
		return value(r2.w.checks.WithLabelValues("r1", "match")) > 0 &&
			value(r2.w.checks.WithLabelValues("r3", "refused")) > 0
	})
	if w := r2.w.Warnings(); len(w) != 1 || !strings.Contains(w[0], "replica r3 was refused: the witness keys file does not list this replica") {
		t.Errorf("warnings %q", w)
	}
	if strings.Contains(r2.logs.String(), "pinned") {
		t.Errorf("r2 pinned a key with a keys file:\n%s", r2.logs)
	}
	if !strings.Contains(rs[0].logs.String(), "line=\"r2 "+k2+"\"") {
		t.Errorf("r1 did not log the line to pin r2's key:\n%s", rs[0].logs)
	}
	// A keys file that gives this replica another key is refused at start.
	if _, err := New(Config{Replica: "r1", Tree: r2.store, Key: vkey, Keys: keys}, js); err == nil || !strings.Contains(err.Error(), "gives replica r1 the key") {
		t.Errorf("New with a keys file naming another key for itself = %v", err)
	}
	for _, bad := range []string{"r1\n", "r1 " + k1 + "\nr1 " + k1 + "\n", "r.1 " + k1 + "\n", "r1 notakey\n", "# nothing\n"} {
		os.WriteFile(file, []byte(bad), 0o644)
		if _, err := LoadKeys(file); err == nil {
			t.Errorf("LoadKeys(%q) succeeded", bad)
		}
	}
}

// value returns the value of a gauge or counter.
func value(c prometheus.Metric) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return -1
	}
	if m.Gauge != nil {
		return m.Gauge.GetValue()
	}
	return m.Counter.GetValue()
}
