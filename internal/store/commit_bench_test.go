package store

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/sharelog/sharelog/internal/ledger"
)

// BenchmarkCommitOne commits batches of one disclosure each, one after the
// other, on a ledger of 20,000 disclosures, with a TreeHead after every 100
// commits (as the checkpointer reads it, once a second at 100 commits/s or
// more): the store's part of publish-to-queryable at a steady low rate,
// where each event is a batch of its own. It reports the commit time's p50
// and p99 (Append and Commit, the sync included).
func BenchmarkCommitOne(b *testing.B) {
	cfg := testConfig(b)
	s, err := Open(cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	registerBenchRecipients(b, s)
	w := newWorkload(1)
	start := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for range 20 {
		appendAll(b, s, w.batch(b, start))
	}
	evs := make([]*ledger.Event, b.N)
	for i := range evs {
		evs[i] = w.disclosure(b, start.Add(time.Duration(w.n)*time.Second))
	}
	durs := make([]time.Duration, b.N)
	b.ResetTimer()
	for i, ev := range evs {
		t := time.Now()
		appendAll(b, s, []*ledger.Event{ev})
		durs[i] = time.Since(t)
		if i%100 == 99 {
			if _, _, err := s.TreeHead(context.Background()); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.StopTimer()
	slices.Sort(durs)
	b.ReportMetric(float64(durs[len(durs)/2])/float64(time.Microsecond), "p50-µs")
	b.ReportMetric(float64(durs[len(durs)*99/100])/float64(time.Microsecond), "p99-µs")
}
