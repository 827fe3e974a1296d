package main

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/nats-io/nats-server/v2/server"
	natsio "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/sharelog/sharelog/internal/store"
	"github.com/sharelog/sharelog/internal/witness"
)

// startJetStreamServer starts a NATS server with JetStream for replicas to
// share, and returns its URL.
func startJetStreamServer(t *testing.T) string {
	t.Helper()
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	t.Cleanup(ns.Shutdown)
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready")
	}
	return ns.ClientURL()
}

// replicaConfig is the configuration of replica name with its data in dir,
// against the NATS server at url, with its own checkpoint key kept apart.
func replicaConfig(t *testing.T, dir, url, name string) Config {
	cfg := testConfig(dir)
	cfg.NATS = url
	cfg.Replica = name
	cfg.CheckpointKeyFile = filepath.Join(t.TempDir(), "checkpoint.key")
	return cfg
}

// deleteCheckpoints deletes the signed checkpoints of the stopped ledger in
// dir, so that the replica signs its tree again with its own key.
func deleteCheckpoints(txn *badger.Txn) error {
	it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{'c'}})
	var keys [][]byte
	for it.Rewind(); it.Valid(); it.Next() {
		keys = append(keys, it.Item().KeyCopy(nil))
	}
	it.Close()
	for _, k := range keys {
		if err := txn.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// rewriteEntry changes entry seq of a stopped ledger as an insider would,
// recomputes the Merkle tree's stored hashes over it and deletes the signed
// checkpoints, so that the replica signs the rewritten tree at its start.
func rewriteEntry(t *testing.T, dir string, seq uint64) {
	t.Helper()
	updateLedger(t, dir, func(txn *badger.Txn) error {
		value := func(prefix byte, n uint64) ([]byte, error) {
			item, err := txn.Get(binaryKey(prefix, n))
			if err != nil {
				return nil, err
			}
			return item.ValueCopy(nil)
		}
		// Entries are kept compressed; the tree is over their values.
		entryValue := func(n uint64) ([]byte, error) {
			item, err := txn.Get(store.EntryKey(n))
			if err != nil {
				return nil, err
			}
			stored, err := item.ValueCopy(nil)
			if err != nil {
				return nil, err
			}
			return store.EntryValue(stored)
		}
		v, err := entryValue(seq)
		if err != nil {
			return err
		}
		v[len(v)-3] ^= 1
		if err := txn.Set(store.EntryKey(seq), store.StoredEntry(v)); err != nil {
			return err
		}
		hashes := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
			out := make([]tlog.Hash, len(idx))
			for i, x := range idx {
				h, err := value('h', uint64(x))
				if err != nil {
					return nil, err
				}
				copy(out[i][:], h)
			}
			return out, nil
		})
		for n := int64(0); ; n++ {
			entry, err := entryValue(uint64(n + 1))
			if errors.Is(err, badger.ErrKeyNotFound) {
				break
			}
			if err != nil {
				return err
			}
			hs, err := tlog.StoredHashes(n, entry, hashes)
			if err != nil {
				return err
			}
			for j, h := range hs {
				if err := txn.Set(binaryKey('h', uint64(tlog.StoredHashIndex(0, n)+int64(j))), h[:]); err != nil {
					return err
				}
			}
		}
		return deleteCheckpoints(txn)
	})
}

// binaryKey is a ledger key of one prefix byte and a big-endian number
// (package store's keys.go and tree.go).
func binaryKey(prefix byte, n uint64) []byte { return binary.BigEndian.AppendUint64([]byte{prefix}, n) }

