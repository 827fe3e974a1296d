package main

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	natsio "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sharelog/sharelog/internal/checkpoint"
	"github.com/sharelog/sharelog/internal/ledger"
	"github.com/sharelog/sharelog/internal/nats"
	"github.com/sharelog/sharelog/internal/store"
)

// TestKeepMarks: the stream keeper's rule. A sequence is due once a mark at
// or past it was seen keep ago, its entries are checkpointed, and it is
// within the bound; the marks stay few.
func TestKeepMarks(t *testing.T) {
	keep := time.Minute
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var ms keepMarks
	ms.note(t0, 10, 4)
	ms.note(t0.Add(time.Second), 10, 4) // not moved: no new mark
	ms.note(t0.Add(10*time.Second), 20, 9)
	ms.note(t0.Add(20*time.Second), 30, 12)
	if len(ms) != 3 {
		t.Fatalf("marks = %+v", ms)
	}
	if ms.ripe(t0.Add(keep-time.Nanosecond), keep) {
		t.Error("ripe before keep")
	}
	if got := ms.due(t0.Add(keep-time.Nanosecond), keep, 100, 100); got != 0 {
		t.Errorf("due before keep = %d", got)
	}
	// Keep passed for the first two marks, but the checkpoint covers 8
	// entries: the first mark (4 entries) alone is due.
	if got := ms.due(t0.Add(keep+15*time.Second), keep, 8, 100); got != 10 {
		t.Errorf("due with checkpoint 8 = %d, want 10", got)
	}
	if len(ms) != 2 || ms[0].applied != 20 {
		t.Errorf("marks after purging to 10 = %+v", ms)
	}
	// No checkpoint covers the next mark's 9 entries: nothing.
	if got := ms.due(t0.Add(keep+15*time.Second), keep, 8, 100); got != 0 {
		t.Errorf("due with the next mark uncovered = %d", got)
	}
	// The bound holds the purge back (a snapshot at 15); the newer ripe
	// mark stays, the older goes.
	ms.note(t0.Add(30*time.Second), 40, 15)
	if got := ms.due(t0.Add(keep+25*time.Second), keep, 12, 15); got != 15 {
		t.Errorf("due with bound 15 = %d, want 15", got)
	}
	if len(ms) != 2 || ms[0].applied != 30 || ms[1].applied != 40 {
		t.Errorf("marks after the bound = %+v", ms)
	}
	// Nothing is due beyond the newest ripe mark, however far the bound.
	if got := ms.due(t0.Add(keep+25*time.Second), keep, 100, 1000); got != 30 {
		t.Errorf("due = %d, want 30", got)
	}
	if got := ms.due(t0.Add(keep+25*time.Second), keep, 100, 0); got != 0 {
		t.Errorf("due with bound 0 = %d", got)
	}
}

// streamState returns SHARELOG_IN's first and last sequences.
func streamState(t *testing.T, js jetstream.JetStream) (first, last uint64) {
	t.Helper()
	in, err := js.Stream(context.Background(), nats.StreamIn)
	if err != nil {
		t.Fatal(err)
	}
	info, err := in.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.FirstSeq, info.State.LastSeq
}

