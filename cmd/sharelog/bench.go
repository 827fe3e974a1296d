package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sharelog/sharelog/internal/bench"
)

// BenchCmd measures sharelog against the raw limits of its own stack.
//
// Each phase runs in a new process by default: the command runs its own
// executable again as `sharelog bench --phase-child PHASE --phase-result
// FILE` with the same measuring flags; the child runs that phase alone and
// writes its figures to FILE as JSON, and this process puts the report
// together. So each phase's memory figures are its own. Under `go test` the
// executable is the test binary, whose TestMain runs the command when
// bench.ChildEnv is set (see bench_test.go).
type BenchCmd struct {
	Events      int           `help:"Events for each throughput figure, and the size of the queried ledger." default:"1000000"`
	Queries     int           `help:"Queries to time for each latency figure." default:"2000"`
	Latency     time.Duration `help:"How long to publish at half rate for the publish-to-queryable figure." default:"5s"`
	LatencyRate float64       `help:"Publish rate (events/s) of the publish-to-queryable figure; 0 means half the measured full ingest rate." name:"latency-rate"`
	SyncAlways  bool          `help:"Durable mode: JetStream fsyncs every write." name:"sync-always"`
	Unencrypted bool          `help:"Keep every phase's files in clear: the raw phases' JetStream store and Badger directory, and the full phase's ledger and JetStream store. By default every phase encrypts them at rest, as serve does, so that the ratios compare like with like; this measures what encryption at rest costs, and compares with stores that do not encrypt."`
	Atomic      bool          `help:"Producers publish in JetStream atomic batches of 1000 (as sharelog publish and the HTTP batch path do) instead of one asynchronous publish per event."`
	Smoke       bool          `help:"A short run that shows the benchmark works (CI); its figures mean nothing."`
	Consult     bool          `help:"Time who with the consultation log too: every other who query first records its consultation, as the API does before answering (DPA 2018 s.62); both figures are reported side by side." name:"consult"`
	Phases      []string      `help:"Phases to run, comma-separated: raw-jetstream, raw-badger, full (the full ingest, then the queries and publish-to-queryable latency on its ledger)." default:"raw-jetstream,raw-badger,full" sep:","`
	InProcess   bool          `help:"Run every phase in this process instead of each in a new one; memory figures then include what earlier phases left." name:"in-process"`
	StreamKeep  time.Duration `help:"The full phase's --stream-keep: how long SHARELOG_IN keeps a message the ledger has applied and checkpointed (0: forever). With the default, a run shorter than it purges nothing, so the JetStream bytes per event are those of a stream that keeps everything." default:"2m" name:"stream-keep"`
	Dir         string        `help:"Scratch directory (default: a new temporary directory, removed afterwards)." type:"path"`
	Out         string        `help:"Write the report as JSON to this file." default:"bench-results.json"`
	CPUProfile  string        `help:"Write a CPU profile of the full phase to this file (with --in-process, of the whole run); other phases' go to FILE.<phase>." name:"cpuprofile" type:"path"`
	MemProfile  string        `help:"Write a heap profile, taken when the full ingest has finished, to this file." name:"memprofile" type:"path"`
	Log         string        `help:"Write the full phase's sharelog log, at debug level and with Badger's, to this file (to find what a stall was)." name:"log" type:"path"`

	PhaseChild  string `hidden:"" name:"phase-child" help:"Run this one phase in this process and write its figures to --phase-result (how the command runs each phase in a new process)."`
	PhaseResult string `hidden:"" name:"phase-result" type:"path"`
}

// config is the measurement the flags describe; a phase's child process
// builds the same one from the same flags.
func (c *BenchCmd) config(stderr io.Writer) bench.Config {
	prefix := "bench: "
	if c.PhaseChild != "" {
		prefix = "bench [" + c.PhaseChild + "]: "
	}
	cfg := bench.Config{Events: c.Events, Queries: c.Queries, Latency: c.Latency, LatencyRate: c.LatencyRate, SyncAlways: c.SyncAlways, Unencrypted: c.Unencrypted, Atomic: c.Atomic, Dir: c.Dir, Consult: c.Consult,
		Logf: func(format string, args ...any) { fmt.Fprintf(stderr, prefix+format+"\n", args...) }}
	if c.Smoke {
		cfg.Events, cfg.Queries, cfg.Latency, cfg.Chunk = 3000, 40, 500*time.Millisecond, 1000
		cfg.Generator.Subjects, cfg.Generator.Recipients, cfg.Generator.MarkedCount = 1000, 20, 10
		cfg.RSSEvery = 1000
	}
	return cfg
}

// childArgs are the arguments of the process that runs phase alone and
// writes its result to the file result.
func (c *BenchCmd) childArgs(dir, phase, result string) []string {
	args := []string{"bench", "--phase-child", phase, "--phase-result", result, "--dir", dir,
		"--events", strconv.Itoa(c.Events), "--queries", strconv.Itoa(c.Queries), "--latency", c.Latency.String(),
		"--latency-rate", strconv.FormatFloat(c.LatencyRate, 'f', -1, 64), "--stream-keep", c.StreamKeep.String()}
	if c.SyncAlways {
		args = append(args, "--sync-always")
	}
	if c.Atomic {
		args = append(args, "--atomic")
	}
	if c.Unencrypted {
		args = append(args, "--unencrypted")
	}
	if c.Consult {
		args = append(args, "--consult")
	}
	if c.Smoke {
		args = append(args, "--smoke")
	}
	if c.CPUProfile != "" {
		if phase == bench.PhaseFull {
			args = append(args, "--cpuprofile", c.CPUProfile)
		} else {
			args = append(args, "--cpuprofile", c.CPUProfile+"."+phase)
		}
	}
	if c.MemProfile != "" && phase == bench.PhaseFull {
		args = append(args, "--memprofile", c.MemProfile)
	}
	if c.Log != "" && phase == bench.PhaseFull {
		args = append(args, "--log", c.Log)
	}
	return args
}

