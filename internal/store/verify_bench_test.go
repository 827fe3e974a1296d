package store

import (
	"context"
	"flag"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/sharelog/sharelog/internal/checkpoint"
)

var verifyEvents = flag.Int("store.verify-events", 100_000, "disclosures in the ledger BenchmarkVerify checks")

// BenchmarkVerify builds a ledger of -store.verify-events workload
// disclosures (about 600 bytes of JSON each) with a checkpoint signed every
// 10,000 entries, closes it, and times Verify of the whole directory, with
// the tree alone and with the replay of the derived state. It reports
// entries verified per second and the projected time for a million entries.
// Use -benchtime=1x: building the ledger dominates otherwise.
func BenchmarkVerify(b *testing.B) {
	cfg := testConfig(b)
	s, err := Open(cfg)
	if err != nil {
		b.Fatal(err)
	}
	signer, vkey, _, err := checkpoint.LoadOrCreateKey(filepath.Join(b.TempDir(), "k"), "", "sharelog/bench")
	if err != nil {
		b.Fatal(err)
	}
	v, _ := note.NewVerifier(vkey)
	cpr := checkpoint.NewCheckpointer(s, signer, cfg.Logger)
	registerBenchRecipients(b, s)
	w := newWorkload(7)
	start := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	ctx := context.Background()
	built := time.Now()
	for s.Count() < uint64(*verifyEvents) {
		appendAll(b, s, w.batch(b, start))
		if s.Count()%10_000 < benchBatch {
			if _, err := cpr.Checkpoint(ctx); err != nil {
				b.Fatal(err)
			}
		}
	}
	if _, err := cpr.Checkpoint(ctx); err != nil {
		b.Fatal(err)
	}
	b.Logf("built %d entries in %s", s.Count(), time.Since(built).Round(time.Millisecond))
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	// The tree and checkpoints alone, then with the replay of the derived
	// state (the default), over the same ledger.
	for _, tc := range []struct {
		name     string
		treeOnly bool
	}{{"tree-only", true}, {"with-state", false}} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			var size int64
			for range b.N {
				res, err := Verify(ctx, VerifyConfig{Dir: cfg.Dir, Verifier: v, Logger: cfg.Logger, TreeOnly: tc.treeOnly})
				if err != nil {
					b.Fatal(err)
				}
				size = res.Size
			}
			perEntry := b.Elapsed().Seconds() / float64(b.N) / float64(size)
			b.ReportMetric(1/perEntry, "entries/s")
			b.ReportMetric(perEntry*1e6, "s/1M-entries")
		})
	}
	// What verify --checkpoint adds before Verify: opening the ledger and
	// reading its tree head, a consistency proof and a stored checkpoint.
	b.Run("read-kept", func(b *testing.B) {
		for range b.N {
			kv, err := ReadKept(ctx, VerifyConfig{Dir: cfg.Dir, Logger: cfg.Logger}, int64(*verifyEvents)/2)
			if err != nil || kv.Proof == nil {
				b.Fatalf("ReadKept = %+v, %v", kv, err)
			}
		}
	})
}
