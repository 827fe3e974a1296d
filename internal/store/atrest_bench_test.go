package store

import (
	"bytes"
	"testing"
	"time"
)

// BenchmarkAppendAtRest is BenchmarkAppendBatch with and without Badger's
// encryption at rest, for the cost of the default (run with
// -benchtime=100x, alternating: -run '^$' -bench AppendAtRest -count 2).
func BenchmarkAppendAtRest(b *testing.B) {
	for _, c := range []struct {
		name string
		key  []byte
	}{{"plain", nil}, {"encrypted", bytes.Repeat([]byte{7}, 32)}} {
		b.Run(c.name, func(b *testing.B) {
			cfg := testConfig(b)
			cfg.EncryptionKey = c.key
			s := openTest(b, cfg)
			registerBenchRecipients(b, s)
			w := newWorkload(1)
			start := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				evs := w.batch(b, start)
				b.StartTimer()
				appendAll(b, s, evs)
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N*benchBatch)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkReplayDigest measures what comparing a replay costs on top of
// reading its entry (replay.go): the canonical JSON and SHA-256 of one
// event, done twice per replay and never for a first delivery.
func BenchmarkReplayDigest(b *testing.B) {
	evs := newWorkload(1).batch(b, time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC))
	b.ResetTimer()
	for i := range b.N {
		if _, err := contentDigest(evs[i%len(evs)].Raw); err != nil {
			b.Fatal(err)
		}
	}
}
