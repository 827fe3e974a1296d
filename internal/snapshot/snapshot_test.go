package snapshot_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	natsio "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/sharelog/sharelog/internal/ledger"
	"github.com/sharelog/sharelog/internal/nats"
	"github.com/sharelog/sharelog/internal/snapshot"
	"github.com/sharelog/sharelog/internal/store"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// personID is an identifier to search the object store's files for.
const personID = "SNAP-PERSON-77031"

// startJS starts an embedded NATS server with JetStream unencrypted at rest
// (so that its files can be searched) and returns a JetStream context and
// the store directory.
func startJS(t testing.TB) (jetstream.JetStream, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "js")
	ns, err := nats.StartServer(nats.ServerConfig{Listen: "127.0.0.1:0", StoreDir: dir}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	nc, err := natsio.Connect("", natsio.InProcessServer(ns))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js, dir
}

// keys returns a ledger config in a new directory, whose keys are those of
// the files in keyDir (made on first use).
func ledgerConfig(t testing.TB, keyDir string) store.Config {
	return store.Config{
		Dir:           filepath.Join(t.TempDir(), "ledger"),
		KeyFile:       filepath.Join(keyDir, "site.key"),
		MasterKeyFile: filepath.Join(keyDir, "master.key"),
		EncryptAtRest: true,
		Logger:        quiet,
	}
}

func event(t testing.TB, typ, source, id string, data any) *ledger.Event {
	ts := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	raw, err := json.Marshal(map[string]any{
		"specversion": "1.0", "id": id, "source": source, "type": typ, "time": ts,
		"datacontenttype": "application/json", "data": data,
	})
	if err != nil {
		t.Fatal(err)
	}
	return &ledger.Event{Source: source, ID: id, Type: typ, Time: ts, Data: data, Raw: raw}
}

// apply appends n disclosures (the first recipient's definition first, if
// the ledger is empty) naming personID and others, in one batch.
func apply(t testing.TB, st *store.Store, n int) {
	t.Helper()
	b := st.Begin()
	defer b.Discard()
	seq := st.Applied()
	var events []*ledger.Event
	if seq == 0 {
		events = append(events, event(t, ledger.TypeRecipient, "admin", "rcp-web", &ledger.Recipient{
			ID: "web", Name: "Web", Role: ledger.RoleController, Country: "GB", Channel: ledger.Channel{Type: "manual"},
		}))
	}
	for i := range n {
		events = append(events, event(t, ledger.TypeDisclosure, "cms", fmt.Sprintf("d-%d-%d", seq, i), &ledger.Disclosure{
			Subjects:   []ledger.Subject{{Scheme: "dbs-ref", ID: personID}, {Scheme: "dbs-ref", ID: fmt.Sprintf("OTHER-%d-%d", seq, i)}},
			Recipient:  "web",
			Categories: []string{"user.contact.email"}, Purpose: "essential.service", LawfulBasis: "art6-1-b",
			Regime: ledger.RegimeUKGDPR, DisclosedAt: time.Date(2025, 1, 1, 0, 0, i, 0, time.UTC),
		}))
	}
	for _, ev := range events {
		seq++
		if out, err := b.Append(seq, ev); out != ledger.Recorded {
			t.Fatalf("append %s: %v %v", ev.ID, out, err)
		}
	}
	if err := b.Commit(seq); err != nil {
		t.Fatal(err)
	}
}

