package nats_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	natsio "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sharelog/sharelog/internal/cloudevents"
	"github.com/sharelog/sharelog/internal/ledger"
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
}

func startPipeline(tb testing.TB) *pipeline {
	tb.Helper()
	dir := tb.TempDir()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	ns, err := nats.StartServer(nats.ServerConfig{Listen: "127.0.0.1:0", StoreDir: filepath.Join(dir, "js")}, logger)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(ns.Shutdown)
	nc, err := natsio.Connect("", natsio.InProcessServer(ns))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(nc.Close)
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4000))
	if err != nil {
		tb.Fatal(err)
	}
	ctx := context.Background()
	if err := nats.EnsureStreams(ctx, js, nats.StreamConfig{}); err != nil {
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
	in := nats.NewIngester(js, st, dec, metrics.New(), logger, nats.IngestConfig{})
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { in.Run(runCtx); close(done) }()
	tb.Cleanup(func() { cancel(); <-done; st.Close() })
	return &pipeline{js: js, store: st, in: in}
}

// publishAll publishes messages asynchronously and returns the last stream sequence.
func (p *pipeline) publishAll(tb testing.TB, subject string, msgs [][]byte) uint64 {
	tb.Helper()
	futures := make([]jetstream.PubAckFuture, len(msgs))
	for i, m := range msgs {
		f, err := p.js.PublishAsync(subject, m)
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

// recipientEvents returns n recipient registrations.
func recipientEvents(n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i], _ = json.Marshal(map[string]any{
			"specversion": "1.0", "id": fmt.Sprintf("r-%d", i), "source": "bench", "type": ledger.TypeRecipient,
			"time": "2026-01-01T00:00:00Z", "datacontenttype": "application/json",
			"data": map[string]any{"id": fmt.Sprintf("force-%03d", i), "name": fmt.Sprintf("Force %d", i),
				"role": "competent-authority", "country": "GB", "regime": "dpa-part3", "channel": map[string]any{"type": "nats"}},
		})
	}
	return out
}

// disclosureEvents returns n realistic disclosures of about 600 bytes, with
// subjects drawn from a skewed (Zipf) distribution over 100,000 people and
// recipients over 200.
func disclosureEvents(n int, seed uint64) [][]byte {
	r := rand.New(rand.NewPCG(seed, 1))
	zipf := rand.NewZipf(r, 1.1, 1, 99_999)
	cats := [][]string{{"user.criminal_history"}, {"user.name", "user.contact.address"}, {"user.criminal_history", "user.name", "user.demographic.date_of_birth"}}
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	out := make([][]byte, n)
	for i := range out {
		t := at.Add(time.Duration(i) * time.Second).Format(time.RFC3339)
		out[i], _ = json.Marshal(map[string]any{
			"specversion": "1.0", "id": fmt.Sprintf("disc-%d-%08d", seed, i), "source": "casework/disclosure-service",
			"type": ledger.TypeDisclosure, "time": t, "datacontenttype": "application/json",
			"data": map[string]any{
				"subjects":      []map[string]string{{"scheme": "dbs-ref", "id": fmt.Sprintf("%012d", zipf.Uint64())}},
				"recipient":     fmt.Sprintf("force-%03d", r.IntN(200)),
				"categories":    cats[r.IntN(len(cats))],
				"purpose":       "safeguarding.disclosure_check",
				"lawfulBasis":   "dpa-s35-2-b",
				"regime":        "dpa-part3",
				"disclosedAt":   t,
				"disclosedBy":   "disclosure-service/worker-07",
				"justification": "Enhanced check: PNC search returned a possible match; referred for local police information",
				"records":       []map[string]string{{"system": "pnc", "ref": fmt.Sprintf("PNC/%08d", r.IntN(1e8)), "version": "3"}},
			},
		})
	}
	return out
}

// BenchmarkIngest measures the whole ingest path: async publish to the
// embedded JetStream, consume, decode, validate, dedupe, append, index and
// commit, timed until the last event is committed and queryable.
// Run: go test -run '^$' -bench BenchmarkIngest -benchtime 100000x ./internal/nats
func BenchmarkIngest(b *testing.B) {
	p := startPipeline(b)
	last := p.publishAll(b, "sharelog.in.bench", recipientEvents(200))
	if err := p.store.WaitApplied(context.Background(), last); err != nil {
		b.Fatal(err)
	}
	events := disclosureEvents(b.N, 1)
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
	if got := p.store.Count() - before; got != uint64(b.N) {
		b.Fatalf("recorded %d of %d events", got, b.N)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(size)/float64(b.N), "bytes/event")
}

// TestIngestRecordsEveryEvent is BenchmarkIngest's path at a small size, as a
// test: every published event is recorded once, in stream order, and a replay
// of all of them records nothing new.
func TestIngestRecordsEveryEvent(t *testing.T) {
	p := startPipeline(t)
	ctx := context.Background()
	last := p.publishAll(t, "sharelog.in.test", recipientEvents(200))
	events := disclosureEvents(3000, 2)
	last = p.publishAll(t, "sharelog.in.test", events)
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
	if first.Event.ID != "disc-2-00000000" {
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
