package main

import (
	"io"
	"log/slog"
	"math"
	"os"
	"runtime/debug"
	"testing"
	"time"
)

// TestMemoryLimit: --memory-limit sets the Go runtime's soft memory limit,
// GOMEMLIMIT takes precedence over it, and 0 leaves the limit alone.
func TestMemoryLimit(t *testing.T) {
	before := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(before) })
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))

	t.Setenv("GOMEMLIMIT", "")
	debug.SetMemoryLimit(math.MaxInt64)
	setMemoryLimit(defaultMemoryLimit, logger)
	if got := debug.SetMemoryLimit(-1); got != defaultMemoryLimit<<20 {
		t.Errorf("limit %d bytes after --memory-limit %d, want %d", got, defaultMemoryLimit, defaultMemoryLimit<<20)
	}
	debug.SetMemoryLimit(math.MaxInt64)
	setMemoryLimit(0, logger)
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
		t.Errorf("limit %d bytes after --memory-limit 0, want none", got)
	}
	t.Setenv("GOMEMLIMIT", "2GiB")
	setMemoryLimit(defaultMemoryLimit, logger)
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
		t.Errorf("limit %d bytes with GOMEMLIMIT set, want it left alone", got)
	}
}

// TestDuplicatesDefault: SHARELOG_IN's duplicate window is 10 s by default
// (each message of the window is an object in the heap that the collector
// marks on every cycle), and --stream-keep's default is no shorter, so
// that JetStream's dedupe sees its whole window across a restart.
func TestDuplicatesDefault(t *testing.T) {
	for _, k := range []string{"SHARELOG_DUPLICATES", "SHARELOG_STREAM_KEEP"} {
		t.Setenv(k, "") // restored when t ends
		os.Unsetenv(k)
	}
	cfg := serveArgs(t, "defaults", nil, nil)
	if cfg.Duplicates != 10*time.Second || cfg.StreamKeep < cfg.Duplicates {
		t.Errorf("--duplicates %v, --stream-keep %v by default; want 10s and no shorter", cfg.Duplicates, cfg.StreamKeep)
	}
}
