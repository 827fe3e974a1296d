package snapshot_test

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sharelog/sharelog/internal/snapshot"
)

// TestTakeWithStaleReplica takes and restores snapshots while a server
// that has none of the bucket's metadata answers direct gets beside the
// one that has it: the stand-in for a follower of a replicated bucket that
// has not yet applied what its leader acknowledged (a mirror of the
// bucket's chunks only, serving the bucket's direct gets, as a follower
// does). Take renames the pending object it has just stored, List looks
// for any object, and Restore reads the snapshot List has just listed: each
// sees the bucket as its leader does, since the bucket is read through the
// leader. (With direct gets, Take failed about every other time, "cannot
// update meta for a deleted object", as TestClusterScenario saw once a NATS
// node had restarted.)
func TestTakeWithStaleReplica(t *testing.T) {
	ctx := context.Background()
	js, _ := startJS(t)
	keyDir := t.TempDir()
	src := open(t, ledgerConfig(t, keyDir))
	snaps := newSnapshots(t, js, keyDir, snapshot.Config{Replica: "a"})
	const stream = "OBJ_" + snapshot.Bucket
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name:         "STALE_SNAPSHOTS",
		Storage:      jetstream.MemoryStorage,
		Mirror:       &jetstream.StreamSource{Name: stream, FilterSubject: "$O." + snapshot.Bucket + ".C.>"},
		MirrorDirect: true,
	}); err != nil {
		t.Fatal(err)
	}
	bucket, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	if bucket.CachedInfo().Config.AllowDirect {
		t.Errorf("the bucket's stream allows direct gets")
	}
	for i := range 8 {
		apply(t, src, 2)
		info, err := snaps.Take(ctx, src)
		if err != nil {
			t.Fatalf("snapshot %d: %v", i, err)
		}
		latest, ok, err := snaps.Latest(ctx)
		if err != nil || !ok || latest.Name != info.Name {
			t.Fatalf("snapshot %d: Latest = %+v, %v, %v; want %s", i, latest, ok, err, info.Name)
		}
		dst, err := snaps.Restore(ctx, latest, ledgerConfig(t, keyDir))
		if err != nil {
			t.Fatalf("snapshot %d: restore: %v", i, err)
		}
		sameLedger(t, src, dst)
		dst.Close()
	}
}
