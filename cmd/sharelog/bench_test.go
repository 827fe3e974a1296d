package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"github.com/rogpeppe/go-internal/testscript"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/sharelog/sharelog/internal/bench"
)

// TestMain lets this test binary stand in for the sharelog executable:
// `sharelog bench` runs each phase by running os.Executable() again, which
// under `go test` is this binary. With bench.ChildEnv set it is such a
// child: it runs the command line it was given, as main would, instead of
// the tests.
func TestMain(m *testing.M) {
	if os.Getenv(bench.ChildEnv) != "" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
		stop()
		if err != nil {
			fmt.Fprintln(os.Stderr, "sharelog:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	// testscript.Main runs the tests, or, under the names of
	// readmeCommands, one of the programs TestREADME's script runs.
	testscript.Main(m, readmeCommands)
}

// runBench runs `sharelog bench --smoke` with args in the scratch
// directory dir, which it leaves for the test to look at.
func runBench(t *testing.T, dir string, args ...string) (*bench.Report, string) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "bench.json")
	var stdout, stderr bytes.Buffer
	args = append([]string{"bench", "--smoke", "--dir", dir, "--out", out}, args...)
	if err := run(context.Background(), args, &stdout, &stderr); err != nil {
		t.Fatalf("bench: %v\n%s", err, stderr.String())
	}
	t.Logf("%s\n%s", stderr.String(), stdout.String())
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var rep bench.Report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	return &rep, stdout.String()
}

func checkFull(t *testing.T, rep *bench.Report) {
	t.Helper()
	f := rep.Full
	if f == nil {
		t.Fatal("no full phase in the report")
	}
	figures := map[string]float64{
		"full ingest rate": f.PerSec, "who p99": f.Who.P99, "window p99": f.Window.P99, "publish-to-queryable p99": f.PubToQuery.P99,
		"ledger bytes/event": f.DiskBytes, "full peak RSS": f.PeakRSSMiB,
		"who p99 during compactions": f.WhoBusy.P99, "window p99 during compactions": f.WindowBusy.P99,
		"sustained rate": f.Sustained.PerSec, "full CPU per event": f.CPUPerEvent,
	}
	if f.Sustained.PerSec > f.PerSec || f.CatchUpSeconds < 0 {
		t.Errorf("sustained %v events/s after %v s of catch-up, above the ingest's %v", f.Sustained.PerSec, f.CatchUpSeconds, f.PerSec)
	}
	for name, v := range figures {
		if !(v > 0) {
			t.Errorf("%s = %v, want a measured figure", name, v)
		}
	}
	if f.WhoCount != 10 {
		t.Errorf("who found %d disclosures of the marked subject, want 10", f.WhoCount)
	}
	if f.Events != 3000 || f.PubToQuery.N == 0 {
		t.Errorf("full ingest %d events, publish-to-queryable %d: want 3000 and some", f.Events, f.PubToQuery.N)
	}
	// --smoke samples the RSS every 1000 events.
	if got := len(f.RSS); got != 3 || f.RSS[2].Events != 3000 || !(f.RSS[0].MiB > 0) || !(f.RSS[0].AnonMiB > 0) || f.RSS[0].AnonMiB > f.RSS[0].MiB {
		t.Errorf("full ingest RSS samples %+v, want 3, at 1000, 2000 and 3000 events", f.RSS)
	}
}

// TestBenchSmoke runs `sharelog bench --smoke`: it shows the benchmark works
// end to end, each phase in a process of its own (this test binary, run
// again), and reports every figure. It asserts nothing about speed. The full
// phase's process writes sharelog's log to --log.
func TestBenchSmoke(t *testing.T) {
	logFile := filepath.Join(t.TempDir(), "sharelog.log")
	dir := t.TempDir()
	rep, table := runBench(t, dir, "--log", logFile)
	logged, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`msg="ledger opened"`, `route="POST /v1/who"`, "level=DEBUG"} {
		if !strings.Contains(string(logged), want) {
			t.Errorf("--log file lacks %q:\n%s", want, logged)
		}
	}
	if !slices.Equal(rep.Phases, bench.AllPhases) || rep.Isolation != bench.IsolationProcess {
		t.Errorf("phases %v isolated %q, want all, each in its own process", rep.Phases, rep.Isolation)
	}
	checkFull(t, rep)
	if rep.RawJS == nil || rep.RawBadger == nil {
		t.Fatalf("raw phases missing: %+v %+v", rep.RawJS, rep.RawBadger)
	}
	pids := map[int]bool{os.Getpid(): true}
	for name, p := range map[string]*bench.Phase{"raw JetStream": rep.RawJS, "raw Badger": rep.RawBadger, "full": &rep.Full.Phase} {
		if !(p.PerSec > 0) || !(p.PeakRSSMiB > 0) || len(p.RSS) == 0 || !(p.CPUPerEvent > 0) {
			t.Errorf("%s: rate %v, peak RSS %v, samples %v, CPU %v µs/event: want measured figures", name, p.PerSec, p.PeakRSSMiB, p.RSS, p.CPUPerEvent)
		}
		if pids[p.PID] {
			t.Errorf("%s ran in process %d, which is this one or another phase's", name, p.PID)
		}
		pids[p.PID] = true
	}
	if rep.FullOverJS == nil || rep.FullOverBdg == nil {
		t.Errorf("ratios missing: %v %v", rep.FullOverJS, rep.FullOverBdg)
	}
	for _, want := range []string{"full / raw JetStream", "full / raw Badger", "each in a new process", "raw Badger peak", "CPU µs/event", "encrypted at rest as serve's are"} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
	// Every phase keeps its stores as serve keeps them: encrypted at rest.
	if rep.Unencrypted {
		t.Error("report says the stores were in clear")
	}
	checkStoresAtRest(t, dir, true, "raw-jetstream/jetstream", "raw-badger/ledger", "sharelog/jetstream", "sharelog/ledger")
}

