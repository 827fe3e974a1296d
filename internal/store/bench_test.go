package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/sharelog/sharelog/internal/ledger"
)

var benchEvents = flag.Int("store.events", 100_000, "disclosures loaded before BenchmarkWho")

const (
	benchSubjects   = 100_000
	benchRecipients = 200
	benchBatch      = 1000
)

// workload generates realistic disclosures (about 600 bytes of CloudEvents
// JSON each) over benchSubjects subjects, skewed so that low-numbered
// subjects are disclosed far more often, and benchRecipients recipients.
type workload struct {
	rng *rand.Rand
	n   int
	// single: every disclosure names one subject, as sharelog bench's
	// generator makes them; otherwise one in four names two.
	single bool
}

func newWorkload(seed uint64) *workload {
	return &workload{rng: rand.New(rand.NewPCG(seed, 1))}
}

var (
	benchCategories = []string{"user.contact.email", "user.contact.address", "user.name", "user.criminal_history",
		"user.health_and_medical", "user.demographic.date_of_birth", "user.government_id", "user.contact.phone_number"}
	benchPurposes = []string{"law_enforcement.vetting", "essential.service", "third_party_sharing.legal_obligation", "safeguarding.referral"}
	benchBases    = []string{"art6-1-c", "art6-1-e", "art9-2-g", "art10", "dpa-s35-2-b"}
)

// subject draws a subject number: u² scaled, so subject 0 gets about 0.3% of
// draws and the median subject few.
func (w *workload) subject() int {
	u := w.rng.Float64()
	return int(u * u * benchSubjects)
}

func benchSubject(n int) ledger.Subject {
	return ledger.Subject{Scheme: "dbs-ref", ID: fmt.Sprintf("DBS%09d", n)}
}

func benchRecipient(n int) string { return fmt.Sprintf("recipient-%03d", n) }

func (w *workload) disclosure(tb testing.TB, at time.Time) *ledger.Event {
	w.n++
	subjects := []ledger.Subject{benchSubject(w.subject())}
	if pair := w.rng.IntN(4) == 0; pair && !w.single {
		subjects = append(subjects, benchSubject(w.subject()))
	}
	cats := make([]string, 0, 3)
	for _, i := range w.rng.Perm(len(benchCategories))[:1+w.rng.IntN(3)] {
		cats = append(cats, benchCategories[i])
	}
	digest := sha256.Sum256(fmt.Appendf(nil, "record %d", w.n))
	d := &ledger.Disclosure{
		Subjects:    subjects,
		Recipient:   benchRecipient(w.rng.IntN(benchRecipients)),
		Categories:  cats,
		Purpose:     benchPurposes[w.rng.IntN(len(benchPurposes))],
		LawfulBasis: benchBases[w.rng.IntN(len(benchBases))],
		Regime:      ledger.RegimeUKGDPR,
		DisclosedAt: at,
		DisclosedBy: fmt.Sprintf("officer-%04d", w.rng.IntN(5000)),
		Records: []ledger.RecordRef{{System: "case-management", Ref: fmt.Sprintf("CASE-%08d", w.rng.IntN(1e8)),
			Version: "3", Digest: "sha256:" + hex.EncodeToString(digest[:])}},
	}
	return newEvent(tb, ledger.TypeDisclosure, "disclosure-service", fmt.Sprintf("evt-%012d", w.n), d)
}

func (w *workload) batch(tb testing.TB, start time.Time) []*ledger.Event {
	evs := make([]*ledger.Event, benchBatch)
	for i := range evs {
		evs[i] = w.disclosure(tb, start.Add(time.Duration(w.n)*time.Second))
	}
	return evs
}

// registerBenchRecipients registers the workload's recipients.
func registerBenchRecipients(tb testing.TB, s *Store) {
	evs := make([]*ledger.Event, benchRecipients)
	for i := range evs {
		evs[i] = recipientEvent(tb, benchRecipient(i), fmt.Sprintf("Recipient %d", i))
	}
	applyBatch(tb, s, evs...)
}

// appendAll applies evs in one batch, failing tb on anything but Recorded.
func appendAll(tb testing.TB, s *Store, evs []*ledger.Event) {
	b, seq := appendOpen(tb, s, evs)
	defer b.Discard()
	if err := b.Commit(seq); err != nil {
		tb.Fatal(err)
	}
}

// appendOpen appends evs, one after the other from the next stream
// sequence, to a new batch it leaves open, failing tb on anything but
// Recorded; it returns the batch and the last stream sequence used.
func appendOpen(tb testing.TB, s *Store, evs []*ledger.Event) (*Batch, uint64) {
	tb.Helper()
	b := s.Begin()
	seq := s.Applied()
	for _, ev := range evs {
		seq++
		if o, err := b.Append(seq, ev); o != ledger.Recorded || err != nil {
			b.Discard()
			tb.Fatalf("Append: %v %v", o, err)
		}
	}
	return b, seq
}

