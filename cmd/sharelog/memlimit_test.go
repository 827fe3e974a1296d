package main

import (
	"io"
	"log/slog"
	"math"
	"runtime/debug"
	"testing"
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
