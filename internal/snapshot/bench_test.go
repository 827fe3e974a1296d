package snapshot_test

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/sharelog/sharelog/internal/snapshot"
)

// cpuTime is the process's user and system CPU time so far (the embedded
// NATS server runs in the process too).
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkTakeRestore takes a snapshot of a ledger of n disclosures (two
// subjects each, in batches of 1000) into the object store and restores it,
// reporting the snapshot's bytes per event and the wall and CPU time of each.
// Run once: go test -run '^$' -bench TakeRestore -benchtime 1x ./internal/snapshot/
func BenchmarkTakeRestore(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			ctx := context.Background()
			js, _ := startJS(b)
			keyDir := b.TempDir()
			src := open(b, ledgerConfig(b, keyDir))
			for i := 0; i < n; i += 1000 {
				apply(b, src, min(1000, n-i))
			}
			snaps := newSnapshots(b, js, keyDir, snapshot.Config{})
			b.ResetTimer()
			for range b.N {
				c0, w0 := cpuTime(b), time.Now()
				info, err := snaps.Take(ctx, src)
				if err != nil {
					b.Fatal(err)
				}
				c1, w1 := cpuTime(b), time.Now()
				st, err := snaps.Restore(ctx, info, ledgerConfig(b, keyDir))
				if err != nil {
					b.Fatal(err)
				}
				c2, w2 := cpuTime(b), time.Now()
				st.Close()
				b.ReportMetric(float64(info.Size)/float64(n), "B/event")
				b.ReportMetric(float64(info.Size)/(1<<20), "MiB")
				b.ReportMetric(w1.Sub(w0).Seconds(), "take-s")
				b.ReportMetric((c1 - c0).Seconds(), "take-cpu-s")
				b.ReportMetric(w2.Sub(w1).Seconds(), "restore-s")
				b.ReportMetric((c2 - c1).Seconds(), "restore-cpu-s")
				apply(b, src, 1) // the next snapshot is a new one
			}
		})
	}
}
