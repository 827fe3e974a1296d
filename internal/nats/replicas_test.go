package nats_test

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	natsio "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sharelog/sharelog/internal/clustertest"
	"github.com/sharelog/sharelog/internal/nats"
	"github.com/sharelog/sharelog/internal/notify"
)

// TestStreamReplicasOnCluster creates sharelog's streams and checkpoint
// bucket at one replica on a three-node cluster, then ensures them again at
// three (--stream-replicas 3 on an existing deployment): each is moved to
// three replicas, one leader and two peers, and SHARELOG_IN keeps what it
// held.
func TestStreamReplicasOnCluster(t *testing.T) {
	ctx := context.Background()
	c := clustertest.Start(t, 3)
	_, js := c.Connect()
	ensure := func(replicas int) {
		t.Helper()
		if _, err := nats.EnsureStreams(ctx, js, nats.StreamConfig{Replicas: replicas}); err != nil {
			t.Fatalf("EnsureStreams at %d: %v", replicas, err)
		}
		if err := notify.EnsureStream(ctx, js, notify.StreamConfig{Replicas: replicas}); err != nil {
			t.Fatalf("notify.EnsureStream at %d: %v", replicas, err)
		}
		if _, err := nats.EnsureCheckpointBucket(ctx, js, replicas); err != nil {
			t.Fatalf("EnsureCheckpointBucket at %d: %v", replicas, err)
		}
	}
	names := []string{nats.StreamIn, nats.StreamRejected, notify.StreamNotices, nats.StreamCheckpoints}
	check := func(replicas int) {
		t.Helper()
		for _, name := range names {
			info := c.WaitStream(js, name, replicas)
			if info.Config.Replicas != replicas {
				t.Errorf("%s: configured replicas %d, want %d", name, info.Config.Replicas, replicas)
			}
		}
	}
	ensure(1)
	check(1)
	if _, err := js.Publish(ctx, "sharelog.in.casework", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	ensure(3)
	check(3)
	if last, err := nats.LastSeq(ctx, js); err != nil || last != 1 {
		t.Errorf("SHARELOG_IN after the move: last sequence %d (%v), want 1", last, err)
	}
	ensure(3) // again, as every start does: nothing to change
	check(3)
}

// TestStreamReplicasRefused asks one server outside a cluster for three
// replicas: refused, naming the flag and what the deployment lacks; the
// stream is left as it was.
func TestStreamReplicasRefused(t *testing.T) {
	ctx := context.Background()
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
	if _, err := nats.EnsureStreams(ctx, js, nats.StreamConfig{}); err != nil {
		t.Fatal(err)
	}
	_, err = nats.EnsureStreams(ctx, js, nats.StreamConfig{Replicas: 3})
	if err == nil {
		t.Fatal("EnsureStreams at 3 replicas on one server: no error")
	}
	for _, want := range []string{"stream SHARELOG_IN at 3 replicas", "--stream-replicas 3", "at least 3 JetStream servers in one cluster"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if _, err := nats.EnsureCheckpointBucket(ctx, js, 3); err == nil || !strings.Contains(err.Error(), "key-value bucket SHARELOG_CHECKPOINTS at 3 replicas") {
		t.Errorf("EnsureCheckpointBucket at 3 on one server: %v", err)
	}
	s, err := js.Stream(ctx, nats.StreamIn)
	if err != nil || s.CachedInfo().Config.Replicas != 1 {
		t.Errorf("SHARELOG_IN after the refusal: %v", err)
	}
}
