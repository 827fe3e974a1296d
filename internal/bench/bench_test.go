package bench

import (
	"bytes"
	"context"
	"regexp"
	"slices"
	"strings"
	"testing"
)

func TestParsePhases(t *testing.T) {
	got, err := ParsePhases([]string{"full", " raw-jetstream"})
	if err != nil || !slices.Equal(got, []string{PhaseRawJetStream, PhaseFull}) {
		t.Errorf("ParsePhases(full, raw-jetstream) = %v, %v; want them in running order", got, err)
	}
	for _, bad := range [][]string{nil, {"full", "full"}, {"queries"}} {
		if _, err := ParsePhases(bad); err == nil {
			t.Errorf("ParsePhases(%q) accepted", bad)
		}
	}
}

// TestRunRawPhasesInProcess runs the two raw phases on a few events: the
// report holds them, their RSS samples, and no full phase or ratio.
func TestRunRawPhasesInProcess(t *testing.T) {
	cfg := Config{Dir: t.TempDir(), Events: 2000, Chunk: 500, RSSEvery: 1000,
		Generator: Generator{Subjects: 1000, Recipients: 20, MarkedCount: 10}}
	rep, err := Run(context.Background(), cfg, []string{PhaseRawBadger, PhaseRawJetStream}, &InProcess{Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rep.Phases, []string{PhaseRawJetStream, PhaseRawBadger}) || rep.Isolation != IsolationInProcess {
		t.Errorf("phases %v, isolation %q", rep.Phases, rep.Isolation)
	}
	if rep.Full != nil || rep.FullOverJS != nil || rep.FullOverBdg != nil {
		t.Errorf("full phase or ratios present without the full phase: %+v %v %v", rep.Full, rep.FullOverJS, rep.FullOverBdg)
	}
	for name, p := range map[string]*Phase{"raw JetStream": rep.RawJS, "raw Badger": rep.RawBadger} {
		if p == nil {
			t.Fatalf("%s missing", name)
		}
		if p.Events != 2000 || !(p.PerSec > 0) || !(p.PeakRSSMiB > 0) {
			t.Errorf("%s: %+v", name, p)
		}
		if len(p.RSS) != 2 || p.RSS[0].Events != 1000 || p.RSS[1].Events != 2000 {
			t.Errorf("%s RSS samples %+v, want at 1000 and 2000 events", name, p.RSS)
		} else if !(p.RSS[0].Seconds > 0) || !(p.RSS[1].Seconds > p.RSS[0].Seconds) {
			t.Errorf("%s RSS samples %+v, want the phase's clock rising", name, p.RSS)
		}
	}
	var table bytes.Buffer
	if err := rep.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	// Each sample after the first gives the rate of its stretch.
	if !regexp.MustCompile(`raw Badger at 2000 events\s+\d+\s+\d+\s+\d+`).MatchString(table.String()) {
		t.Errorf("table without the rate from 1000 to 2000 events:\n%s", table.String())
	}
	for _, absent := range []string{"full", "LATENCY", "SPACE"} {
		if strings.Contains(table.String(), absent) {
			t.Errorf("table mentions %q though the full phase did not run:\n%s", absent, table.String())
		}
	}
}

// TestRunFullNeedsStart: the full phase without a way to start sharelog
// fails instead of reporting nothing.
func TestRunFullNeedsStart(t *testing.T) {
	cfg := Config{Dir: t.TempDir(), Events: 10}
	if _, err := Run(context.Background(), cfg, []string{PhaseFull}, &InProcess{Config: cfg}); err == nil {
		t.Error("full phase ran without a StartFunc")
	}
}

// TestChildProcessRefusesInChild: a phase's child never starts children of
// its own, whatever executable it was given.
func TestChildProcessRefusesInChild(t *testing.T) {
	t.Setenv(ChildEnv, PhaseFull)
	c := &ChildProcess{Path: "/bin/true", Dir: t.TempDir(), Args: func(string, string) []string { return nil }}
	if _, err := c.RunPhase(context.Background(), PhaseRawJetStream); err == nil || !strings.Contains(err.Error(), ChildEnv) {
		t.Errorf("RunPhase in a child = %v, want a refusal naming %s", err, ChildEnv)
	}
}

// TestChildProcessNeedsResult: a child that exits without writing its
// result is an error, not an empty phase.
func TestChildProcessNeedsResult(t *testing.T) {
	c := &ChildProcess{Path: "/bin/true", Dir: t.TempDir(), Args: func(string, string) []string { return nil }}
	if _, err := c.RunPhase(context.Background(), PhaseRawJetStream); err == nil {
		t.Error("a child that wrote no result was accepted")
	}
}

// BenchmarkMsgIDs compares reading each event's Nats-Msg-Id from its JSON,
// as the publisher did inside the measured loop, with deriving it from the
// generator's numbering, as the chunk generator now does.
func BenchmarkMsgIDs(b *testing.B) {
	g := Generator{Seed: 1}
	events := g.Disclosures(0, 1000, 1000)
	b.Run("parse-json", func(b *testing.B) {
		for b.Loop() {
			if _, err := parseMsgIDs(events); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(events)), "ns/event")
	})
	b.Run("from-numbering", func(b *testing.B) {
		for b.Loop() {
			g.msgIDs(0, len(events))
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(events)), "ns/event")
	})
}
