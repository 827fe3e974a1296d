package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"
)

// A Runner runs one phase and returns a report holding that phase alone.
type Runner interface {
	RunPhase(ctx context.Context, phase string) (*Report, error)
	// Isolation says how the phases are kept apart: IsolationProcess or
	// IsolationInProcess.
	Isolation() string
}

// InProcess runs every phase in this process, one after another. Memory
// figures then include what earlier phases left behind (Go's heap returned
// to the system between phases, and the peak reset where the kernel
// allows, but not what was not freed).
type InProcess struct {
	Config Config
	Start  StartFunc
	ran    bool
}

// Isolation implements Runner.
func (p *InProcess) Isolation() string { return IsolationInProcess }

// RunPhase implements Runner.
func (p *InProcess) RunPhase(ctx context.Context, phase string) (*Report, error) {
	if p.ran {
		runtime.GC()
		debug.FreeOSMemory()
	}
	p.ran = true
	if err := resetPeakRSS(); err != nil && p.Config.Logf != nil {
		p.Config.Logf("%s: the peak RSS could not be reset (%v): it covers the phases before too", phase, err)
	}
	return RunPhase(ctx, p.Config, phase, p.Start)
}

// ChildEnv is set in the environment of a phase's child process (to the
// phase's name). A process that has it refuses to start children of its
// own, so an executable that does not understand the child's arguments
// (a test binary without the dispatch, say) cannot multiply; a test
// binary's TestMain uses it to run the command instead of the tests.
const ChildEnv = "SHARELOG_BENCH_PHASE_CHILD"

// ChildProcess runs each phase in a new process: Path with Args(phase,
// result), which must run that phase alone (RunPhase) and write the report
// it returns as JSON to the file result (WriteResult). The phase's memory
// figures are then its own: nothing an earlier phase allocated is in them.
type ChildProcess struct {
	Path string // the executable, usually os.Executable()
	Args func(phase, result string) []string
	// Dir holds the result files (the run's scratch directory).
	Dir string
	// Stderr receives the child's output, stdout and stderr both (the
	// child's stdout is not the report's). It is written to from another
	// goroutine while the child runs: if Logf writes to it too, it must be
	// safe for concurrent use.
	Stderr io.Writer
	Logf   func(format string, args ...any)
}

// Isolation implements Runner.
func (c *ChildProcess) Isolation() string { return IsolationProcess }

// RunPhase implements Runner.
func (c *ChildProcess) RunPhase(ctx context.Context, phase string) (*Report, error) {
	if p := os.Getenv(ChildEnv); p != "" {
		return nil, fmt.Errorf("this process is already the child running phase %q (%s is set): not starting another", p, ChildEnv)
	}
	result := filepath.Join(c.Dir, phase+"-result.json")
	if err := os.Remove(result); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, c.Path, c.Args(phase, result)...)
	cmd.Env = append(os.Environ(), ChildEnv+"="+phase)
	cmd.Stdout, cmd.Stderr = c.Stderr, c.Stderr
	// Cancelled: ask the child to stop (it closes its sharelog and NATS),
	// and kill it if it has not within a while.
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 30 * time.Second
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	if c.Logf != nil {
		c.Logf("%s: running in a new process, pid %d", phase, cmd.Process.Pid)
	}
	if err := cmd.Wait(); err != nil {
		return nil, fmt.Errorf("child process %d: %w", cmd.Process.Pid, err)
	}
	rep, err := ReadResult(result)
	if err != nil {
		return nil, fmt.Errorf("child process %d: %w", cmd.Process.Pid, err)
	}
	if len(rep.Phases) != 1 || rep.Phases[0] != phase {
		return nil, fmt.Errorf("child process %d reported phases %v, want %s", cmd.Process.Pid, rep.Phases, phase)
	}
	return rep, nil
}

// WriteResult writes the report of one phase for the parent to read.
func WriteResult(file string, rep *Report) error {
	b, err := json.Marshal(rep)
	if err != nil {
		return err
	}
	return os.WriteFile(file, b, 0o644)
}

// ReadResult reads a report WriteResult wrote.
func ReadResult(file string) (*Report, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var rep Report
	if err := json.Unmarshal(b, &rep); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return &rep, nil
}

// rssSampler samples the process RSS every so many events, with the
// phase's clock at each sample.
type rssSampler struct {
	every, next int
	clock       func() time.Duration
	samples     []RSS
}

// newRSSSampler returns a sampler whose clock is the time since now, or
// clock when it is not nil (a phase that times only part of its work).
func newRSSSampler(every int, clock func() time.Duration) *rssSampler {
	if clock == nil {
		start := time.Now()
		clock = func() time.Duration { return time.Since(start) }
	}
	return &rssSampler{every: every, next: every, clock: clock}
}

// reached says n events are written. It takes a sample at each multiple
// of every up to n, once ready (if set) says the events up to it are really
// in; when ready fails the sample is skipped.
func (s *rssSampler) reached(n int, ready func(int) bool) {
	for n >= s.next {
		if ready == nil || ready(s.next) {
			s.samples = append(s.samples, s.sample(s.next))
		}
		s.next += s.every
	}
}

// final returns the samples, ending with one at n events.
func (s *rssSampler) final(n int) []RSS {
	if len(s.samples) == 0 || s.samples[len(s.samples)-1].Events != n {
		s.samples = append(s.samples, s.sample(n))
	}
	return s.samples
}

func (s *rssSampler) sample(events int) RSS {
	return RSS{Events: events, Seconds: s.clock().Seconds(), MiB: procStatusMiB("VmRSS"), AnonMiB: procStatusMiB("RssAnon")}
}

// procStatusMiB reads a memory figure (VmRSS, RssAnon, VmHWM) of this process, in MiB.
func procStatusMiB(field string) float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}

// resetPeakRSS sets this process's VmHWM back to its current RSS (Linux
// 4.0 and later).
func resetPeakRSS() error {
	return os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
}