// BenchmarkAppendBatch applies batches of 1000 disclosures, one
// transaction and one sync each. It reports events/s, the average Raw size
// and, after closing, the ledger's disk use per event (most telling with
// -benchtime=100x or more).
func BenchmarkAppendBatch(b *testing.B) {
	cfg := testConfig(b)
	s, err := Open(cfg)
	if err != nil {
		b.Fatal(err)
	}
	registerBenchRecipients(b, s)
	w := newWorkload(1)
	start := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	// The events are made before the clock and the CPU count start, so
	// that both measure the store alone (with its background compactions).
	var rawBytes int
	batches := make([][]*ledger.Event, b.N)
	for i := range batches {
		batches[i] = w.batch(b, start)
		for _, ev := range batches[i] {
			rawBytes += len(ev.Raw)
		}
	}
	cpu := cpuTime(b)
	b.ResetTimer()
	for i := range batches {
		appendAll(b, s, batches[i])
		batches[i] = nil
	}
	b.StopTimer()
	events := b.N * benchBatch
	b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(rawBytes)/float64(events), "raw-B/event")
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	// CPU time of the whole process (user and system) per event, the
	// memtable flush at Close included: on a shared machine it varies far
	// less than the rate.
	b.ReportMetric(float64(cpuTime(b)-cpu)/float64(time.Microsecond)/float64(events), "cpu-µs/event")
	b.ReportMetric(float64(diskUsage(b, cfg.Dir))/float64(events), "disk-B/event")
}

// BenchmarkAppend measures Batch.Append alone, the apply goroutine's work
// per event before the commit: one op is one disclosure appended to a
// batch of benchBatch, so allocs/op and B/op are per event. The events are
// made and the batches committed with the timer stopped (Badger's own
// goroutines still allocate meanwhile: run with -benchtime=20000x or more).
// one-subject names one subject per disclosure, as sharelog bench's
// generator does; mixed is the workload's, one in four naming two.
func BenchmarkAppend(b *testing.B) {
	for _, tc := range []struct {
		name   string
		single bool
	}{{"one-subject", true}, {"mixed", false}} {
		b.Run(tc.name, func(b *testing.B) {
			s := openTest(b, testConfig(b))
			registerBenchRecipients(b, s)
			w := newWorkload(1)
			w.single = tc.single
			start := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
			for range 5 { // subjects the ledger knows, as it would
				appendAll(b, s, w.batch(b, start))
			}
			evs := make([]*ledger.Event, b.N)
			for i := range evs {
				evs[i] = w.disclosure(b, start.Add(time.Duration(w.n)*time.Second))
			}
			batch, seq := s.Begin(), s.Applied()
			defer func() { batch.Discard() }()
			b.ReportAllocs()
			b.ResetTimer()
			for i, ev := range evs {
				seq++
				if o, err := batch.Append(seq, ev); o != ledger.Recorded || err != nil {
					b.Fatalf("Append: %v %v", o, err)
				}
				if i%benchBatch == benchBatch-1 {
					b.StopTimer()
					if err := batch.Commit(seq); err != nil {
						b.Fatal(err)
					}
					batch = s.Begin()
					b.StartTimer()
				}
			}
			b.StopTimer()
			if err := batch.Commit(seq); err != nil {
				b.Fatal(err)
			}
		})
	}
}

// cpuTime returns the CPU time (user and system) this process has used.
func cpuTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// diskUsage returns the bytes of disk allocated to the files under dir.
func diskUsage(tb testing.TB, dir string) int64 {
	var total int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			total += st.Blocks * 512
		} else {
			total += fi.Size()
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return total
}

// benchLedger opens a ledger of -store.events disclosures of the
// workload, one a second from the time it returns, to the workload's
// recipients.
func benchLedger(b *testing.B) (*Store, time.Time) {
	s := openTest(b, testConfig(b))
	registerBenchRecipients(b, s)
	w := newWorkload(2)
	start := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for s.Count() < uint64(*benchEvents) {
		appendAll(b, s, w.batch(b, start))
	}
	return s, start
}

// timeQueries times b.N calls of query, each returning the rows it
// answered, and reports latency percentiles and rows per call.
func timeQueries(b *testing.B, unit string, query func(i int) (rows int, err error)) {
	lat := make([]time.Duration, 0, b.N)
	rows := 0
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		n, err := query(i)
		lat = append(lat, time.Since(t0))
		if err != nil {
			b.Fatal(err)
		}
		rows += n
	}
	b.StopTimer()
	slices.Sort(lat)
	pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) }
	b.ReportMetric(pct(0.50), "p50-µs")
	b.ReportMetric(pct(0.99), "p99-µs")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds()), "max-µs")
	b.ReportMetric(float64(rows)/float64(b.N), unit+"/op")
}

// BenchmarkWho answers Who for subjects drawn from the workload's skew over
// a ledger of -store.events disclosures, and reports latency percentiles.
func BenchmarkWho(b *testing.B) {
	s, _ := benchLedger(b)
	ctx := context.Background()
	q := newWorkload(3)
	timeQueries(b, "disclosures", func(int) (int, error) {
		who, err := s.Who(ctx, benchSubject(q.subject()))
		if err != nil {
			return 0, err
		}
		return who.Disclosures, nil
	})
}

// BenchmarkDisclosuresAll lists every disclosure, a page of 100 from a
// time drawn over the workload's span, over a ledger of -store.events
// disclosures to the workload's 200 recipients: the listing merges the
// recipients' indexes (query.go). It reports latency percentiles.
func BenchmarkDisclosuresAll(b *testing.B) {
	s, start := benchLedger(b)
	ctx := context.Background()
	timeQueries(b, "disclosures", func(i int) (int, error) {
		since := start.Add(time.Duration(i*7919%*benchEvents) * time.Second)
		page, err := s.Disclosures(ctx, ledger.DisclosureFilter{Since: since, Limit: 100})
		if err != nil {
			return 0, err
		}
		return len(page.Disclosures), nil
	})
}