// waitFor waits up to 20 s for cond, which returns nil when it holds.
func waitFor(t *testing.T, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 20 s: %v", what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestReplicasWitnessEachOther runs three replicas (the real serve code)
// on one NATS server, their ledgers copies of one (see package witness for
// why), each signing with its own key: they agree, and /readyz says ready
// with nothing more. Then one replica's ledger is rewritten behind its back
// and it is restarted: the two others name it in their logs, metrics and
// /readyz detail, and it answers /readyz 503 naming them.
func TestReplicasWitnessEachOther(t *testing.T) {
	url := startJetStreamServer(t)
	first := t.TempDir()
	cfgs := map[string]Config{"a": replicaConfig(t, first, url, "a")}
	m := startMain(t, cfgs["a"])
	registerRecipient(t, m, "acro")
	publishDisclosures(t, m, 1, 6)
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	dirs := map[string]string{"a": first, "b": copyData(t, first), "c": copyData(t, first)}
	for _, name := range []string{"b", "c"} {
		updateLedger(t, dirs[name], deleteCheckpoints) // signed by a's key
	}
	ms := map[string]*testMain{}
	for _, name := range []string{"a", "b", "c"} {
		if name != "a" {
			cfgs[name] = replicaConfig(t, dirs[name], url, name)
		}
		ms[name] = startMain(t, cfgs[name])
	}
	for name, m := range ms {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		err := m.Witness.Verify(ctx)
		cancel()
		if err != nil {
			t.Fatalf("%s: Verify of equal ledgers = %v\n%s", name, err, m.logs)
		}
	}
	for name, m := range ms {
		waitFor(t, name+" checks both others", func() error {
			metrics := get(t, m.HTTP.URL()+"/metrics")
			for _, o := range []string{"a", "b", "c"} {
				if o != name && !strings.Contains(metrics, `sharelog_witness_checks_total{replica="`+o+`",result="match"}`) {
					return errors.New("no match with " + o)
				}
			}
			return nil
		})
		// Ready, with the lease's role line (cluster.go) and no witness detail.
		if status, body := getReady(t, m.HTTP.URL()); status != 200 || !strings.HasPrefix(body, "ready\n") || strings.Contains(body, "witness") {
			t.Errorf("%s: /readyz with equal ledgers = %d %q", name, status, body)
		}
	}
	if m := ms["a"]; m.Store.Count() != 7 {
		t.Fatalf("ledger size %d, want 7", m.Store.Count())
	}

	// An insider rewrites entry 3 of c and restarts it.
	if err := ms["c"].Close(); err != nil {
		t.Fatal(err)
	}
	rewriteEntry(t, dirs["c"], 3)
	ms["c"] = startMain(t, cfgs["c"])
	good, _ := ms["a"].Store.RootAt(context.Background(), 7)
	bad, _ := ms["c"].Store.RootAt(context.Background(), 7)
	if good == bad {
		t.Fatal("the rewrite left the root unchanged")
	}
	want := "witness: replica c at size 7 has root " + hexRoot(bad) + ", this replica's tree at that size has " + hexRoot(good)
	for _, name := range []string{"a", "b"} {
		m := ms[name]
		waitFor(t, name+" names c", func() error {
			if status, body := getReady(t, m.HTTP.URL()); status != 200 || !strings.HasPrefix(body, "ready\n") || !strings.HasSuffix(body, "\n"+want+"\n") {
				return errors.New(body)
			}
			return nil
		})
		if metrics := get(t, m.HTTP.URL()+"/metrics"); !strings.Contains(metrics, `sharelog_witness_mismatch{replica="c"} 1`) {
			t.Errorf("%s: no mismatch metric for c", name)
		}
		logs := m.logs.String()
		for _, s := range []string{"level=ERROR", "other=c", "size=7", "their_root=" + hexRoot(bad), "our_root=" + hexRoot(good)} {
			if !strings.Contains(logs, s) {
				t.Errorf("%s: log lacks %q", name, s)
			}
		}
	}
	waitFor(t, "c reports itself not ready", func() error {
		status, body := getReady(t, ms["c"].HTTP.URL())
		if status != 503 || !strings.Contains(body, "in no majority: 1 of 3 replicas checked, itself included, agree with it; it differs from a, b") {
			return errors.New(body)
		}
		return nil
	})
}

func hexRoot(h tlog.Hash) string { return hex.EncodeToString(h[:]) }

// TestWitnessOffWithoutReplica: without --replica nothing is published for
// witnesses and no stream is made; --witness-keys alone is refused.
func TestWitnessOffWithoutReplica(t *testing.T) {
	m := startMain(t, testConfig(t.TempDir()))
	registerRecipient(t, m, "acro")
	if _, err := m.Checkpointer.Checkpoint(context.Background()); err != nil {
		t.Fatal(err)
	}
	if m.Witness != nil {
		t.Error("a Witness without --replica")
	}
	nc, err := natsio.Connect(m.NATSURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	if _, err := js.Stream(context.Background(), witness.Stream); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Errorf("stream %s without --replica: %v", witness.Stream, err)
	}
	if status, body := getReady(t, m.HTTP.URL()); status != 200 || body != "ready\n" {
		t.Errorf("/readyz = %d %q", status, body)
	}
	if metrics := get(t, m.HTTP.URL()+"/metrics"); strings.Contains(metrics, "sharelog_witness") {
		t.Error("witness metrics without --replica")
	}

	cfg := testConfig(t.TempDir())
	cfg.WitnessKeys = filepath.Join(t.TempDir(), "keys")
	bad := NewMain(cfg, nil)
	err = bad.Open(context.Background())
	bad.Close()
	if err == nil || !strings.Contains(err.Error(), "--witness-keys needs --replica") {
		t.Errorf("--witness-keys without --replica: %v", err)
	}
}
