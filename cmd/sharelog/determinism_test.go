package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sharelog/sharelog/internal/ledger"
	"github.com/sharelog/sharelog/internal/nats"
	"github.com/sharelog/sharelog/internal/retention"
	"github.com/sharelog/sharelog/internal/store"
)

// TestReplicasRecordIdenticalLedgers runs two replicas (the real serve
// code with --nats and --replica, one master key file) on one NATS server,
// and gives them disclosures naming one person and two, an erasure, a
// consultation of a person and one of no one (both with a sealed reason),
// a forgetting and a disclosure naming the forgotten person again, some
// through each replica. Both record the same entries: the same count, the
// same Merkle root at every size (so every leaf, which is the entry's value,
// is the same), the same entries read back, the same keyed hashes. The
// leader destroys the forgotten person's shared secrets; a third replica
// started afterwards cannot fold the stream as the others did and stops
// with the error that says to rebuild it from a snapshot, having recorded
// nothing of the forgotten person.
func TestReplicasRecordIdenticalLedgers(t *testing.T) {
	dir := t.TempDir()
	ns, err := nats.StartServer(nats.ServerConfig{Listen: "127.0.0.1:0", StoreDir: filepath.Join(dir, "nats")}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Shutdown)
	master := filepath.Join(dir, "master.key")
	key := make([]byte, store.MasterKeyLen)
	rand.Read(key)
	if err := os.WriteFile(master, key, 0o600); err != nil {
		t.Fatal(err)
	}
	replica := func(name string) *testMain {
		cfg := testConfig(filepath.Join(dir, name))
		cfg.NATS, cfg.Replica, cfg.MasterKeyFile = ns.ClientURL(), name, master
		return startMain(t, cfg)
	}
	r1, r2 := replica("r1"), replica("r2")
	ctx := context.Background()

	a := ledger.Subject{Scheme: "dbs-ref", ID: "REPL-A-1"}
	b := ledger.Subject{Scheme: "dbs-ref", ID: "REPL-B-2"}
	t0 := time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)
	got := publishAll(t, r1,
		manualRecipient("police", "", 0), manualRecipient("web", "", 0),
		ukDisclosure("d-1", a, "police", []string{"user.contact.address"}, t0),
		disclosure("casework", "d-2", []ledger.Subject{a, b}, "web", []string{"user.contact.email"}, t0.Add(time.Hour)),
	)
	got = append(got, publishAll(t, r2,
		ukDisclosure("d-3", b, "web", []string{"user.contact.email"}, t0.Add(2*time.Hour)),
		ce("dpo", "erase-1", ledger.TypeErasure, map[string]any{
			"request": "E-1", "subject": a, "ground": "art17-1-a", "decidedAt": "2025-04-01T10:00:00Z",
		}),
	)...)
	if want := strings.Repeat("recorded ", 6); strings.Join(got, " ")+" " != want {
		t.Fatalf("outcomes = %v", got)
	}
	// Consultations are recorded before they are answered: sealed under
	// the person's key, and under a data key of their own.
	if err := r2.HTTP.Consult(ctx, ledger.Consultation{Principal: "jane.dpo", Operation: "who", Reason: "SAR 7", Subject: &b}); err != nil {
		t.Fatal(err)
	}
	if err := r1.HTTP.Consult(ctx, ledger.Consultation{Principal: "jane.dpo", Operation: "disclosures", Reason: "audit of web"}); err != nil {
		t.Fatal(err)
	}
	caughtUp(t, r1, r2)
	hashA := sameHash(t, a, r1, r2)
	if hashA == "" {
		t.Fatal("the replicas do not know the person")
	}

	// Forget the person (as the forgetting job does), then name them again.
	ev, err := retention.Event(ledger.ForgetCandidate{SubjectHash: hashA, Reason: "erasure-closed", Request: "E-1"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r1.Publisher.Publish(ctx, nats.SubjectInNotify, []*ledger.Event{ev}); err != nil {
		t.Fatal(err)
	}
	if got := publishAll(t, r2, ukDisclosure("d-4", a, "police", []string{"user.contact.address"}, t0.Add(48*time.Hour))); len(got) != 1 || got[0] != "recorded" {
		t.Fatalf("disclosure after forgetting: %v", got)
	}
	caughtUp(t, r1, r2)
	if again := sameHash(t, a, r1, r2); again == "" || again == hashA {
		t.Errorf("named again after forgetting: keyed hash %q, want a new one (was %q)", again, hashA)
	}
	sameLedger(t, r1, r2)
	n, _, err := r1.Store.TreeHead(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n != 10 { // 2 recipients, 4 disclosures, 1 erasure, 2 consultations, 1 forgetting
		t.Errorf("%d entries, want 10", n)
	}
	forgotten := 0
	for seq := uint64(1); seq <= uint64(n); seq++ {
		e, err := r2.Store.Entry(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		if e.Forgotten {
			forgotten++
		}
	}
	if forgotten != 3 { // d-1, d-2 (with b), the erasure
		t.Errorf("%d entries forgotten, want 3", forgotten)
	}

	// The leader destroys the forgotten person's secrets; the other
	// replica clears its record only once they are gone.
	shreds, err := r2.Store.PendingShreds(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(shreds) != 1 || len(shreds[0].Names) != 2 { // a's salt, d-2's data key
		t.Fatalf("pending shreds = %+v, want one naming a salt and a data key", shreds)
	}
	if done, err := r2.Keys.Shred(ctx, r2.Store, false); err != nil || done != 0 {
		t.Fatalf("a follower's shred before the leader's: %d, %v; want 0 done", done, err)
	}
	if done, err := r1.Keys.Shred(ctx, r1.Store, true); err != nil || done != 1 {
		t.Fatalf("the leader's shred: %d, %v; want 1 done", done, err)
	}
	if done, err := r2.Keys.Shred(ctx, r2.Store, false); err != nil || done != 1 {
		t.Fatalf("a follower's shred after the leader's: %d, %v; want 1 done", done, err)
	}
	_, js := r1.connect(t)
	kv, err := js.KeyValue(ctx, nats.BucketKeys)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range shreds[0].Names {
		e, err := kv.Get(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(e.Value(), []byte("destroyed")) {
			t.Errorf("%s: %q, want the tombstone", name, e.Value())
		}
		// The old value is overwritten, not kept as history.
		hist, err := kv.History(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if len(hist) != 1 {
			t.Errorf("%s: %d revisions kept, want the tombstone alone", name, len(hist))
		}
	}

	// A replica started now needs the person's first salt to fold d-1,
	// and finds it destroyed.
	r3 := replica("r3")
	checkFor(t, 20*time.Second, func() error {
		if f := r3.failed.Load(); f != nil {
			if !errors.Is(f.err, store.ErrSecretDestroyed) || !strings.Contains(f.err.Error(), "rebuild it from a snapshot") {
				t.Fatalf("late replica failed with %v, want store.ErrSecretDestroyed", f.err)
			}
			return nil
		}
		return errors.New("the late replica is still ingesting")
	})
	if c := r3.Store.Count(); c > 2 {
		t.Errorf("the late replica recorded %d entries, want none past the recipients", c)
	}
	if !strings.Contains(r3.logs.String(), "rebuild it from a snapshot") {
		t.Errorf("the late replica's logs do not say to rebuild it")
	}
}

// caughtUp waits until every replica has applied all of SHARELOG_IN.
func caughtUp(t *testing.T, rs ...*testMain) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	last, err := nats.LastSeq(ctx, rs[0].JetStream)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if err := r.Store.WaitApplied(ctx, last); err != nil {
			t.Fatalf("%s: %v", r.Config.Replica, err)
		}
	}
}

// sameHash returns the keyed hash under which the replicas know subj,
// failing the test if they differ.
func sameHash(t *testing.T, subj ledger.Subject, rs ...*testMain) string {
	t.Helper()
	var first string
	for i, r := range rs {
		h, err := r.Store.SubjectHashOf(context.Background(), subj)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = h
		} else if h != first {
			t.Errorf("%s knows the subject as %q, %s as %q", rs[0].Config.Replica, first, r.Config.Replica, h)
		}
	}
	return first
}

// sameLedger checks that the replicas hold the same ledger: count, Merkle
// root at every size, and every entry as read back.
func sameLedger(t *testing.T, rs ...*testMain) {
	t.Helper()
	ctx := context.Background()
	n, root, err := rs[0].Store.TreeHead(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs[1:] {
		m, other, err := r.Store.TreeHead(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if m != n || other != root {
			t.Fatalf("%s: size %d root %x; %s: size %d root %x", rs[0].Config.Replica, n, root, r.Config.Replica, m, other)
		}
		for size := int64(1); size <= n; size++ {
			want, err := rs[0].Store.RootAt(ctx, size)
			if err != nil {
				t.Fatal(err)
			}
			got, err := r.Store.RootAt(ctx, size)
			if err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Errorf("size %d: roots differ (%s)", size, describeEntry(t, r, uint64(size)))
			}
			e0, err := rs[0].Store.Entry(ctx, uint64(size))
			if err != nil {
				t.Fatal(err)
			}
			e1, err := r.Store.Entry(ctx, uint64(size))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(e0, e1) {
				t.Errorf("entry %d differs:\n%+v\n%+v", size, e0, e1)
			}
		}
	}
}

// describeEntry names entry seq of r for a failure message.
func describeEntry(t *testing.T, r *testMain, seq uint64) string {
	e, err := r.Store.Entry(context.Background(), seq)
	if err != nil {
		return err.Error()
	}
	return fmt.Sprintf("entry %d: %s %s", seq, e.Event.Type, e.Event.ID)
}