// TestStreamKeep runs serve with --stream-keep against a NATS server of its
// own, so that the stream outlives the process: the messages the ledger has
// applied and checkpointed are purged, not before --stream-keep; a late
// duplicate of a purged event is still answered as one; the forgetting job
// finds the person's messages gone and is content; a ledger stopped behind
// the stream loses nothing un-applied to the keeper; and a restart folds the
// rest without a gap.
func TestStreamKeep(t *testing.T) {
	ctx := context.Background()
	url := startJetStreamServer(t)
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.NATS = url
	cfg.StreamKeep = time.Second
	m := startMain(t, cfg)
	_, js := m.connect(t)

	p := ledger.Subject{Scheme: "dbs-ref", ID: "KEEP-FORGET-4471"}
	other := ledger.Subject{Scheme: "dbs-ref", ID: "KEEP-STAY-0093"}
	t0 := time.Date(2025, 1, 2, 9, 0, 0, 0, time.UTC)
	d1 := ukDisclosure("k-1", p, "web", []string{"user.contact.email"}, t0)
	begin := time.Now()
	publishAll(t, m,
		manualRecipient("web", "", 0),
		d1,
		ukDisclosure("k-2", other, "web", []string{"user.contact.email"}, t0.Add(time.Hour)),
		ce("dpo", "erase-1", ledger.TypeErasure, map[string]any{"request": "E-1", "subject": p, "decidedAt": "2025-02-02T10:00:00Z"}),
	)
	if err := m.Ingester.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	applied, count := m.Store.Applied(), m.Store.Count()
	checkFor(t, 20*time.Second, func() error {
		if first, _ := streamState(t, js); first <= applied {
			return fmt.Errorf("SHARELOG_IN starts at %d, the ledger has applied %d", first, applied)
		}
		return nil
	})
	if took := time.Since(begin); took < cfg.StreamKeep {
		t.Errorf("purged %v after the first publish, before --stream-keep %v", took, cfg.StreamKeep)
	}
	if first, last := streamState(t, js); first != applied+1 || last < applied {
		t.Errorf("SHARELOG_IN at %d..%d after the purge, the ledger applied %d", first, last, applied)
	}
	signed, err := m.Store.LatestCheckpoint(ctx)
	if err != nil || signed == nil {
		t.Fatalf("latest checkpoint: %v", err)
	}
	if cp, err := checkpoint.ParseUnverified(signed); err != nil || cp.Size < int64(count) {
		t.Errorf("purged up to %d with the latest checkpoint at %+v (%v), the ledger held %d entries", applied, cp, err, count)
	}

	// A late duplicate of a purged event: the ledger's own dedupe answers.
	if got := publishAll(t, m, d1); strings.Join(got, " ") != "duplicate" {
		t.Errorf("k-1 sent again after its message was purged: %v", got)
	}
	// Forgetting the person: their messages are gone from the stream
	// already, which is not an error.
	st, err := m.Store.Status(ctx, "E-1")
	if err != nil || len(st.Obligations) != 1 {
		t.Fatalf("status E-1 = %+v, %v", st, err)
	}
	publishAll(t, m, ce("dpo", "ex-1", ledger.TypeExemption, map[string]any{
		"notice": st.Obligations[0].Notice, "reason": "impossible", "justification": "no contact", "decidedBy": "dpo",
	}))
	if err := m.Ingester.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	rep, err := m.Retention.Round(ctx)
	if err != nil || len(rep.Forgotten) != 1 {
		t.Fatalf("forgetting round after the purge = %+v, %v", rep, err)
	}
	if err := m.Ingester.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	stopped := m.Store.Applied()
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}

	// The ledger stopped; three more events reach the stream.
	for i := range 3 {
		ev := ukDisclosure(fmt.Sprintf("late-%d", i), other, "web", []string{"user.contact.email"}, t0.Add(time.Duration(2+i)*time.Hour))
		if _, err := js.Publish(ctx, "sharelog.in.casework", mustJSON(t, ev)); err != nil {
			t.Fatal(err)
		}
	}
	_, last := streamState(t, js)
	if last != stopped+3 {
		t.Fatalf("stream ends at %d, want %d", last, stopped+3)
	}
	// The keeper, on the ledger stopped behind, purges at most what it
	// applied, however long ago.
	st2, err := store.Open(store.Config{Dir: filepath.Join(dir, "ledger"), KeyFile: filepath.Join(dir, "site.key"), EncryptAtRest: true})
	if err != nil {
		t.Fatal(err)
	}
	k := &streamKeeper{js: js, st: st2, keep: time.Second, log: m.Logger}
	var marks keepMarks
	now := time.Now()
	for i := range 3 {
		if err := k.round(ctx, &marks, now.Add(time.Duration(i)*time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	if first, last := streamState(t, js); first != stopped+1 || last != stopped+3 {
		t.Errorf("with the ledger at %d, SHARELOG_IN at %d..%d, want %d..%d", stopped, first, last, stopped+1, stopped+3)
	}
	if err := st2.Close(); err != nil {
		t.Fatal(err)
	}

	// Started again, it folds the rest on and purges it in turn.
	m = startMain(t, cfg)
	if err := m.Ingester.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	if m.Store.Applied() != stopped+3 {
		t.Errorf("after the restart the ledger applied %d, want %d", m.Store.Applied(), stopped+3)
	}
	if w, err := m.Store.Who(ctx, other); err != nil || w.Disclosures != 4 {
		t.Errorf("who of the other person after the restart = %+v, %v", w, err)
	}
	checkFor(t, 20*time.Second, func() error {
		if first, _ := streamState(t, js); first <= stopped+3 {
			return fmt.Errorf("SHARELOG_IN starts at %d, the ledger has applied %d", first, stopped+3)
		}
		return nil
	})
	if strings.Contains(m.logs.String(), "ingest failed") {
		t.Errorf("the ingest failed after the purge:\n%s", m.logs)
	}
}

// TestStreamKeepReplicas: in replica mode the leader purges only up to the
// newest snapshot, and a replica started after the purge rebuilds from it.
func TestStreamKeepReplicas(t *testing.T) {
	ctx := context.Background()
	c := newReplicaCluster(t)
	cfgA := c.config(t, "a")
	cfgA.StreamKeep = time.Second
	a := startMain(t, cfgA)
	_, js := a.connect(t)
	other := ledger.Subject{Scheme: "dbs-ref", ID: "KEEP-REPL-3310"}
	t0 := time.Date(2025, 1, 2, 9, 0, 0, 0, time.UTC)
	publishAll(t, a, manualRecipient("web", "", 0), ukDisclosure("r-1", other, "web", []string{"user.contact.email"}, t0))
	if err := a.Ingester.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	// No snapshot: nothing is purged, however long the ledger has held it.
	time.Sleep(3 * cfgA.StreamKeep)
	if first, _ := streamState(t, js); first != 1 {
		t.Fatalf("SHARELOG_IN starts at %d with no snapshot", first)
	}
	info, err := a.Snapshots.Take(ctx, a.Store)
	if err != nil {
		t.Fatal(err)
	}
	publishAll(t, a, ukDisclosure("r-2", other, "web", []string{"user.contact.email"}, t0.Add(time.Hour)))
	if err := a.Ingester.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	if a.Store.Applied() <= info.Position.Applied {
		t.Fatalf("ledger at %d, snapshot at %d", a.Store.Applied(), info.Position.Applied)
	}
	checkFor(t, 20*time.Second, func() error {
		if first, _ := streamState(t, js); first != info.Position.Applied+1 {
			return fmt.Errorf("SHARELOG_IN starts at %d, the snapshot holds up to %d", first, info.Position.Applied)
		}
		return nil
	})
	time.Sleep(3 * cfgA.StreamKeep)
	if first, _ := streamState(t, js); first != info.Position.Applied+1 {
		t.Errorf("SHARELOG_IN starts at %d, past the snapshot's %d", first, info.Position.Applied)
	}
	b := startMain(t, c.config(t, "b"))
	if !strings.Contains(b.logs.String(), "ledger restored from snapshot") {
		t.Fatalf("b did not restore the snapshot:\n%s", b.logs)
	}
	if err := b.Ingester.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	if w, err := b.Store.Who(ctx, other); err != nil || w.Disclosures != 2 {
		t.Errorf("who on b = %+v, %v", w, err)
	}
}

// TestStreamKeepPurgesInSteps: the keeper purges a backlog in requests of
// at most its step, up to and including the sequence it is given; a purge
// the stream is past already does nothing, and one past the stream's end
// is refused.
func TestStreamKeepPurgesInSteps(t *testing.T) {
	ctx := context.Background()
	js, in := benchStreamIn(t)
	for i := range 25 {
		if _, err := js.Publish(ctx, "sharelog.in.bench", []byte(strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	var logs strings.Builder
	k := &streamKeeper{js: js, step: 4, log: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	state := func() (uint64, uint64) {
		t.Helper()
		info, err := in.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return info.State.FirstSeq, info.State.LastSeq
	}
	if err := k.purge(ctx, 22); err != nil {
		t.Fatal(err)
	}
	if first, last := state(); first != 23 || last != 25 {
		t.Errorf("after purging up to 22: SHARELOG_IN at %d..%d, want 23..25", first, last)
	}
	if !strings.Contains(logs.String(), "messages=22 requests=6 ") {
		t.Errorf("log %q does not say 22 messages were purged in 6 requests of at most 4", logs.String())
	}
	if err := k.purge(ctx, 10); err != nil {
		t.Errorf("purge behind the stream's start: %v", err)
	}
	if err := k.purge(ctx, 30); err == nil {
		t.Error("purge past the stream's end: no error")
	}
	if first, last := state(); first != 23 || last != 25 {
		t.Errorf("SHARELOG_IN at %d..%d, want 23..25 still", first, last)
	}
}

// BenchmarkStreamPurge times the stream keeper's purge: SHARELOG_IN (as
// EnsureStreams makes it, on an embedded server encrypted at rest as serve
// runs it) holding 20,000 messages of 700 bytes, purged in four steps as the
// keeper does every keep/4. It reports the time per message purged; the
// publishing is not timed.
func BenchmarkStreamPurge(b *testing.B) {
	ctx := context.Background()
	js, in := benchStreamIn(b, jetstream.WithPublishAsyncMaxPending(4000))
	const n, steps = 20000, 4
	payload := make([]byte, 700)
	var last uint64
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		for range n {
			if _, err := js.PublishAsync("sharelog.in.bench", payload); err != nil {
				b.Fatal(err)
			}
		}
		<-js.PublishAsyncComplete()
		last += n
		b.StartTimer()
		for i := 1; i <= steps; i++ {
			if err := in.Purge(ctx, jetstream.WithPurgeSequence(last-n+uint64(i*n/steps)+1)); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/msg")
}

// BenchmarkPublishWhilePurging times synchronous publishes to SHARELOG_IN
// (embedded server, encrypted at rest) with the stream purged up to
// 5,000 messages behind its end every 250 ms, as the stream keeper does,
// and without: the p50 and p99 of a publish's acknowledgement, to see
// whether a purge holds publishes up.
func BenchmarkPublishWhilePurging(b *testing.B) {
	for _, purging := range []bool{false, true} {
		b.Run(fmt.Sprintf("purging=%v", purging), func(b *testing.B) {
			ctx := context.Background()
			js, in := benchStreamIn(b)
			payload := make([]byte, 700)
			// A stream of some size first, as in serve.
			for range 50000 {
				if _, err := js.PublishAsync("sharelog.in.bench", payload); err != nil {
					b.Fatal(err)
				}
			}
			<-js.PublishAsyncComplete()
			stop := make(chan struct{})
			done := make(chan struct{})
			go func() {
				defer close(done)
				if !purging {
					return
				}
				t := time.NewTicker(250 * time.Millisecond)
				defer t.Stop()
				for {
					select {
					case <-stop:
						return
					case <-t.C:
					}
					info, err := in.Info(ctx)
					if err == nil && info.State.LastSeq > 5000 {
						_ = in.Purge(ctx, jetstream.WithPurgeSequence(info.State.LastSeq-5000))
					}
				}
			}()
			durs := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for range b.N {
				t := time.Now()
				if _, err := js.Publish(ctx, "sharelog.in.bench", payload); err != nil {
					b.Fatal(err)
				}
				durs = append(durs, time.Since(t))
			}
			b.StopTimer()
			close(stop)
			<-done
			slices.Sort(durs)
			b.ReportMetric(float64(durs[len(durs)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(durs[len(durs)*99/100].Microseconds()), "p99-µs")
			b.ReportMetric(float64(durs[len(durs)-1].Microseconds()), "max-µs")
		})
	}
}

// BenchmarkPurgeCold times the stream keeper's purge of messages whose
// blocks the server has let go, as it has those of every message the keeper
// purges (two minutes after their last write): SHARELOG_IN (encrypted at
// rest, as serve runs it) holds 300,000 messages of 700 bytes and the
// server is restarted, so that no block is loaded; then the first 250,000
// are purged in one request or in the keeper's steps, while a producer
// publishes synchronously. It reports the purge's whole time and the p99
// and longest wait of a publish during it (the longest is about the
// longest time the stream's lock was held at once).
func BenchmarkPurgeCold(b *testing.B) {
	const n, purged = 300000, 250000
	for _, step := range []uint64{purged, purgeStep} {
		b.Run(fmt.Sprintf("step=%d", step), func(b *testing.B) {
			ctx := context.Background()
			cfg := nats.ServerConfig{Listen: "127.0.0.1:0", EncryptionKey: nats.AtRestKey(make([]byte, store.MasterKeyLen))}
			var total time.Duration
			var waits []time.Duration
			for range b.N {
				b.StopTimer()
				js := coldStreamIn(b, cfg, n)
				stop := make(chan struct{})
				var mu sync.Mutex
				var durs []time.Duration
				done := make(chan struct{})
				go func() {
					defer close(done)
					for {
						select {
						case <-stop:
							return
						default:
						}
						t := time.Now()
						if _, err := js.Publish(ctx, "sharelog.in.bench", make([]byte, 700)); err != nil {
							return
						}
						mu.Lock()
						durs = append(durs, time.Since(t))
						mu.Unlock()
					}
				}()
				k := &streamKeeper{js: js, step: step, log: slog.New(slog.DiscardHandler)}
				b.StartTimer()
				start := time.Now()
				if err := k.purge(ctx, purged); err != nil {
					b.Fatal(err)
				}
				total += time.Since(start)
				b.StopTimer()
				close(stop)
				<-done
				mu.Lock()
				waits = append(waits, durs...)
				mu.Unlock()
			}
			slices.Sort(waits)
			b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "purge-ms")
			if len(waits) > 0 {
				b.ReportMetric(float64(waits[len(waits)*99/100].Microseconds()), "publish-p99-µs")
				b.ReportMetric(float64(waits[len(waits)-1].Microseconds()), "publish-max-µs")
			}
		})
	}
}

// coldStreamIn makes SHARELOG_IN on a server with cfg, fills it with n
// messages of 700 bytes, and starts the server again, so that none of its
// blocks is loaded. It returns the JetStream context on the restarted
// server, which stops when b ends.
func coldStreamIn(b *testing.B, cfg nats.ServerConfig, n int) jetstream.JetStream {
	b.Helper()
	ctx := context.Background()
	cfg.StoreDir = b.TempDir()
	ns, err := nats.StartServer(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	nc, err := natsio.Connect(ns.ClientURL())
	if err != nil {
		b.Fatal(err)
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4000))
	if err != nil {
		b.Fatal(err)
	}
	if _, err := nats.EnsureStreams(ctx, js, nats.StreamConfig{}); err != nil {
		b.Fatal(err)
	}
	payload := make([]byte, 700)
	for range n {
		if _, err := js.PublishAsync("sharelog.in.bench", payload); err != nil {
			b.Fatal(err)
		}
	}
	<-js.PublishAsyncComplete()
	nc.Close()
	ns.Shutdown()
	ns.WaitForShutdown()

	if ns, err = nats.StartServer(cfg, slog.New(slog.DiscardHandler)); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	if nc, err = natsio.Connect(ns.ClientURL()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(nc.Close)
	if js, err = jetstream.New(nc); err != nil {
		b.Fatal(err)
	}
	in, err := js.Stream(ctx, nats.StreamIn)
	if err != nil {
		b.Fatal(err)
	}
	if info, err := in.Info(ctx); err != nil || info.State.Msgs != uint64(n) {
		b.Fatalf("SHARELOG_IN after the restart: %+v, %v; want %d messages", info, err, n)
	}
	return js
}

// benchStreamIn starts an embedded server encrypted at rest, as serve runs
// it, and makes sharelog's streams as EnsureStreams does; it returns the
// JetStream context (with opts) and SHARELOG_IN. All is closed when b ends.
// Tests use it too.
func benchStreamIn(b testing.TB, opts ...jetstream.JetStreamOpt) (jetstream.JetStream, jetstream.Stream) {
	b.Helper()
	ctx := context.Background()
	key := nats.AtRestKey(make([]byte, store.MasterKeyLen))
	ns, err := nats.StartServer(nats.ServerConfig{Listen: "127.0.0.1:0", StoreDir: b.TempDir(), EncryptionKey: key}, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(ns.Shutdown)
	nc, err := natsio.Connect(ns.ClientURL())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(nc.Close)
	js, err := jetstream.New(nc, opts...)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := nats.EnsureStreams(ctx, js, nats.StreamConfig{}); err != nil {
		b.Fatal(err)
	}
	in, err := js.Stream(ctx, nats.StreamIn)
	if err != nil {
		b.Fatal(err)
	}
	return js, in
}