// Run implements the bench command.
func (c *BenchCmd) Run(env *Env) error {
	// The children's output and this process's log lines go to one writer,
	// from different goroutines.
	stderr := &lockedWriter{w: env.Stderr}
	cfg := c.config(stderr)
	if c.PhaseChild != "" {
		return c.runChild(env, cfg)
	}
	phases, err := bench.ParsePhases(c.Phases)
	if err != nil {
		return err
	}
	if cfg.Dir == "" {
		dir, err := os.MkdirTemp("", "sharelog-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		cfg.Dir = dir
	}
	var runner bench.Runner
	if c.InProcess {
		stop, err := c.profile(&cfg)
		if err != nil {
			return err
		}
		defer stop()
		runner = &bench.InProcess{Config: cfg, Start: c.start(cfg.Logf)}
	} else {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("finding this executable to run each phase in a new process (or use --in-process): %w", err)
		}
		runner = &bench.ChildProcess{Path: exe, Dir: cfg.Dir, Stderr: stderr, Logf: cfg.Logf,
			Args: func(phase, result string) []string { return c.childArgs(cfg.Dir, phase, result) }}
	}
	rep, err := bench.Run(env.Ctx, cfg, phases, runner)
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

// runChild runs the one phase --phase-child names and writes its figures
// to --phase-result (or stdout).
func (c *BenchCmd) runChild(env *Env, cfg bench.Config) error {
	if cfg.Dir == "" {
		return errors.New("--phase-child needs --dir")
	}
	stop, err := c.profile(&cfg)
	if err != nil {
		return err
	}
	rep, err := bench.RunPhase(env.Ctx, cfg, c.PhaseChild, c.start(cfg.Logf))
	stop()
	if err != nil {
		return err
	}
	if c.PhaseResult == "" {
		return json.NewEncoder(env.Stdout).Encode(rep)
	}
	return bench.WriteResult(c.PhaseResult, rep)
}

// profile starts the CPU profile and arranges the heap profile, for the
// phases this process runs; stop ends the CPU profile.
func (c *BenchCmd) profile(cfg *bench.Config) (stop func(), err error) {
	stop = func() {}
	if c.CPUProfile != "" {
		f, err := os.Create(c.CPUProfile)
		if err != nil {
			return nil, err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return nil, err
		}
		stop = func() {
			pprof.StopCPUProfile()
			f.Close()
		}
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
	return stop, nil
}

// lockedWriter serialises writes to w.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// start returns the full phase's StartFunc: startForBench with --stream-keep,
// logging to --log if it is set.
func (c *BenchCmd) start(logf func(format string, args ...any)) bench.StartFunc {
	return func(ctx context.Context, dataDir string, syncAlways, unencrypted bool) (*bench.Target, error) {
		logf("stream keep %v: SHARELOG_IN purges what the ledger applied and checkpointed that long ago (0: never)", c.StreamKeep)
		if c.Log == "" {
			return startForBench(ctx, dataDir, syncAlways, unencrypted, c.StreamKeep, slog.New(slog.NewTextHandler(io.Discard, nil)))
		}
		f, err := os.Create(c.Log)
		if err != nil {
			return nil, err
		}
		logf("sharelog's log: %s", c.Log)
		t, err := startForBench(ctx, dataDir, syncAlways, unencrypted, c.StreamKeep, slog.New(slog.NewTextHandler(f, &slog.HandlerOptions{Level: slog.LevelDebug})))
		if err != nil {
			f.Close()
			return nil, err
		}
		closeTarget := t.Close
		t.Close = func() error { return errors.Join(closeTarget(), f.Close()) }
		return t, nil
	}
}

// startForBench runs the real serve code on dataDir, on free ports, with
// --stream-keep keep, logging to logger.
func startForBench(ctx context.Context, dataDir string, syncAlways, unencrypted bool, keep time.Duration, logger *slog.Logger) (*bench.Target, error) {
	cfg := Config{Data: dataDir, HTTP: "127.0.0.1:0", NATSListen: "127.0.0.1:0", SyncAlways: syncAlways, Duplicates: 10 * time.Second, // serve's default
		UnencryptedLedger: unencrypted, UnencryptedJetStream: unencrypted,
		StreamKeep: keep, LookupRate: -1, MemoryLimit: defaultMemoryLimit} // the bench measures queries, not --lookup-rate
	m := NewMain(cfg, logger)
	m.consultOff = new(atomic.Bool)
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
		Compacting:  st.Compacting,
		ConsultLog:  consultOff(m),
	}, nil
}

// consultOff returns the switch of m's consultation log (Main.consultOff).
func consultOff(m *Main) func(on bool) {
	return func(on bool) { m.consultOff.Store(!on) }
}
