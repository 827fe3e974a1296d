package nats_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	natsio "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sharelog/sharelog/internal/ledger"
	"github.com/sharelog/sharelog/internal/nats"
)

// TestCheckpointPublisher publishes checkpoints on a real embedded server and
// reads them back as an auditor does: from the subject, and from the bucket's
// history.
func TestCheckpointPublisher(t *testing.T) {
	ctx := context.Background()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	ns, err := nats.StartServer(nats.ServerConfig{Listen: "127.0.0.1:0", StoreDir: filepath.Join(t.TempDir(), "js")}, logger)
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
	if _, err := nats.KeptCheckpoints(ctx, js); ledger.ErrorCode(err) != ledger.ENOTFOUND {
		t.Errorf("KeptCheckpoints before the bucket exists = %v, want ENOTFOUND", err)
	}
	kv, err := nats.EnsureCheckpointBucket(ctx, js, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := nats.EnsureCheckpointBucket(ctx, js, 0); err != nil {
		t.Errorf("EnsureCheckpointBucket again: %v", err)
	}
	if _, err := nats.LatestKeptCheckpoint(ctx, js); ledger.ErrorCode(err) != ledger.ENOTFOUND {
		t.Errorf("LatestKeptCheckpoint of an empty bucket = %v, want ENOTFOUND", err)
	}
	sub, err := nc.SubscribeSync(nats.SubjectCheckpoint)
	if err != nil {
		t.Fatal(err)
	}
	nc.Flush()
	p := nats.NewCheckpointPublisher(nc, kv)
	notes := [][]byte{[]byte("sharelog/t\n2\nAAAA\n\n— sig\n"), []byte("sharelog/t\n5\nBBBB\n\n— sig\n")}
	for i, n := range notes {
		if err := p.PublishCheckpoint(ctx, int64(i+1), n); err != nil {
			t.Fatal(err)
		}
		msg, err := sub.NextMsg(5 * time.Second)
		if err != nil {
			t.Fatalf("message %d on %s: %v", i, nats.SubjectCheckpoint, err)
		}
		if string(msg.Data) != string(n) {
			t.Errorf("message %d on %s = %q, want %q", i, nats.SubjectCheckpoint, msg.Data, n)
		}
	}
	kept, err := nats.KeptCheckpoints(ctx, js)
	if err != nil || len(kept) != 2 || string(kept[0].Signed) != string(notes[0]) || string(kept[1].Signed) != string(notes[1]) || kept[0].Revision >= kept[1].Revision {
		t.Errorf("KeptCheckpoints = %+v, %v; want both, oldest first", kept, err)
	}
	latest, err := nats.LatestKeptCheckpoint(ctx, js)
	if err != nil || string(latest) != string(notes[1]) {
		t.Errorf("LatestKeptCheckpoint = %q, %v", latest, err)
	}
	// After a restart, the latest stored checkpoint published again is
	// not kept twice.
	p2 := nats.NewCheckpointPublisher(nc, kv)
	if err := p2.PublishCheckpoint(ctx, 5, notes[1]); err != nil {
		t.Fatal(err)
	}
	if kept, _ := nats.KeptCheckpoints(ctx, js); len(kept) != 2 {
		t.Errorf("after publishing the same latest again: %d kept, want 2", len(kept))
	}
	if _, err := sub.NextMsg(200 * time.Millisecond); !errors.Is(err, natsio.ErrTimeout) {
		t.Errorf("the same latest was published again on the subject: %v", err)
	}
	// The bucket keeps CheckpointHistory of them.
	for i := range nats.CheckpointHistory + 3 {
		if err := p2.PublishCheckpoint(ctx, int64(10+i), []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if kept, _ := nats.KeptCheckpoints(ctx, js); len(kept) != nats.CheckpointHistory {
		t.Errorf("bucket keeps %d checkpoints, want %d", len(kept), nats.CheckpointHistory)
	}
}
