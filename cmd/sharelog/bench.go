package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"runtime/pprof"
	"time"

	"github.com/sharelog/sharelog/internal/bench"
)

// BenchCmd measures sharelog against the raw limits of its own stack.
type BenchCmd struct {
	Events     int           `help:"Events for each throughput figure, and the size of the queried ledger." default:"1000000"`
	Queries    int           `help:"Queries to time for each latency figure." default:"2000"`
	Latency    time.Duration `help:"How long to publish at half rate for the publish-to-queryable figure." default:"5s"`
	SyncAlways bool          `help:"Durable mode: JetStream fsyncs every write." name:"sync-always"`
	Smoke      bool          `help:"A short run that shows the benchmark works (CI); its figures mean nothing."`
	Dir        string        `help:"Scratch directory (default: a new temporary directory, removed afterwards)." type:"path"`
	Out        string        `help:"Write the report as JSON to this file." default:"bench-results.json"`
	CPUProfile string        `help:"Write a CPU profile of the whole run to this file." name:"cpuprofile" type:"path"`
	MemProfile string        `help:"Write a heap profile, taken when the full ingest has finished, to this file." name:"memprofile" type:"path"`
}

// Run implements the bench command.
func (c *BenchCmd) Run(env *Env) error {
	cfg := bench.Config{Events: c.Events, Queries: c.Queries, Latency: c.Latency, SyncAlways: c.SyncAlways, Dir: c.Dir,
		Logf: func(format string, args ...any) { fmt.Fprintf(env.Stderr, "bench: "+format+"\n", args...) }}
	if c.Smoke {
		cfg.Events, cfg.Queries, cfg.Latency, cfg.Chunk = 3000, 40, 500*time.Millisecond, 1000
		cfg.Generator.Subjects, cfg.Generator.Recipients, cfg.Generator.MarkedCount = 1000, 20, 10
		cfg.RSSEvery = 1000
	}
	if cfg.Dir == "" {
		dir, err := os.MkdirTemp("", "sharelog-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		cfg.Dir = dir
	}
	if c.CPUProfile != "" {
		f, err := os.Create(c.CPUProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if c.MemProfile != "" {
		cfg.AfterIngest = func() error {
			f, err := os.Create(c.MemProfile)
			if err != nil {
				return err
			}
			defer f.Close()
			runtime.GC()
			return pprof.WriteHeapProfile(f)
		}
	}
	rep, err := bench.Run(env.Ctx, cfg, startForBench)
	if err != nil {
		return err
	}
	if err := rep.WriteTable(env.Stdout); err != nil {
		return err
	}
	if c.Out != "" {
		b, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(c.Out, append(b, '\n'), 0o644); err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "\nreport written to %s\n", c.Out)
	}
	return nil
}

// startForBench runs the real serve code on dataDir, on free ports.
func startForBench(ctx context.Context, dataDir string, syncAlways bool) (*bench.Target, error) {
	cfg := Config{Data: dataDir, HTTP: "127.0.0.1:0", NATSListen: "127.0.0.1:0", SyncAlways: syncAlways, Duplicates: 2 * time.Minute}
	m := NewMain(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := m.Open(ctx); err != nil {
		m.Close()
		return nil, err
	}
	st := m.Store
	return &bench.Target{
		NATSURL:     m.NATSURL(),
		HTTPURL:     m.HTTP.URL(),
		Applied:     st.Applied,
		WaitApplied: st.WaitApplied,
		LedgerDir:   dataDir + "/ledger",
		Close:       m.Close,
	}, nil
}
