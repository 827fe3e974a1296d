package nats_test

import (
	"context"
	"testing"
	"time"

	"github.com/sharelog/sharelog/internal/bench"
	"github.com/sharelog/sharelog/internal/metrics"
)

// histogram returns the sample count and sum of the histogram name in m.
func histogram(t *testing.T, m *metrics.Metrics, name string) (count uint64, sum float64) {
	t.Helper()
	families, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == name {
			h := f.GetMetric()[0].GetHistogram()
			return h.GetSampleCount(), h.GetSampleSum()
		}
	}
	t.Fatalf("no histogram %s", name)
	return 0, 0
}

// TestIngestTimesEachBatch: every committed batch is observed once in the
// commit time, which is part of the batch's time, and once in the delivery
// lag, which cannot exceed the time since the first of them was published.
func TestIngestTimesEachBatch(t *testing.T) {
	p := startPipeline(t)
	g := &bench.Generator{Seed: 3}
	start := time.Now()
	p.publishAll(t, "sharelog.in.test", g.RecipientEvents())
	last := p.publishAll(t, "sharelog.in.test", g.Disclosures(0, 2000, 2000))
	if err := p.store.WaitApplied(context.Background(), last); err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start).Seconds()

	batches, _ := histogram(t, p.m, "sharelog_ingest_batch_messages")
	batchN, batchSum := histogram(t, p.m, "sharelog_ingest_batch_seconds")
	commitN, commitSum := histogram(t, p.m, "sharelog_ingest_commit_seconds")
	lagN, lagSum := histogram(t, p.m, "sharelog_ingest_delivery_lag_seconds")
	if batches == 0 || batchN != batches || commitN != batches || lagN != batches {
		t.Fatalf("batches %d: batch times %d, commit times %d, delivery lags %d; want one of each per batch", batches, batchN, commitN, lagN)
	}
	if commitSum <= 0 || commitSum > batchSum {
		t.Errorf("commit time %.6fs in all, batch time %.6fs: a commit is part of its batch", commitSum, batchSum)
	}
	if lagSum < 0 || lagSum > float64(lagN)*elapsed {
		t.Errorf("delivery lag %.6fs over %d batches, beyond %.3fs each since the first publish", lagSum, lagN, elapsed)
	}
}
