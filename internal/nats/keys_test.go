package nats_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	natsio "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sharelog/sharelog/internal/bench"
	"github.com/sharelog/sharelog/internal/cloudevents"
	"github.com/sharelog/sharelog/internal/ledger"
	"github.com/sharelog/sharelog/internal/metrics"
	"github.com/sharelog/sharelog/internal/nats"
	"github.com/sharelog/sharelog/internal/store"
	"github.com/sharelog/sharelog/internal/vocab"
)

// TestKeysFirstWriterWins runs two replicas' Keys on one embedded server:
// asked at once for the same secrets, each with values of its own, both
// get the same value for each name, which is one of theirs. A destroyed
// secret and a name destroyed before anyone stored it are never made
// again: asking for them is ErrSecretDestroyed; one deleted from the bucket
// outside sharelog is an error too, not a new secret.
func TestKeysFirstWriterWins(t *testing.T) {
	dir := t.TempDir()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	ns, err := nats.StartServer(nats.ServerConfig{Listen: "127.0.0.1:0", StoreDir: filepath.Join(dir, "js")}, logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Shutdown)
	ctx := context.Background()
	var keys [2]*nats.Keys
	var js jetstream.JetStream
	for i := range keys {
		nc, err := natsio.Connect("", natsio.InProcessServer(ns))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		if js, err = jetstream.New(nc); err != nil {
			t.Fatal(err)
		}
		if keys[i], err = nats.EnsureKeys(ctx, js, 0, logger); err != nil {
			t.Fatal(err)
		}
	}
	var names []string
	for i := range 100 {
		names = append(names, store.SaltName(uint64(i+1), 0), store.DataKeyName(uint64(i+1)))
	}
	var got [2][][]byte
	var wg sync.WaitGroup
	for i := range keys {
		wg.Go(func() {
			fresh := func(name string) []byte { return []byte(fmt.Sprintf("replica %d: %s", i, name)) }
			var err error
			if got[i], err = keys[i].Secrets(ctx, names, fresh); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	won := [2]int{}
	for j, name := range names {
		if !bytes.Equal(got[0][j], got[1][j]) {
			t.Fatalf("%s: %q and %q", name, got[0][j], got[1][j])
		}
		for i := range keys {
			if bytes.Equal(got[0][j], []byte(fmt.Sprintf("replica %d: %s", i, name))) {
				won[i]++
			}
		}
	}
	if won[0]+won[1] != len(names) {
		t.Fatalf("values won by replica 0 and 1: %v, want %d in all", won, len(names))
	}

	kv, err := js.KeyValue(ctx, nats.BucketKeys)
	if err != nil {
		t.Fatal(err)
	}
	never := store.SaltName(999, 1)
	if err := keys[0].Destroy(ctx, []string{names[0], names[1], never}); err != nil {
		t.Fatal(err)
	}
	if err := keys[1].Destroy(ctx, []string{names[0]}); err != nil {
		t.Fatalf("destroying again: %v", err)
	}
	if err := kv.Delete(ctx, names[2]); err != nil {
		t.Fatal(err)
	}
	// A name deleted from the bucket, then destroyed, holds the tombstone.
	if err := kv.Delete(ctx, names[4]); err != nil {
		t.Fatal(err)
	}
	if err := keys[0].Destroy(ctx, names[4:5]); err != nil {
		t.Fatal(err)
	}
	if e, err := kv.Get(ctx, names[4]); err != nil || !bytes.Equal(e.Value(), []byte("destroyed")) {
		t.Errorf("%s after a delete and Destroy: %v", names[4], err)
	}
	fresh := func(string) []byte { return []byte("new") }
	for _, name := range []string{names[0], names[1], never, names[4]} {
		if _, err := keys[1].Secrets(ctx, []string{name, names[3]}, fresh); !errors.Is(err, store.ErrSecretDestroyed) {
			t.Errorf("%s: %v, want store.ErrSecretDestroyed", name, err)
		}
	}
	// One deleted outside sharelog is not made again either: an error
	// (the ingest loop retries), not a new value.
	if v, err := keys[1].Secrets(ctx, names[2:3], fresh); err == nil || errors.Is(err, store.ErrSecretDestroyed) {
		t.Errorf("%s deleted: %q, %v; want an error other than destroyed", names[2], v, err)
	}
	if v, err := keys[1].Secrets(ctx, names[3:4], fresh); err != nil || !bytes.Equal(v[0], got[0][3]) {
		t.Errorf("a secret still there: %q, %v", v, err)
	}
	h, err := kv.History(ctx, names[0])
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != 1 || bytes.Equal(h[0].Value(), got[0][0]) {
		t.Errorf("the destroyed secret's history holds %d values, the secret among them: want the tombstone alone", len(h))
	}
}

// BenchmarkIngestReplica is BenchmarkIngest on a replica: each batch's
// new subjects' salts come from SHARELOG_KEYS (one Secrets call per batch)
// and its entries are sealed with synthetic nonces. It reports the CPU time
// of the whole process (NATS server included) per event, which, on a
// shared machine, says more than the rate; compare with replica=false.
// Run: go test -run '^$' -bench BenchmarkIngestReplica -benchtime 20000x ./internal/nats
func BenchmarkIngestReplica(b *testing.B) {
	for _, replica := range []bool{false, true} {
		b.Run(fmt.Sprintf("replica=%v", replica), func(b *testing.B) { benchIngestReplica(b, replica) })
	}
}

func benchIngestReplica(b *testing.B, replica bool) {
	dir := b.TempDir()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	ns, err := nats.StartServer(nats.ServerConfig{Listen: "127.0.0.1:0", StoreDir: filepath.Join(dir, "js")}, logger)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(ns.Shutdown)
	nc, err := natsio.Connect("", natsio.InProcessServer(ns))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(nc.Close)
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4000))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if _, err := nats.EnsureStreams(ctx, js, nats.StreamConfig{}); err != nil {
		b.Fatal(err)
	}
	cfg := store.Config{Dir: filepath.Join(dir, "ledger"), KeyFile: filepath.Join(dir, "site.key"), Logger: logger}
	if replica {
		if cfg.Secrets, err = nats.EnsureKeys(ctx, js, 0, logger); err != nil {
			b.Fatal(err)
		}
	}
	st, err := store.Open(cfg)
	if err != nil {
		b.Fatal(err)
	}
	voc, err := vocab.Load()
	if err != nil {
		b.Fatal(err)
	}
	dec, err := cloudevents.NewDecoder(voc)
	if err != nil {
		b.Fatal(err)
	}
	in := nats.NewIngester(js, st, dec, metrics.New(), logger, nats.IngestConfig{})
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- in.Run(runCtx) }()
	b.Cleanup(func() { cancel(); <-done; st.Close() })
	p := &pipeline{js: js, store: st, in: in, dec: dec}

	g := &bench.Generator{Seed: 1}
	last := p.publishAll(b, "sharelog.in.bench", g.RecipientEvents())
	if err := st.WaitApplied(ctx, last); err != nil {
		b.Fatal(err)
	}
	events := g.Disclosures(0, b.N, b.N)
	before := st.Count()
	cpu := processCPU(b)
	b.ResetTimer()
	last = p.publishAll(b, "sharelog.in.bench", events)
	if err := st.WaitApplied(ctx, last); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	if got := st.Count() - before; got != uint64(b.N) {
		b.Fatalf("recorded %d of %d events", got, b.N)
	}
	b.ReportMetric(float64(processCPU(b)-cpu)/float64(time.Microsecond)/float64(b.N), "cpu-µs/event")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// processCPU returns the CPU time (user and system) this process has used.
func processCPU(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// countedSecrets counts the calls a store makes to the real Keys.
type countedSecrets struct {
	*nats.Keys
	calls atomic.Int32
}

func (c *countedSecrets) Secrets(ctx context.Context, names []string, fresh func(string) []byte) ([][]byte, error) {
	c.calls.Add(1)
	return c.Keys.Secrets(ctx, names, fresh)
}

// TestPrefetchOneCallPerBatch: a batch of 500 disclosures, most naming
// people new to the ledger, gets its secrets from SHARELOG_KEYS in one
// call, made by Prefetch; a batch naming only people already known makes
// none.
func TestPrefetchOneCallPerBatch(t *testing.T) {
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
	ctx := context.Background()
	keys, err := nats.EnsureKeys(ctx, js, 0, logger)
	if err != nil {
		t.Fatal(err)
	}
	counted := &countedSecrets{Keys: keys}
	st, err := store.Open(store.Config{Dir: filepath.Join(dir, "ledger"), KeyFile: filepath.Join(dir, "site.key"), Logger: logger, Secrets: counted})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	voc, err := vocab.Load()
	if err != nil {
		t.Fatal(err)
	}
	dec, err := cloudevents.NewDecoder(voc)
	if err != nil {
		t.Fatal(err)
	}
	g := &bench.Generator{Seed: 3}
	seq := uint64(0)
	apply := func(raws [][]byte) {
		t.Helper()
		var pending []store.Pending
		for _, raw := range raws {
			ev, err := dec.DecodeStructured(raw)
			if err != nil {
				t.Fatal(err)
			}
			seq++
			pending = append(pending, store.Pending{StreamSeq: seq, Event: ev})
		}
		b := st.Begin()
		defer b.Discard()
		if err := b.Prefetch(ctx, pending); err != nil {
			t.Fatal(err)
		}
		for _, p := range pending {
			if out, err := b.AppendAt(p.StreamSeq, p.Event, time.Unix(int64(p.StreamSeq), 0)); err != nil || out != ledger.Recorded {
				t.Fatalf("stream seq %d: %v %v", p.StreamSeq, out, err)
			}
		}
		if err := b.Commit(seq); err != nil {
			t.Fatal(err)
		}
	}
	apply(g.RecipientEvents())
	if n := counted.calls.Load(); n != 0 {
		t.Errorf("recipients: %d calls, want none", n)
	}
	events := g.Disclosures(0, 500, 1000)
	apply(events)
	if n := counted.calls.Load(); n != 1 {
		t.Errorf("500 disclosures: %d calls, want 1", n)
	}
	// The same people again (other disclosure ids): all known.
	again := make([][]byte, len(events))
	for i, raw := range events {
		again[i] = bytes.Replace(raw, []byte(`"id":"disc-`), []byte(`"id":"again-`), 1)
	}
	apply(again)
	if n := counted.calls.Load(); n != 1 {
		t.Errorf("500 disclosures of known people: %d calls in all, want still 1", n)
	}
}
