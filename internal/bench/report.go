package bench

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// The phases as the memory table names them, for the RSS samples (taken
// while writing) and for the peak (of the whole phase).
var (
	sampleNames = map[string]string{PhaseRawJetStream: "raw JetStream", PhaseRawBadger: "raw Badger", PhaseFull: "full ingest"}
	peakNames   = map[string]string{PhaseRawJetStream: "raw JetStream", PhaseRawBadger: "raw Badger", PhaseFull: "full phase (ingest, queries, latency)"}
)

// WriteTable prints the report for people. Only the phases that ran are
// shown, and a ratio only when both its phases ran.
func (r *Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	mode := "JetStream default sync (interval)"
	if r.SyncAlways {
		mode = "JetStream sync always (durable mode)"
	}
	if r.Atomic {
		mode += ", producers in atomic batches of 1000"
	}
	if r.Unencrypted {
		mode += ", every store in clear (--unencrypted)"
	} else {
		mode += ", every store encrypted at rest as serve's are"
	}
	fmt.Fprintf(tw, "sharelog bench\t%s, %d CPUs, %s\n", r.GoVersion, r.CPUs, mode)
	fmt.Fprintf(tw, "events\t%d of %.0f bytes on average, batches of %d\n", r.Events, r.EventBytes, r.BatchSize)
	isolation := "each in a new process"
	if r.Isolation == IsolationInProcess {
		isolation = "all in this one process (memory figures include what earlier phases left)"
	}
	fmt.Fprintf(tw, "phases\t%s; %s\n\n", strings.Join(r.Phases, ", "), isolation)

	fmt.Fprintf(tw, "THROUGHPUT\tevents/s\tseconds\tCPU µs/event\n")
	if r.RawJS != nil {
		fmt.Fprintf(tw, "raw JetStream async publish\t%.0f\t%.2f\t%.0f\n", r.RawJS.PerSec, r.RawJS.Seconds, r.RawJS.CPUPerEvent)
	}
	if r.RawBadger != nil {
		fmt.Fprintf(tw, "raw Badger ledger write set\t%.0f\t%.2f\t%.0f\n", r.RawBadger.PerSec, r.RawBadger.Seconds, r.RawBadger.CPUPerEvent)
	}
	if r.Full != nil {
		fmt.Fprintf(tw, "full sharelog ingest (to queryable)\t%.0f\t%.2f\n", r.Full.PerSec, r.Full.Seconds)
		fmt.Fprintf(tw, "full, with the compactions' catch-up (%.1f s)\t%.0f\t%.2f\t%.0f\n", r.Full.CatchUpSeconds, r.Full.Sustained.PerSec, r.Full.Sustained.Seconds, r.Full.CPUPerEvent)
	}
	if r.FullOverJS != nil {
		fmt.Fprintf(tw, "full / raw JetStream\t%.2f\t\n", *r.FullOverJS)
	}
	if r.FullOverBdg != nil {
		fmt.Fprintf(tw, "full / raw Badger\t%.2f\t\n", *r.FullOverBdg)
	}
	fmt.Fprintln(tw)

	if f := r.Full; f != nil {
		fmt.Fprintf(tw, "LATENCY (HTTP API)\tp50 ms\tp99 ms\tmax ms\tn\n")
		lat := func(what string, l Latency) {
			fmt.Fprintf(tw, "%s\t%.2f\t%.2f\t%.2f\t%d\n", what, l.P50, l.P99, l.Max, l.N)
		}
		lat(fmt.Sprintf("who, subject with %d disclosures, during compactions", f.WhoCount), f.WhoBusy)
		if f.WhoLoggedBusy.N > 0 {
			lat("who with the consultation log on (line above: off), during", f.WhoLoggedBusy)
		}
		lat(fmt.Sprintf("disclosures by recipient, one month (%.0f rows), during", f.WindowRows), f.WindowBusy)
		lat(fmt.Sprintf("who, subject with %d disclosures, compactions done", f.WhoCount), f.Who)
		if f.WhoLogged.N > 0 {
			lat("who with the consultation log on (line above: off), done", f.WhoLogged)
		}
		lat(fmt.Sprintf("disclosures by recipient, one month (%.0f rows), done", f.WindowRows), f.Window)
		fmt.Fprintf(tw, "publish to queryable at %.0f events/s\t%.2f\t%.2f\t%.2f\t%d\n\n", f.PubRate, f.PubToQuery.P50, f.PubToQuery.P99, f.PubToQuery.Max, f.PubToQuery.N)
		fmt.Fprintf(tw, "SPACE\t\n")
		fmt.Fprintf(tw, "ledger bytes on disk per event\t%.0f\n", f.DiskBytes)
		fmt.Fprintf(tw, "JetStream bytes on disk per event\t%.0f\n\n", f.JSBytes)
	}

	if r.Isolation == IsolationInProcess {
		fmt.Fprintf(tw, "MEMORY (RSS of this process, shared by the phases)\tMiB\tanonymous MiB\tevents/s since the line above\n")
	} else {
		fmt.Fprintf(tw, "MEMORY (RSS of the process running each phase)\tMiB\tanonymous MiB\tevents/s since the line above\n")
	}
	for _, name := range r.Phases {
		var p *Phase
		switch {
		case name == PhaseRawJetStream && r.RawJS != nil:
			p = r.RawJS
		case name == PhaseRawBadger && r.RawBadger != nil:
			p = r.RawBadger
		case name == PhaseFull && r.Full != nil:
			p = &r.Full.Phase
		default:
			continue
		}
		var prev RSS
		for _, s := range p.RSS {
			fmt.Fprintf(tw, "%s at %d events\t%.0f\t%.0f\t%s\n", sampleNames[name], s.Events, s.MiB, s.AnonMiB, stretchRate(prev, s))
			prev = s
		}
		fmt.Fprintf(tw, "%s peak, pid %d\t%.0f\n", peakNames[name], p.PID, p.PeakRSSMiB)
	}
	return tw.Flush()
}

// stretchRate is the rate between two RSS samples of a phase, or nothing
// for samples without a clock (reports written before they had one).
func stretchRate(prev, s RSS) string {
	if s.Seconds <= prev.Seconds || s.Events <= prev.Events {
		return ""
	}
	return fmt.Sprintf("%.0f", float64(s.Events-prev.Events)/(s.Seconds-prev.Seconds))
}