func open(t testing.TB, cfg store.Config) *store.Store {
	t.Helper()
	st, err := store.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func newSnapshots(t testing.TB, js jetstream.JetStream, keyDir string, cfg snapshot.Config) *snapshot.Snapshots {
	t.Helper()
	master, err := store.LoadMasterKey(filepath.Join(keyDir, "master.key"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Logger = quiet
	s, err := snapshot.New(context.Background(), js, master, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// sameLedger fails t unless a and b hold the same position and entries.
func sameLedger(t *testing.T, a, b *store.Store) {
	t.Helper()
	ctx := context.Background()
	as, ar, err1 := a.TreeHead(ctx)
	bs, br, err2 := b.TreeHead(ctx)
	if err1 != nil || err2 != nil || as != bs || ar != br || a.Applied() != b.Applied() {
		t.Fatalf("tree heads %d %v (applied %d, %v) and %d %v (applied %d, %v)", as, ar, a.Applied(), err1, bs, br, b.Applied(), err2)
	}
	for seq := uint64(1); seq <= uint64(as); seq++ {
		ea, err1 := a.Entry(ctx, seq)
		eb, err2 := b.Entry(ctx, seq)
		if err1 != nil || err2 != nil || !reflect.DeepEqual(ea, eb) {
			t.Fatalf("entry %d: %+v (%v) and %+v (%v)", seq, ea, err1, eb, err2)
		}
	}
}

// TestTakeRestore takes a snapshot and restores it into an empty directory:
// the same entries and tree head, and the ledger goes on from there. The
// object store's files hold nothing of the ledger in clear; older
// snapshots are deleted once a newer one is complete.
func TestTakeRestore(t *testing.T) {
	ctx := context.Background()
	js, jsDir := startJS(t)
	keyDir := t.TempDir()
	src := open(t, ledgerConfig(t, keyDir))
	apply(t, src, 50)
	snaps := newSnapshots(t, js, keyDir, snapshot.Config{Replica: "a"})

	info, err := snaps.Take(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	if info.Position.Applied != src.Applied() || info.Position.Count != src.Count() || info.Size == 0 {
		t.Fatalf("info = %+v, ledger at %d/%d", info, src.Applied(), src.Count())
	}
	latest, ok, err := snaps.Latest(ctx)
	if err != nil || !ok || latest.Name != info.Name || latest.Position != info.Position || latest.Replica != "a" || latest.KeyCheck != src.KeyCheck() {
		t.Fatalf("Latest = %+v, %v, %v; want %+v", latest, ok, err, info)
	}

	cfg := ledgerConfig(t, keyDir)
	dst, err := snaps.Restore(ctx, latest, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dst.Close() })
	sameLedger(t, src, dst)
	if _, err := os.Stat(cfg.Dir + ".restore"); !os.IsNotExist(err) {
		t.Errorf("the restore directory is left: %v", err)
	}
	if w, err := dst.Who(ctx, ledger.Subject{Scheme: "dbs-ref", ID: personID}); err != nil || w.Disclosures != 50 {
		t.Fatalf("who in the restored ledger = %+v, %v", w, err)
	}
	// The restored ledger goes on from there. (Its new entries are not
	// the source's: entries record the local clock and are sealed with
	// random keys, until ledger determinism, issue 15 item 2, lands.)
	apply(t, dst, 3)
	if dst.Count() != info.Position.Count+3 || dst.Applied() != info.Position.Applied+3 {
		t.Fatalf("restored ledger after 3 more: %d/%d", dst.Count(), dst.Applied())
	}

	// The bucket's files hold neither the identifier nor what the ledger
	// keeps in clear (the recipient registry's record; entries are kept
	// compressed): the same search finds the record in an unencrypted
	// backup, so it can tell.
	var clear bytes.Buffer
	if _, err := src.Backup(ctx, &clear); err != nil {
		t.Fatal(err)
	}
	const inClear = `{"id":"web","name":"Web"`
	if !bytes.Contains(clear.Bytes(), []byte(inClear)) {
		t.Fatalf("an unencrypted backup does not hold %q: the search cannot tell", inClear)
	}
	objDir := filepath.Join(jsDir, "jetstream", "$G", "streams", "OBJ_"+snapshot.Bucket)
	if _, err := os.Stat(objDir); err != nil {
		t.Fatalf("no bucket directory: %v", err)
	}
	for _, needle := range []string{personID, inClear} {
		if hits := filesContaining(t, objDir, needle); len(hits) != 0 {
			t.Errorf("the snapshot bucket's files hold %q in clear: %v", needle, hits)
		}
	}

	// A newer snapshot deletes the older.
	apply(t, src, 3)
	newer, err := snaps.Take(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	list, err := snaps.List(ctx)
	if err != nil || len(list) != 1 || list[0].Name != newer.Name {
		t.Fatalf("snapshots after a newer one = %+v, %v; want only %s", list, err, newer.Name)
	}
	obs, _ := js.ObjectStore(ctx, snapshot.Bucket)
	if _, err := obs.GetInfo(ctx, info.Name); !errors.Is(err, jetstream.ErrObjectNotFound) {
		t.Errorf("older snapshot %s: %v, want not found", info.Name, err)
	}
	// Its chunks are gone from the bucket's stream, not only its name:
	// what is left is about the newer one's bytes.
	st, _ := js.Stream(ctx, "OBJ_"+snapshot.Bucket)
	si, _ := st.Info(ctx)
	t.Logf("bucket: %d messages, %d bytes, for one snapshot of %d bytes", si.State.Msgs, si.State.Bytes, newer.Size)
	if si.State.Bytes > newer.Size+newer.Size/2 {
		t.Errorf("bucket holds %d bytes for one snapshot of %d bytes", si.State.Bytes, newer.Size)
	}
}

// TestRestoreRefuses: a snapshot whose bytes were changed, one taken under
// another master key, one whose metadata records another root, one the
// witness hook rejects, and one restored with another site secret are each
// refused with an error naming why, and leave the ledger directory as it
// was (absent) and no restore directory behind.
func TestRestoreRefuses(t *testing.T) {
	ctx := context.Background()
	js, _ := startJS(t)
	keyDir := t.TempDir()
	src := open(t, ledgerConfig(t, keyDir))
	apply(t, src, 300)
	snaps := newSnapshots(t, js, keyDir, snapshot.Config{Keep: 10})
	info, err := snaps.Take(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	obs, err := js.ObjectStore(ctx, snapshot.Bucket)
	if err != nil {
		t.Fatal(err)
	}
	good, err := obs.GetBytes(ctx, info.Name)
	if err != nil {
		t.Fatal(err)
	}
	o, _ := obs.GetInfo(ctx, info.Name)

	// put stores data as a complete snapshot with info's metadata, changed by f.
	n := 0
	put := func(data []byte, f func(md map[string]string)) snapshot.Info {
		t.Helper()
		n++
		md := map[string]string{}
		for k, v := range o.Metadata {
			md[k] = v
		}
		if f != nil {
			f(md)
		}
		name := fmt.Sprintf("%020d", info.Position.Applied+uint64(n))
		if _, err := obs.Put(ctx, jetstream.ObjectMeta{Name: name, Metadata: md}, bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
		latest, ok, err := snaps.Latest(ctx)
		if err != nil || !ok || latest.Name != name {
			t.Fatalf("Latest = %+v, %v, %v; want %s", latest, ok, err, name)
		}
		return latest
	}
	flipped := bytes.Clone(good)
	flipped[len(flipped)/2] ^= 1
	otherMaster := t.TempDir()

	for _, c := range []struct {
		name  string
		info  func() snapshot.Info
		snaps func() *snapshot.Snapshots
		cfg   func() store.Config
		want  string
	}{
		{name: "a byte changed", info: func() snapshot.Info { return put(flipped, nil) }, want: "decrypt and load"},
		{name: "cut short", info: func() snapshot.Info { return put(good[:len(good)*2/3], nil) }, want: "decrypt and load"},
		{name: "another master key", snaps: func() *snapshot.Snapshots { return newSnapshots(t, js, otherMaster, snapshot.Config{}) }, want: "decrypt (is the master key"},
		{name: "another root recorded", info: func() snapshot.Info {
			return put(good, func(md map[string]string) { md["root"] = tlog.Hash{1}.String() })
		}, want: "tree root at size 301"},
		{name: "another count recorded", info: func() snapshot.Info {
			return put(good, func(md map[string]string) { md["count"] = "300" })
		}, want: "holds 301 entries to stream sequence 301, its metadata says 300 to 301"},
		{name: "another site secret", cfg: func() store.Config {
			cfg := ledgerConfig(t, keyDir)
			cfg.KeyFile = filepath.Join(t.TempDir(), "site.key")
			return cfg
		}, want: "site secret is not the one"},
	} {
		t.Run(c.name, func(t *testing.T) {
			i, s, cfg := info, snaps, ledgerConfig(t, keyDir)
			if c.info != nil {
				i = c.info()
			}
			if c.snaps != nil {
				s = c.snaps()
			}
			if c.cfg != nil {
				cfg = c.cfg()
			}
			st, err := s.Restore(ctx, i, cfg)
			if err == nil {
				st.Close()
				t.Fatal("restored")
			}
			if !strings.Contains(err.Error(), "snapshot "+i.Name+" refused") || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error = %v, want it to name the snapshot and %q", err, c.want)
			}
			for _, d := range []string{cfg.Dir, cfg.Dir + ".restore"} {
				if _, err := os.Stat(d); !os.IsNotExist(err) {
					t.Errorf("%s after a refused restore: %v", filepath.Base(d), err)
				}
			}
		})
	}
	// The good one still restores.
	st, err := snaps.Restore(ctx, info, ledgerConfig(t, keyDir))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	sameLedger(t, src, st)
}

// filesContaining returns the files under dir that contain needle.
func filesContaining(t *testing.T, dir, needle string) []string {
	t.Helper()
	var hits []string
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(b, []byte(needle)) {
			hits = append(hits, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return hits
}

// TestRunLeaderOnly: the schedule takes snapshots only while leader says
// so, and none when nothing was applied since the newest.
func TestRunLeaderOnly(t *testing.T) {
	js, _ := startJS(t)
	keyDir := t.TempDir()
	src := open(t, ledgerConfig(t, keyDir))
	apply(t, src, 5)
	snaps := newSnapshots(t, js, keyDir, snapshot.Config{Keep: 100})
	var leading atomic.Bool
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- snaps.Run(ctx, src, 20*time.Millisecond, leading.Load) }()
	defer func() { cancel(); <-done }()

	time.Sleep(200 * time.Millisecond)
	if list, err := snaps.List(ctx); err != nil || len(list) != 0 {
		t.Fatalf("not leading: snapshots %+v, %v", list, err)
	}
	leading.Store(true)
	waitFor(t, func() bool { list, _ := snaps.List(ctx); return len(list) == 1 })
	time.Sleep(200 * time.Millisecond) // ticks with nothing new
	if list, _ := snaps.List(ctx); len(list) != 1 {
		t.Fatalf("nothing applied, yet %d snapshots", len(list))
	}
	apply(t, src, 1)
	waitFor(t, func() bool { list, _ := snaps.List(ctx); return len(list) == 2 })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v after its context ended", err)
	}
	done <- nil
}

func waitFor(t *testing.T, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
