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

	"github.com/sharelog/sharelog/internal/cloudevents"
	"github.com/sharelog/sharelog/internal/metrics"
	"github.com/sharelog/sharelog/internal/nats"
	"github.com/sharelog/sharelog/internal/store"
	"github.com/sharelog/sharelog/internal/vocab"
)

// TestIngestGapless: SHARELOG_IN purged past an empty ledger's position.
// Gapless (replica mode), the ingest loop stops with ErrStreamGap and
// applies nothing; otherwise it consumes from the stream's first message,
// as a single sharelog always has.
func TestIngestGapless(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	ns, err := nats.StartServer(nats.ServerConfig{Listen: "127.0.0.1:0", StoreDir: filepath.Join(dir, "js")}, logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Shutdown)
	nc, err := natsio.Connect("", natsio.InProcessServer(ns))
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
	for range 3 {
		if _, err := js.Publish(ctx, "sharelog.in.casework", []byte("not an event")); err != nil {
			t.Fatal(err)
		}
	}
	in, _ := js.Stream(ctx, nats.StreamIn)
	if err := in.Purge(ctx, jetstream.WithPurgeSequence(3)); err != nil { // keeps 3
		t.Fatal(err)
	}
	voc, err := vocab.Load()
	if err != nil {
		t.Fatal(err)
	}
	dec, err := cloudevents.NewDecoder(voc)
	if err != nil {
		t.Fatal(err)
	}
	for _, gapless := range []bool{true, false} {
		st, err := store.Open(store.Config{Dir: t.TempDir(), KeyFile: filepath.Join(dir, "site.key"), Logger: logger})
		if err != nil {
			t.Fatal(err)
		}
		ing := nats.NewIngester(js, st, dec, metrics.New(), logger, nats.IngestConfig{Gapless: gapless})
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		done := make(chan error, 1)
		go func() { done <- ing.Run(rctx) }()
		if gapless {
			if err := <-done; !errors.Is(err, nats.ErrStreamGap) {
				t.Errorf("gapless: Run = %v, want ErrStreamGap", err)
			}
			if st.Applied() != 0 {
				t.Errorf("gapless: applied %d, want 0", st.Applied())
			}
		} else {
			if err := st.WaitApplied(rctx, 3); err != nil {
				t.Errorf("not gapless: %v (applied %d)", err, st.Applied())
			}
			cancel()
			if err := <-done; err != nil {
				t.Errorf("not gapless: Run = %v", err)
			}
		}
		cancel()
		st.Close()
	}
}
