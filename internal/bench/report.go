package bench

import (
	"fmt"
	"io"
	"text/tabwriter"
)

// WriteTable prints the report for people.
func (r *Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	mode := "JetStream default sync (interval)"
	if r.SyncAlways {
		mode = "JetStream sync always (durable mode)"
	}
	fmt.Fprintf(tw, "sharelog bench\t%s, %d CPUs, %s\n", r.GoVersion, r.CPUs, mode)
	fmt.Fprintf(tw, "events\t%d of %.0f bytes on average, batches of %d\n\n", r.Events, r.EventBytes, r.BatchSize)
	fmt.Fprintf(tw, "THROUGHPUT\tevents/s\tseconds\n")
	fmt.Fprintf(tw, "raw JetStream async publish\t%.0f\t%.2f\n", r.RawJS.PerSec, r.RawJS.Seconds)
	fmt.Fprintf(tw, "raw Badger ledger write set\t%.0f\t%.2f\n", r.RawBadger.PerSec, r.RawBadger.Seconds)
	fmt.Fprintf(tw, "full sharelog ingest (to queryable)\t%.0f\t%.2f\n", r.Full.PerSec, r.Full.Seconds)
	fmt.Fprintf(tw, "full / raw JetStream\t%.2f\t\n", r.FullOverJS)
	fmt.Fprintf(tw, "full / raw Badger\t%.2f\t\n\n", r.FullOverBdg)
	fmt.Fprintf(tw, "LATENCY (HTTP API)\tp50 ms\tp99 ms\tmax ms\tn\n")
	fmt.Fprintf(tw, "who, subject with %d disclosures\t%.2f\t%.2f\t%.2f\t%d\n", r.WhoCount, r.Who.P50, r.Who.P99, r.Who.Max, r.Who.N)
	fmt.Fprintf(tw, "disclosures by recipient, one month (%.0f rows)\t%.2f\t%.2f\t%.2f\t%d\n", r.WindowRows, r.Window.P50, r.Window.P99, r.Window.Max, r.Window.N)
	fmt.Fprintf(tw, "publish to queryable at %.0f events/s\t%.2f\t%.2f\t%.2f\t%d\n\n", r.PubRate, r.PubToQuery.P50, r.PubToQuery.P99, r.PubToQuery.Max, r.PubToQuery.N)
	fmt.Fprintf(tw, "SPACE AND MEMORY\t\n")
	fmt.Fprintf(tw, "ledger bytes on disk per event\t%.0f\n", r.DiskBytes)
	fmt.Fprintf(tw, "JetStream bytes on disk per event\t%.0f\n", r.JSBytes)
	for _, s := range r.RSS {
		fmt.Fprintf(tw, "process RSS at %d events\t%.0f MiB\n", s.Events, s.MiB)
	}
	fmt.Fprintf(tw, "process peak RSS\t%.0f MiB\n", r.PeakRSSMiB)
	return tw.Flush()
}
