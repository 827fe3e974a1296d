package nats_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/sharelog/sharelog/internal/bench"
	"github.com/sharelog/sharelog/internal/ledger"
	"github.com/sharelog/sharelog/internal/nats"
)

func decodeAll(tb testing.TB, p *pipeline, raws [][]byte) []*ledger.Event {
	tb.Helper()
	evs := make([]*ledger.Event, len(raws))
	for i, raw := range raws {
		ev, err := p.dec.DecodeStructured(raw)
		if err != nil {
			tb.Fatal(err)
		}
		evs[i] = ev
	}
	return evs
}

// TestPublisherAtomic publishes in atomic batches: consecutive sequences in
// order, more than one batch's worth split into batches, and a batch holding
// a resent event published event by event so the duplicate is reported.
func TestPublisherAtomic(t *testing.T) {
	p := startPipeline(t)
	ctx := context.Background()
	g := &bench.Generator{Seed: 3}
	recips := decodeAll(t, p, g.RecipientEvents())
	pub := nats.NewPublisher(p.js, true)
	acks, err := pub.Publish(ctx, "sharelog.in.test", recips)
	if err != nil {
		t.Fatal(err)
	}
	for i, a := range acks {
		if a.Seq != uint64(i+1) || a.Duplicate {
			t.Fatalf("ack %d = %+v, want seq %d", i, a, i+1)
		}
	}
	events := decodeAll(t, p, g.Disclosures(0, 2500, 2500))
	acks, err = pub.Publish(ctx, "sharelog.in.test", events)
	if err != nil {
		t.Fatal(err)
	}
	if len(acks) != 2500 || acks[0].Seq != 201 || acks[2499].Seq != 2700 {
		t.Fatalf("acks: %d, first %+v, last %+v", len(acks), acks[0], acks[len(acks)-1])
	}
	// A new event and a resent one together.
	fresh := decodeAll(t, p, g.Disclosures(2500, 1, 2501))
	acks, err = pub.Publish(ctx, "sharelog.in.test", []*ledger.Event{fresh[0], events[7]})
	if err != nil {
		t.Fatal(err)
	}
	if acks[0].Duplicate || acks[0].Seq != 2701 || !acks[1].Duplicate || acks[1].Seq != 208 {
		t.Errorf("mixed batch acks = %+v, want a new seq 2701 and a duplicate of 208", acks)
	}
	if err := p.store.WaitApplied(ctx, 2701); err != nil {
		t.Fatal(err)
	}
	if got := p.store.Count(); got != 2701 {
		t.Errorf("ledger has %d entries, want 2701", got)
	}
}

// BenchmarkPublishDurable compares the producer paths with JetStream syncing
// every write: atomic batches of 1000 against one async publish per event.
//
//	go test -run '^$' -bench BenchmarkPublishDurable -benchtime 20000x ./internal/nats
func BenchmarkPublishDurable(b *testing.B) {
	for _, atomic := range []bool{true, false} {
		b.Run(fmt.Sprintf("atomic=%v", atomic), func(b *testing.B) {
			p := startPipelineWith(b, true)
			g := &bench.Generator{Seed: 4}
			events := decodeAll(b, p, g.Disclosures(0, b.N, b.N))
			pub := nats.NewPublisher(p.js, atomic)
			b.ResetTimer()
			for start := 0; start < len(events); start += 1000 {
				if _, err := pub.Publish(context.Background(), "sharelog.in.bench", events[start:min(start+1000, len(events))]); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
