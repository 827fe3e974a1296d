package main

import (
	"strings"
	"testing"
)

// TestBenchSmokeConsult runs the full phase with --consult (in a process of
// its own, so the flag reaches the child): the who queries alternate
// between the consultation log off and on, and both figures are reported
// side by side.
func TestBenchSmokeConsult(t *testing.T) {
	rep, table := runBench(t, t.TempDir(), "--phases", "full", "--consult")
	f := rep.Full
	if f == nil {
		t.Fatal("no full phase")
	}
	// --smoke times 40 who queries per round: 20 of each kind.
	for name, l := range map[string]struct {
		n   int
		p99 float64
	}{"who": {f.Who.N, f.Who.P99}, "who logged": {f.WhoLogged.N, f.WhoLogged.P99}, "who logged during compactions": {f.WhoLoggedBusy.N, f.WhoLoggedBusy.P99}} {
		if l.n != 20 || !(l.p99 > 0) {
			t.Errorf("%s: %d queries, p99 %v ms; want 20 and a measured figure", name, l.n, l.p99)
		}
	}
	if !strings.Contains(table, "who with the consultation log on (line above: off), done") {
		t.Errorf("table lacks the logged who figure:\n%s", table)
	}
}
