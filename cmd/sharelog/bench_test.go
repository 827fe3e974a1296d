package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sharelog/sharelog/internal/bench"
)

// TestBenchSmoke runs `sharelog bench --smoke`: it shows the benchmark works
// end to end and reports every figure. It asserts nothing about speed.
func TestBenchSmoke(t *testing.T) {
	out := filepath.Join(t.TempDir(), "bench.json")
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"bench", "--smoke", "--dir", t.TempDir(), "--out", out}, &stdout, &stderr); err != nil {
		t.Fatalf("bench: %v\n%s", err, stderr.String())
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var rep bench.Report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	figures := map[string]float64{
		"raw JetStream rate": rep.RawJS.PerSec, "raw Badger rate": rep.RawBadger.PerSec, "full ingest rate": rep.Full.PerSec,
		"who p99": rep.Who.P99, "window p99": rep.Window.P99, "publish-to-queryable p99": rep.PubToQuery.P99,
		"ledger bytes/event": rep.DiskBytes, "peak RSS": rep.PeakRSSMiB,
	}
	for name, v := range figures {
		if !(v > 0) {
			t.Errorf("%s = %v, want a measured figure", name, v)
		}
	}
	if rep.WhoCount != 10 {
		t.Errorf("who found %d disclosures of the marked subject, want 10", rep.WhoCount)
	}
	if rep.Full.Events != 3000 || rep.PubToQuery.N == 0 {
		t.Errorf("full ingest %d events, publish-to-queryable %d: want 3000 and some", rep.Full.Events, rep.PubToQuery.N)
	}
	if !strings.Contains(stdout.String(), "full / raw JetStream") {
		t.Errorf("table lacks the ratios:\n%s", stdout.String())
	}
}
