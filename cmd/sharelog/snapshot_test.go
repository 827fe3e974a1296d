package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/test"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/sharelog/sharelog/internal/ledger"
	"github.com/sharelog/sharelog/internal/nats"
	"github.com/sharelog/sharelog/internal/snapshot"
	"github.com/sharelog/sharelog/internal/store"
)

// replicaCluster is a NATS server with JetStream and the keys the replicas
// share (master key and site secret; each has its own checkpoint key).
type replicaCluster struct {
	url    string
	root   string
	master string
}

func newReplicaCluster(t *testing.T) *replicaCluster {
	opts := natsserver.DefaultTestOptions
	opts.Port = -1
	opts.JetStream = true
	opts.StoreDir = t.TempDir()
	ns := natsserver.RunServer(&opts)
	t.Cleanup(ns.Shutdown)
	root := t.TempDir()
	return &replicaCluster{url: ns.ClientURL(), root: root, master: filepath.Join(root, "master.key")}
}

// config returns the configuration of replica name, with its own data
// directory holding the shared site secret (copied from the first replica's
// once it exists).
func (c *replicaCluster) config(t *testing.T, name string) Config {
	t.Helper()
	cfg := testConfig(filepath.Join(c.root, name))
	cfg.NATS, cfg.Replica, cfg.MasterKeyFile, cfg.SnapshotEvery = c.url, name, c.master, 0
	if err := os.MkdirAll(cfg.Data, 0o700); err != nil {
		t.Fatal(err)
	}
	if site, err := os.ReadFile(filepath.Join(c.root, "a", "site.key")); err == nil && name != "a" {
		if err := os.WriteFile(filepath.Join(cfg.Data, "site.key"), site, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return cfg
}

// sameEntries fails t unless b holds a's entries: equal up to size upTo,
// and after it equal but for RecordedAt (each replica records its own clock
// until ledger determinism, issue 15 item 2, lands).
func sameEntries(t *testing.T, a, b *store.Store, upTo uint64) {
	t.Helper()
	ctx := context.Background()
	if a.Count() != b.Count() || a.Applied() != b.Applied() {
		t.Fatalf("replicas at %d entries/%d applied and %d/%d", a.Count(), a.Applied(), b.Count(), b.Applied())
	}
	for seq := uint64(1); seq <= a.Count(); seq++ {
		ea, err1 := a.Entry(ctx, seq)
		eb, err2 := b.Entry(ctx, seq)
		if err1 != nil || err2 != nil {
			t.Fatalf("entry %d: %v, %v", seq, err1, err2)
		}
		if seq > upTo {
			ea.RecordedAt, eb.RecordedAt = time.Time{}, time.Time{}
		}
		if !reflect.DeepEqual(ea, eb) {
			t.Fatalf("entry %d differs:\n%+v\n%+v", seq, ea, eb)
		}
	}
}

// extends fails t unless st's tree extends the tree of size n and root.
func extends(t *testing.T, st *store.Store, n uint64, root tlog.Hash) {
	t.Helper()
	ctx := context.Background()
	size, head, err := st.TreeHead(ctx)
	if err != nil {
		t.Fatal(err)
	}
	p, err := st.ConsistencyProof(ctx, int64(n), size)
	if err != nil {
		t.Fatal(err)
	}
	if err := tlog.CheckTree(p.Proof, size, head, int64(n), root); err != nil {
		t.Fatalf("the tree of size %d does not extend the snapshot's of size %d: %v", size, n, err)
	}
}

// TestReplicaRebuildsFromSnapshot runs two replicas of the real serve code
// on one NATS server. Replica a records disclosures of two people, erases
// and forgets one (the forgetting job scrubs the person's messages from
// SHARELOG_IN), takes a snapshot and records more. Replica b starts with an
// empty data directory: it restores the snapshot, folds the stream after
// it, and then holds a's entries, a tree that extends the snapshot's root,
// the forgotten person forgotten and the other found. Stopped, then started
// again once SHARELOG_IN has been purged past its position, b refuses to
// start while no snapshot covers the gap, and rebuilds once one does.
func TestReplicaRebuildsFromSnapshot(t *testing.T) {
	ctx := context.Background()
	c := newReplicaCluster(t)
	a := startMain(t, c.config(t, "a"))
	if a.Snapshots == nil {
		t.Fatal("replica mode without snapshots")
	}
	p := ledger.Subject{Scheme: "dbs-ref", ID: "SNAP-FORGET-5512"}
	other := ledger.Subject{Scheme: "dbs-ref", ID: "SNAP-KEEP-7720"}
	t0 := time.Date(2025, 1, 2, 9, 0, 0, 0, time.UTC)
	publishAll(t, a,
		manualRecipient("web", "", 0),
		ukDisclosure("s-1", p, "web", []string{"user.contact.email"}, t0),
		ukDisclosure("s-2", other, "web", []string{"user.contact.email"}, t0.Add(time.Hour)),
		ce("dpo", "erase-1", ledger.TypeErasure, map[string]any{"request": "E-1", "subject": p, "decidedAt": "2025-02-02T10:00:00Z"}),
	)
	st, err := a.Store.Status(ctx, "E-1")
	if err != nil || len(st.Obligations) != 1 {
		t.Fatalf("status E-1 = %+v, %v", st, err)
	}
	publishAll(t, a, ce("dpo", "ex-1", ledger.TypeExemption, map[string]any{
		"notice": st.Obligations[0].Notice, "reason": "impossible", "justification": "no contact", "decidedBy": "dpo",
	}))
	rep, err := a.Retention.Round(ctx)
	if err != nil || len(rep.Forgotten) != 1 || rep.ScrubbedMessages == 0 {
		t.Fatalf("forgetting round = %+v, %v", rep, err)
	}
	if err := a.Ingester.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	info, err := a.Snapshots.Take(ctx, a.Store)
	if err != nil {
		t.Fatal(err)
	}
	if info.Position.Count != a.Store.Count() || info.Position.Applied != a.Store.Applied() {
		t.Fatalf("snapshot at %+v, ledger at %d/%d", info.Position, a.Store.Count(), a.Store.Applied())
	}
	publishAll(t, a, ukDisclosure("s-3", other, "web", []string{"user.contact.email"}, t0.Add(2*time.Hour)))

	cfgB := c.config(t, "b")
	b := startMain(t, cfgB)
	if !strings.Contains(b.logs.String(), "ledger restored from snapshot") {
		t.Fatalf("b did not restore the snapshot:\n%s", b.logs)
	}
	for _, m := range []*testMain{a, b} {
		if err := m.Ingester.CatchUp(ctx); err != nil {
			t.Fatal(err)
		}
	}
	sameEntries(t, a.Store, b.Store, info.Position.Count)
	extends(t, b.Store, info.Position.Count, info.Position.Root)
	if h, err := b.Store.SubjectHashOf(ctx, p); err != nil || h != "" {
		t.Errorf("the forgotten person is known to b: %q, %v", h, err)
	}
	if w, err := b.Store.Who(ctx, other); err != nil || w.Disclosures != 2 {
		t.Errorf("who of the other person on b = %+v, %v", w, err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	// SHARELOG_IN loses what b has not applied.
	publishAll(t, a, ukDisclosure("s-4", other, "web", []string{"user.contact.email"}, t0.Add(3*time.Hour)))
	_, js := a.connect(t)
	in, err := js.Stream(ctx, nats.StreamIn)
	if err != nil {
		t.Fatal(err)
	}
	if err := in.Purge(ctx, jetstream.WithPurgeSequence(a.Store.Applied()+1)); err != nil {
		t.Fatal(err)
	}
	// No snapshot covers the gap: b refuses to start, naming the positions.
	m := NewMain(cfgB, a.Logger)
	err = m.Open(ctx)
	m.Close()
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("%s starts at %d, and the newest snapshot in %s ends at %d", nats.StreamIn, a.Store.Applied()+1, snapshot.Bucket, info.Position.Applied)) {
		t.Fatalf("b with a gap and no snapshot covering it: %v", err)
	}
	// A snapshot covers it: b rebuilds.
	newer, err := a.Snapshots.Take(ctx, a.Store)
	if err != nil {
		t.Fatal(err)
	}
	b = startMain(t, cfgB)
	if !strings.Contains(b.logs.String(), "rebuilding the ledger from a snapshot") {
		t.Fatalf("b did not rebuild:\n%s", b.logs)
	}
	sameEntries(t, a.Store, b.Store, newer.Position.Count)
	if w, err := b.Store.Who(ctx, other); err != nil || w.Disclosures != 3 {
		t.Errorf("who of the other person on b after the rebuild = %+v, %v", w, err)
	}
	if list, err := a.Snapshots.List(ctx); err != nil || len(list) != 1 || list[0].Name != newer.Name {
		t.Errorf("snapshots = %+v, %v; want only the newer", list, err)
	}
}