// checkStoresAtRest checks that each of the stores under dir (JetStream's
// or a ledger, by its directory's name) holds no byte of the bench's events
// in clear when encrypted, and does when not: a recipient's id, which every
// disclosure's recipient index key holds, and the events' source, which
// every JetStream message holds.
func checkStoresAtRest(t *testing.T, dir string, encrypted bool, stores ...string) {
	t.Helper()
	for _, store := range stores {
		needle := bench.RecipientID(0)
		if filepath.Base(store) == "jetstream" {
			needle = bench.DisclosureSource
		}
		hits := filesContaining(t, filepath.Join(dir, store), needle)
		if encrypted && len(hits) > 0 {
			t.Errorf("%s: %q in clear in %v, want every file encrypted", store, needle, hits)
		}
		if !encrypted && len(hits) == 0 {
			t.Errorf("%s: %q in no file, want the store in clear (--unencrypted)", store, needle)
		}
	}
}

// TestBenchSmokeSomePhases runs two phases in this process, producers
// publishing in atomic batches and every store in clear: the report and the
// table hold those two alone, and only the ratio both ran for.
func TestBenchSmokeSomePhases(t *testing.T) {
	dir := t.TempDir()
	rep, table := runBench(t, dir, "--phases", "full,raw-badger", "--in-process", "--atomic", "--unencrypted")
	if !rep.Atomic || !strings.Contains(table, "atomic batches") {
		t.Errorf("report does not say producers used atomic batches:\n%s", table)
	}
	if !rep.Unencrypted || !strings.Contains(table, "every store in clear") {
		t.Errorf("report does not say the stores were in clear:\n%s", table)
	}
	checkStoresAtRest(t, dir, false, "raw-badger/ledger", "sharelog/jetstream", "sharelog/ledger")
	if !slices.Equal(rep.Phases, []string{bench.PhaseRawBadger, bench.PhaseFull}) || rep.Isolation != bench.IsolationInProcess {
		t.Errorf("phases %v isolated %q, want raw-badger and full in process", rep.Phases, rep.Isolation)
	}
	checkFull(t, rep)
	if rep.RawJS != nil || rep.FullOverJS != nil || rep.RawBadger == nil || rep.FullOverBdg == nil {
		t.Errorf("want raw Badger and its ratio alone: raw JetStream %+v (ratio %v), raw Badger %+v (ratio %v)", rep.RawJS, rep.FullOverJS, rep.RawBadger, rep.FullOverBdg)
	}
	if rep.Full.PID != os.Getpid() {
		t.Errorf("full ran in process %d, want this one (%d)", rep.Full.PID, os.Getpid())
	}
	if strings.Contains(table, "JetStream async") || strings.Contains(table, "full / raw JetStream") || !strings.Contains(table, "full / raw Badger") {
		t.Errorf("table shows raw JetStream or lacks the Badger ratio:\n%s", table)
	}
	if !strings.Contains(table, "all in this one process") {
		t.Errorf("table does not say the phases shared a process:\n%s", table)
	}
}

func TestBenchPhasesRefused(t *testing.T) {
	for _, phases := range []string{"full,full", "raw-jetstream,nope"} {
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), []string{"bench", "--smoke", "--phases", phases, "--dir", t.TempDir(), "--out", ""}, &stdout, &stderr)
		if err == nil {
			t.Errorf("--phases %s accepted", phases)
		}
	}
}
