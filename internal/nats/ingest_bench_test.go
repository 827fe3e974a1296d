package nats_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sharelog/sharelog/internal/bench"
	"github.com/sharelog/sharelog/internal/cloudevents"
	"github.com/sharelog/sharelog/internal/metrics"
	"github.com/sharelog/sharelog/internal/nats"
	"github.com/sharelog/sharelog/internal/store"
	"github.com/sharelog/sharelog/internal/vocab"
)

// pipeline is the ingest path of one sharelog: embedded NATS, store, ingest loop.
type pipeline struct {
	js    jetstream.JetStream
	store *store.Store
	in    *nats.Ingester
	dec   *cloudevents.Decoder
	m     *metrics.Metrics
}

func startPipeline(tb testing.TB) *pipeline { return startPipelineWith(tb, false) }

// startPipelineWith starts the pipeline; syncAlways makes JetStream fsync
// every write before acknowledging it.
func startPipelineWith(tb testing.TB, syncAlways bool) *pipeline {
	tb.Helper()
	return startPipelineConfig(tb, syncAlways, nats.IngestConfig{})
}

// startPipelineConfig is startPipelineWith with the ingest loop's config.
func startPipelineConfig(tb testing.TB, syncAlways bool, cfg nats.IngestConfig) *pipeline {
	tb.Helper()
	dir := tb.TempDir()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	ns, err := nats.StartServer(nats.ServerConfig{Listen: "127.0.0.1:0", StoreDir: filepath.Join(dir, "js"), SyncAlways: syncAlways}, logger)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(ns.Shutdown)
	nc, err := nats.ConnectEmbedded(ns, false) // as serve connects
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(nc.Close)
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4000))
	if err != nil {
		tb.Fatal(err)
	}
	ctx := context.Background()
	if _, err := nats.EnsureStreams(ctx, js, nats.StreamConfig{}); err != nil {
		tb.Fatal(err)
	}
	st, err := store.Open(store.Config{Dir: filepath.Join(dir, "ledger"), KeyFile: filepath.Join(dir, "site.key"), Logger: logger})
	if err != nil {
		tb.Fatal(err)
	}
	voc, err := vocab.Load()
	if err != nil {
		tb.Fatal(err)
	}
	dec, err := cloudevents.NewDecoder(voc)
	if err != nil {
		tb.Fatal(err)
	}
	m := metrics.New()
	in := nats.NewIngester(js, st, dec, m, logger, cfg)
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { in.Run(runCtx); close(done) }()
	tb.Cleanup(func() { cancel(); <-done; st.Close() })
	return &pipeline{js: js, store: st, in: in, dec: dec, m: m}
}

// publishAll publishes messages asynchronously and returns the last stream sequence.
func (p *pipeline) publishAll(tb testing.TB, subject string, msgs [][]byte) uint64 {
	tb.Helper()
	futures := make([]jetstream.PubAckFuture, len(msgs))
	for i, m := range msgs {
		f, err := p.js.PublishAsync(subject, m, jetstream.WithStallWait(time.Minute))
		if err != nil {
			tb.Fatal(err)
		}
		futures[i] = f
	}
	var last uint64
	for _, f := range futures {
		select {
		case a := <-f.Ok():
			last = max(last, a.Sequence)
		case err := <-f.Err():
			tb.Fatal(err)
		}
	}
	return last
}

// BenchmarkIngest measures the whole ingest path: async publish to the
// embedded JetStream, consume, decode, validate, dedupe, append, index and
// commit, timed until the last event is committed and queryable.
// Run: go test -run '^$' -bench BenchmarkIngest -benchtime 100000x ./internal/nats
func BenchmarkIngest(b *testing.B) { benchIngest(b, 0) }

// BenchmarkIngestRefusals is BenchmarkIngest with one event in 100 a
// disclosure to a recipient nobody registered, which the rules refuse and
// the ingest loop republishes to SHARELOG_REJECTED: a careless producer.
func BenchmarkIngestRefusals(b *testing.B) { benchIngest(b, 100) }

// benchIngest runs BenchmarkIngest with every refuseEvery-th event (0:
// none) refused.
func benchIngest(b *testing.B, refuseEvery int) {
	p := startPipeline(b)
	g := &bench.Generator{Seed: 1}
	last := p.publishAll(b, "sharelog.in.bench", g.RecipientEvents())
	if err := p.store.WaitApplied(context.Background(), last); err != nil {
		b.Fatal(err)
	}
	events := g.Disclosures(0, b.N, b.N)
	refused := 0
	for i := range events {
		if refuseEvery > 0 && i%refuseEvery == refuseEvery-1 {
			events[i] = disclosureEvent(b, fmt.Sprintf("refused-%d", i), fmt.Sprintf("R%d", i), "nobody", "2026-01-01T00:00:00Z")
			refused++
		}
	}
	size := 0
	for _, e := range events {
		size += len(e)
	}
	before := p.store.Count()
	b.ResetTimer()
	start := time.Now()
	last = p.publishAll(b, "sharelog.in.bench", events)
	if err := p.store.WaitApplied(context.Background(), last); err != nil {
		b.Fatal(err)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	if got := p.store.Count() - before; got != uint64(b.N-refused) {
		b.Fatalf("recorded %d of %d events", got, b.N-refused)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(size)/float64(b.N), "bytes/event")
	b.ReportMetric(counterValue(b, p.m, "sharelog_ingest_batches_reapplied_total", ""), "reapplied-batches")
}

// TestIngestRecordsEveryEvent is BenchmarkIngest's path at a small size, as a
// test: every published event is recorded once, in stream order, and a replay
// of all of them records nothing new.
func TestIngestRecordsEveryEvent(t *testing.T) {
	p := startPipeline(t)
	ctx := context.Background()
	g := &bench.Generator{Seed: 2}
	p.publishAll(t, "sharelog.in.test", g.RecipientEvents())
	events := g.Disclosures(0, 3000, 3000)
	last := p.publishAll(t, "sharelog.in.test", events)
	if err := p.store.WaitApplied(ctx, last); err != nil {
		t.Fatal(err)
	}
	if got, want := p.store.Count(), uint64(200+3000); got != want {
		t.Fatalf("entries = %d, want %d", got, want)
	}
	first, err := p.store.Entry(ctx, 201)
	if err != nil {
		t.Fatal(err)
	}
	if first.Event.ID != "disc-2-000000000" {
		t.Errorf("entry 201 is %s, want the first disclosure", first.Event.ID)
	}
	last = p.publishAll(t, "sharelog.in.test", events)
	if err := p.store.WaitApplied(ctx, last); err != nil {
		t.Fatal(err)
	}
	if got := p.store.Count(); got != 3200 {
		t.Errorf("after a replay: %d entries, want 3200", got)
	}
}
