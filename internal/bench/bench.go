package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	natsio "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"

	"github.com/sharelog/sharelog/internal/cloudevents"
	slhttp "github.com/sharelog/sharelog/internal/http"
	"github.com/sharelog/sharelog/internal/ledger"
	"github.com/sharelog/sharelog/internal/nats"
	"github.com/sharelog/sharelog/internal/store"
	"github.com/sharelog/sharelog/internal/vocab"
)

// The phases of a run, in the order they run. The queries and the
// publish-to-queryable latency belong to PhaseFull: they use the ledger
// its ingest built.
const (
	PhaseRawJetStream = "raw-jetstream"
	PhaseRawBadger    = "raw-badger"
	PhaseFull         = "full"
)

// AllPhases are every phase, in the order they run.
var AllPhases = []string{PhaseRawJetStream, PhaseRawBadger, PhaseFull}

// ParsePhases checks a list of phase names and returns them in the order
// they run. It refuses an unknown or repeated name and an empty list.
func ParsePhases(names []string) ([]string, error) {
	seen := map[string]bool{}
	for _, n := range names {
		n = strings.TrimSpace(n)
		if !slices.Contains(AllPhases, n) {
			return nil, fmt.Errorf("unknown phase %q (phases: %s)", n, strings.Join(AllPhases, ", "))
		}
		if seen[n] {
			return nil, fmt.Errorf("phase %q given twice", n)
		}
		seen[n] = true
	}
	var out []string
	for _, p := range AllPhases {
		if seen[p] {
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no phase to run")
	}
	return out, nil
}

// Config says what to measure.
type Config struct {
	Dir     string // scratch directory; everything is written under it
	Events  int    // events for each throughput measurement and the queried ledger (default 1,000,000)
	Latency time.Duration
	// LatencyRate is the publish rate of the publish-to-queryable figure,
	// in events/s; 0 means half the sustained full ingest rate.
	LatencyRate float64
	Queries     int  // who and window queries to time (default 2000)
	SyncAlways  bool // JetStream fsyncs every write (durable mode)
	// Unencrypted keeps every phase's files in clear: the raw phases'
	// JetStream store and Badger directory, and the full phase's ledger and
	// JetStream store. By default every phase encrypts them at rest as
	// serve does, with keys derived from a master key of its own, so that
	// the ratios compare like with like.
	Unencrypted bool
	// Atomic publishes the raw JetStream and full ingest events in atomic
	// batches of 1000 instead of one asynchronous publish each.
	Atomic    bool
	BatchSize int // ingest batch size (default 1000)
	Chunk     int // events generated at a time (default 10,000)
	Generator Generator
	Logf      func(format string, args ...any)
	RSSEvery  int // sample the process RSS every this many events written (default 1,000,000)
	// AfterIngest, if set, runs when the full ingest has finished, before
	// the queries (the command takes a heap profile there).
	AfterIngest func() error
	// Consult times who with the consultation log off and on: the who
	// queries alternate between the two (Target.ConsultLog), on the same
	// ledger, and FullPhase.Who and WhoLogged report each. Without it, who
	// runs as serve runs it, with the log on.
	Consult bool
}

// Target is a running sharelog under test, started by the caller (the
// command wires the real serve code).
type Target struct {
	NATSURL     string
	HTTPURL     string
	Applied     func() uint64
	WaitApplied func(ctx context.Context, seq uint64) error
	LedgerDir   string
	Close       func() error
	// Compacting reports whether the ledger's storage still has
	// compactions to catch up on (nil: never).
	Compacting func() bool
	// ConsultLog turns the target's consultation log (DPA 2018 s.62) on or
	// off; used with Config.Consult.
	ConsultLog func(on bool)
}

// waitCompacted waits until the ledger has no compactions to catch up on,
// at most ten minutes, and returns how long that took.
func (t *Target) waitCompacted(ctx context.Context) (time.Duration, error) {
	start := time.Now()
	for t.Compacting != nil && t.Compacting() && time.Since(start) < 10*time.Minute {
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return time.Since(start), nil
}

// StartFunc starts a sharelog on a data directory: JetStream fsyncing
// every write when syncAlways is set, and its ledger and JetStream store in
// clear when unencrypted is (serve's --unencrypted-ledger, and a store
// without its key).
type StartFunc func(ctx context.Context, dataDir string, syncAlways, unencrypted bool) (*Target, error)

// Rate is one throughput figure.
type Rate struct {
	Events  int     `json:"events"`
	Seconds float64 `json:"seconds"`
	PerSec  float64 `json:"eventsPerSecond"`
}

// Latency is a latency distribution in milliseconds.
type Latency struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50Ms"`
	P99 float64 `json:"p99Ms"`
	Max float64 `json:"maxMs"`
}

// RSS is the resident memory of the process running a phase when the
// phase had written Events events (to the stream, the raw ledger, or the
// ledger of the running sharelog): all of it (VmRSS), and the anonymous
// part (RssAnon: heaps and buffers, without the pages of memory-mapped
// files, which Badger's tables and JetStream's blocks are and which the
// kernel reclaims as page cache).
//
// Seconds is the phase's clock at the sample, from its start: with the
// sample before it, the rate of that stretch (the raw Badger phase's clock
// runs only while it writes).
type RSS struct {
	Events  int     `json:"events"`
	Seconds float64 `json:"seconds"`
	MiB     float64 `json:"rssMiB"`
	AnonMiB float64 `json:"anonMiB"`
}

// Phase is what one phase measured: its throughput and the memory of the
// process that ran it.
type Phase struct {
	Rate
	PID int `json:"pid"`
	// PeakRSSMiB is the process's VmHWM when the phase ended. In a process of
	// its own that is the phase's peak. When phases share a process
	// (Isolation is IsolationInProcess) it was reset at the phase's start
	// where the kernel allows, but the memory earlier phases left is in it.
	PeakRSSMiB float64 `json:"peakRSSMiB"`
	RSS        []RSS   `json:"rss"`
	// CPUPerEvent is the CPU time (user and system, all threads) the
	// process spent while writing, in microseconds per event: the
	// publisher, the NATS server and, in the full phase, sharelog's ingest
	// and the compactions' catch-up. Other work on the machine slows the
	// rates but changes it much less, so it is the figure to compare runs
	// on a busy machine with.
	CPUPerEvent float64 `json:"cpuMicrosPerEvent"`
}

// FullPhase is the full ingest and what was measured on the ledger it
// built; the memory figures cover all of it.
type FullPhase struct {
	Phase
	// Sustained counts the time Badger took after the ingest to compact
	// what the burst wrote (CatchUpSeconds) as ingest time too.
	Sustained      Rate    `json:"sustained"`
	CatchUpSeconds float64 `json:"compactionCatchUpSeconds"`
	// WhoBusy and WindowBusy are the queries right after the ingest, while
	// its compactions ran; Who and Window once they were done.
	WhoBusy    Latency `json:"whoDuringCompaction"`
	WindowBusy Latency `json:"recipientMonthDuringCompaction"`
	Who        Latency `json:"who"`
	WhoCount   int     `json:"whoDisclosures"`
	// WhoLoggedBusy and WhoLogged are who with the consultation log on,
	// alternating with the queries of WhoBusy and Who, which then have it
	// off (Config.Consult).
	WhoLoggedBusy Latency `json:"whoWithConsultationDuringCompaction,omitzero"`
	WhoLogged     Latency `json:"whoWithConsultation,omitzero"`
	Window        Latency `json:"recipientMonth"`
	WindowRows    float64 `json:"recipientMonthRowsAvg"`
	PubToQuery    Latency `json:"publishToQueryable"`
	PubRate       float64 `json:"publishToQueryableRate"`
	DiskBytes     float64 `json:"ledgerBytesPerEvent"`
	JSBytes       float64 `json:"jetstreamBytesPerEvent"`
}

// How the phases of a run were isolated from one another.
const (
	IsolationProcess   = "process-per-phase" // each phase in a new process
	IsolationInProcess = "in-process"        // every phase in one process, one after another
)

// Report is everything one run measured. A phase that did not run is
// absent (nil), and so is a ratio whose two phases did not both run.
type Report struct {
	StartedAt   time.Time  `json:"startedAt"`
	GoVersion   string     `json:"goVersion"`
	CPUs        int        `json:"cpus"`
	SyncAlways  bool       `json:"syncAlways"`
	Atomic      bool       `json:"atomicBatches"`
	Unencrypted bool       `json:"unencrypted"`
	EventBytes  float64    `json:"eventBytesAvg"`
	Events      int        `json:"events"`
	BatchSize   int        `json:"batchSize"`
	Phases      []string   `json:"phases"`
	Isolation   string     `json:"isolation"`
	RawJS       *Phase     `json:"rawJetStream,omitempty"`
	RawBadger   *Phase     `json:"rawBadger,omitempty"`
	Full        *FullPhase `json:"full,omitempty"`
	FullOverJS  *float64   `json:"fullOverRawJetStream,omitempty"`
	FullOverBdg *float64   `json:"fullOverRawBadger,omitempty"`
}

func (c *Config) defaults() {
	if c.Events == 0 {
		c.Events = 1_000_000
	}
	if c.Queries == 0 {
		c.Queries = 2000
	}
	if c.BatchSize == 0 {
		c.BatchSize = 1000
	}
	if c.Chunk == 0 {
		c.Chunk = 10_000
	}
	if c.Latency == 0 {
		c.Latency = 5 * time.Second
	}
	if c.RSSEvery == 0 {
		c.RSSEvery = 1_000_000
	}
	if c.Logf == nil {
		c.Logf = func(string, ...any) {}
	}
	c.Generator.defaults()
}

func (c *Config) newReport() *Report {
	return &Report{StartedAt: time.Now().UTC(), GoVersion: runtime.Version(), CPUs: runtime.NumCPU(),
		SyncAlways: c.SyncAlways, Atomic: c.Atomic, Unencrypted: c.Unencrypted, Events: c.Events, BatchSize: c.BatchSize}
}

// chunk is a run of generated disclosures and their Nats-Msg-Id values.
type chunk struct {
	events [][]byte
	msgIDs []string
}

// chunks streams the benchmark's disclosures, generated a chunk at a time
// ahead of the consumer, so memory stays bounded whatever the event count.
func (c *Config) chunks(ctx context.Context) <-chan chunk {
	ch := make(chan chunk, 2)
	go func() {
		defer close(ch)
		for first := 0; first < c.Events; first += c.Chunk {
			n := min(c.Chunk, c.Events-first)
			select {
			case ch <- chunk{c.Generator.Disclosures(first, n, c.Events), c.Generator.msgIDs(first, n)}:
			case <-ctx.Done():
				return
			}
		}
	}()
	return ch
}

// msgIDs returns the Nats-Msg-Id of disclosures first to first+n-1, known
// without parsing the events.
func (g *Generator) msgIDs(first, n int) []string {
	ids := make([]string, n)
	for k := range ids {
		ids[k] = nats.MsgID(DisclosureSource, g.DisclosureID(first+k))
	}
	return ids
}

// parseMsgIDs reads the Nats-Msg-Id of events from their JSON; for the few
// events (the recipient registry) published outside a measured stretch.
func parseMsgIDs(events [][]byte) ([]string, error) {
	ids := make([]string, len(events))
	for i, ev := range events {
		var id struct{ ID, Source string }
		if err := json.Unmarshal(ev, &id); err != nil {
			return nil, err
		}
		ids[i] = nats.MsgID(id.Source, id.ID)
	}
	return ids, nil
}

// Run runs phases, in order, each through runner, and assembles the report.
func Run(ctx context.Context, cfg Config, phases []string, runner Runner) (*Report, error) {
	cfg.defaults()
	phases, err := ParsePhases(phases)
	if err != nil {
		return nil, err
	}
	rep := cfg.newReport()
	rep.Phases, rep.Isolation = phases, runner.Isolation()
	sample := cfg.Generator.Disclosures(0, 1000, cfg.Events)
	total := 0
	for _, e := range sample {
		total += len(e)
	}
	rep.EventBytes = float64(total) / float64(len(sample))

	for _, phase := range phases {
		got, err := runner.RunPhase(ctx, phase)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", phase, err)
		}
		switch {
		case phase == PhaseRawJetStream && got.RawJS != nil:
			rep.RawJS = got.RawJS
		case phase == PhaseRawBadger && got.RawBadger != nil:
			rep.RawBadger = got.RawBadger
		case phase == PhaseFull && got.Full != nil:
			rep.Full = got.Full
		default:
			return nil, fmt.Errorf("%s: the phase's result lacks its figures", phase)
		}
	}
	if rep.Full != nil && rep.RawJS != nil {
		r := rep.Full.PerSec / rep.RawJS.PerSec
		rep.FullOverJS = &r
	}
	if rep.Full != nil && rep.RawBadger != nil {
		r := rep.Full.PerSec / rep.RawBadger.PerSec
		rep.FullOverBdg = &r
	}
	return rep, nil
}

// RunPhase runs one phase in this process and returns a report holding
// that phase alone. start is needed by PhaseFull only.
func RunPhase(ctx context.Context, cfg Config, phase string, start StartFunc) (*Report, error) {
	cfg.defaults()
	rep := cfg.newReport()
	rep.Phases = []string{phase}
	var err error
	switch phase {
	case PhaseRawJetStream:
		cfg.Logf("raw JetStream: async publish of %d events with Nats-Msg-Id", cfg.Events)
		rep.RawJS, err = rawJetStream(ctx, &cfg)
	case PhaseRawBadger:
		cfg.Logf("raw Badger: the ledger's write set for %d events in batches of %d", cfg.Events, cfg.BatchSize)
		rep.RawBadger, err = rawBadger(ctx, &cfg)
	case PhaseFull:
		if start == nil {
			return nil, errors.New("full: no way to start a sharelog")
		}
		cfg.Logf("full ingest: %d events through a running sharelog", cfg.Events)
		rep.Full, err = fullIngest(ctx, &cfg, start)
	default:
		return nil, fmt.Errorf("unknown phase %q", phase)
	}
	if err != nil {
		return nil, err
	}
	return rep, nil
}

// phaseDone fills in the process figures of a phase that has finished.
func phaseDone(p *Phase, r Rate, rss []RSS) {
	p.Rate = r
	p.PID = os.Getpid()
	p.RSS = rss
	p.PeakRSSMiB = procStatusMiB("VmHWM")
}

func publishAsync(js jetstream.JetStream, subject string, events [][]byte, msgIDs []string, futures *[]jetstream.PubAckFuture) error {
	for i, ev := range events {
		f, err := js.PublishAsync(subject, ev, jetstream.WithMsgID(msgIDs[i]), jetstream.WithStallWait(time.Minute))
		if err != nil {
			return err
		}
		*futures = append(*futures, f)
	}
	return nil
}

// publishAtomic publishes events in JetStream atomic batches of up to
// nats.MaxAtomicBatch, one after another, as sharelog publish and the HTTP
// batch path do, and returns the last batch's sequence.
func publishAtomic(ctx context.Context, js jetstream.JetStream, subject string, events [][]byte, msgIDs []string) (uint64, error) {
	var last uint64
	for start := 0; start < len(events); start += nats.MaxAtomicBatch {
		end := min(start+nats.MaxAtomicBatch, len(events))
		msgs := make([]*natsio.Msg, 0, end-start)
		for i := start; i < end; i++ {
			m := natsio.NewMsg(subject)
			m.Data = events[i]
			m.Header.Set(jetstream.MsgIDHeader, msgIDs[i])
			msgs = append(msgs, m)
		}
		ack, err := jetstreamext.PublishMsgBatch(ctx, js, msgs)
		if err != nil {
			return 0, fmt.Errorf("atomic batch: %w", err)
		}
		last = ack.Sequence
	}
	return last, nil
}

// drainAcks waits for every future and returns the highest sequence.
func drainAcks(ctx context.Context, futures []jetstream.PubAckFuture) (uint64, error) {
	var last uint64
	for _, f := range futures {
		select {
		case a := <-f.Ok():
			last = max(last, a.Sequence)
		case err := <-f.Err():
			return 0, err
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	return last, nil
}

// publishStream publishes every chunk asynchronously to subject and returns
// the last stream sequence once all are acknowledged; afterChunk is called
// with the number of events published so far.
func publishStream(ctx context.Context, cfg *Config, js jetstream.JetStream, subject string, afterChunk func(int)) (uint64, error) {
	var last uint64
	sent := 0
	for c := range cfg.chunks(ctx) {
		var l uint64
		var err error
		if cfg.Atomic {
			l, err = publishAtomic(ctx, js, subject, c.events, c.msgIDs)
		} else {
			futures := make([]jetstream.PubAckFuture, 0, len(c.events))
			if err := publishAsync(js, subject, c.events, c.msgIDs, &futures); err != nil {
				return 0, err
			}
			l, err = drainAcks(ctx, futures)
		}
		if err != nil {
			return 0, err
		}
		last = max(last, l)
		sent += len(c.events)
		if afterChunk != nil {
			afterChunk(sent)
		}
	}
	return last, ctx.Err()
}

// publishRecipients publishes the recipient registry and returns the last
// stream sequence once all are acknowledged.
func publishRecipients(ctx context.Context, cfg *Config, js jetstream.JetStream) (uint64, error) {
	events := cfg.Generator.RecipientEvents()
	ids, err := parseMsgIDs(events)
	if err != nil {
		return 0, err
	}
	var futures []jetstream.PubAckFuture
	if err := publishAsync(js, "sharelog.in.bench", events, ids, &futures); err != nil {
		return 0, err
	}
	return drainAcks(ctx, futures)
}

func rawJetStream(ctx context.Context, cfg *Config) (*Phase, error) {
	dir := filepath.Join(cfg.Dir, "raw-jetstream")
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	var key string
	if !cfg.Unencrypted {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, err
		}
		master, err := store.LoadMasterKey(filepath.Join(dir, "master.key"))
		if err != nil {
			return nil, err
		}
		key = nats.AtRestKey(master) // as serve keys its embedded store
	}
	ns, err := nats.StartServer(nats.ServerConfig{Listen: "127.0.0.1:0", StoreDir: filepath.Join(dir, "jetstream"), SyncAlways: cfg.SyncAlways, EncryptionKey: key}, logger)
	if err != nil {
		return nil, err
	}
	defer ns.Shutdown()
	nc, err := natsio.Connect(ns.ClientURL())
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4000))
	if err != nil {
		return nil, err
	}
	if _, err := nats.EnsureStreams(ctx, js, nats.StreamConfig{}); err != nil {
		return nil, err
	}
	rss := newRSSSampler(cfg.RSSEvery, nil)
	start, cpu := time.Now(), cpuTime()
	// Every event is acknowledged, so stored, when its chunk's callback runs.
	if _, err := publishStream(ctx, cfg, js, "sharelog.in.bench", func(sent int) { rss.reached(sent, nil) }); err != nil {
		return nil, err
	}
	p := &Phase{CPUPerEvent: cpuPerEvent(cpu, cfg.Events)}
	phaseDone(p, rate(cfg.Events, time.Since(start)), rss.final(cfg.Events))
	return p, nil
}

func rawBadger(ctx context.Context, cfg *Config) (*Phase, error) {
	dir := filepath.Join(cfg.Dir, "raw-badger")
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := store.Open(store.Config{Dir: filepath.Join(dir, "ledger"), KeyFile: filepath.Join(dir, "site.key"), EncryptAtRest: !cfg.Unencrypted, Logger: logger})
	if err != nil {
		return nil, err
	}
	defer st.Close()
	voc, err := vocab.Load()
	if err != nil {
		return nil, err
	}
	dec, err := cloudevents.NewDecoder(voc)
	if err != nil {
		return nil, err
	}
	decode := func(raws [][]byte) ([]*ledger.Event, error) {
		evs := make([]*ledger.Event, len(raws))
		for i, raw := range raws {
			if evs[i], err = dec.DecodeStructured(raw); err != nil {
				return nil, err
			}
		}
		return evs, nil
	}
	var seq uint64
	apply := func(evs []*ledger.Event) error {
		for start := 0; start < len(evs); start += cfg.BatchSize {
			b := st.Begin()
			for _, ev := range evs[start:min(start+cfg.BatchSize, len(evs))] {
				seq++
				if out, err := b.Append(seq, ev); err != nil || out != ledger.Recorded {
					b.Discard()
					return fmt.Errorf("append: %v %v", out, err)
				}
			}
			if err := b.Commit(seq); err != nil {
				return err
			}
		}
		return nil
	}
	recips, err := decode(cfg.Generator.RecipientEvents())
	if err != nil {
		return nil, err
	}
	if err := apply(recips); err != nil {
		return nil, err
	}
	// Decoding is not part of this figure: each chunk is decoded before the
	// clock runs for it.
	var elapsed, cpu time.Duration
	rss := newRSSSampler(cfg.RSSEvery, func() time.Duration { return elapsed })
	written := 0
	for c := range cfg.chunks(ctx) {
		evs, err := decode(c.events)
		if err != nil {
			return nil, err
		}
		t, c := time.Now(), cpuTime()
		if err := apply(evs); err != nil {
			return nil, err
		}
		elapsed += time.Since(t)
		cpu += cpuTime() - c
		written += len(evs)
		rss.reached(written, nil)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p := &Phase{CPUPerEvent: float64(cpu) / float64(time.Microsecond) / float64(cfg.Events)}
	phaseDone(p, rate(cfg.Events, elapsed), rss.final(cfg.Events))
	return p, nil
}

func fullIngest(ctx context.Context, cfg *Config, start StartFunc) (*FullPhase, error) {
	dataDir := filepath.Join(cfg.Dir, "sharelog")
	t, err := start(ctx, dataDir, cfg.SyncAlways, cfg.Unencrypted)
	if err != nil {
		return nil, err
	}
	closed := false
	defer func() {
		if !closed {
			t.Close()
		}
	}()
	nc, err := natsio.Connect(t.NATSURL)
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4000))
	if err != nil {
		return nil, err
	}
	last, err := publishRecipients(ctx, cfg, js)
	if err != nil {
		return nil, err
	}
	if err := t.WaitApplied(ctx, last); err != nil {
		return nil, err
	}
	base := t.Applied()
	rss := newRSSSampler(cfg.RSSEvery, nil)
	// The ledger trails the publisher: sample when it has caught up to each point.
	caughtUp := func(n int) bool { return t.WaitApplied(ctx, base+uint64(n)) == nil }
	begin, cpu := time.Now(), cpuTime()
	last, err = publishStream(ctx, cfg, js, "sharelog.in.bench", func(sent int) { rss.reached(sent, caughtUp) })
	if err != nil {
		return nil, err
	}
	if err := t.WaitApplied(ctx, last); err != nil {
		return nil, err
	}
	full := &FullPhase{}
	ingest := rate(cfg.Events, time.Since(begin))
	// The samples end at the ingest's end, not after the queries below; the
	// peak covers all of the phase.
	samples := rss.final(cfg.Events)

	if cfg.AfterIngest != nil {
		if err := cfg.AfterIngest(); err != nil {
			return nil, err
		}
	}
	client := slhttp.NewClient(t.HTTPURL)
	var logSwitch func(on bool)
	if cfg.Consult {
		if logSwitch = t.ConsultLog; logSwitch == nil {
			return nil, errors.New("bench: the target's consultation log cannot be switched")
		}
	}
	queries := func(who, logged, window *Latency) error {
		cfg.Logf("who: %d queries for a subject with %d disclosures (consultation log off and on in turn: %v)", cfg.Queries, cfg.Generator.MarkedCount, logSwitch != nil)
		if *who, *logged, full.WhoCount, err = whoLatency(ctx, client, logSwitch, cfg.Queries); err != nil {
			return err
		}
		cfg.Logf("disclosures by recipient, one-month windows: %d queries", cfg.Queries/4)
		*window, full.WindowRows, err = windowLatency(ctx, client, cfg, max(cfg.Queries/4, 10))
		return err
	}
	if err := queries(&full.WhoBusy, &full.WhoLoggedBusy, &full.WindowBusy); err != nil {
		return nil, err
	}
	// A burst leaves Badger compactions to catch up on: they count against
	// the rate the ledger can sustain, and would otherwise be measured as
	// query and publish-to-queryable latency.
	cfg.Logf("waiting for the ledger's compactions to catch up")
	catchUp, err := t.waitCompacted(ctx)
	if err != nil {
		return nil, err
	}
	full.CatchUpSeconds = catchUp.Seconds()
	full.CPUPerEvent = cpuPerEvent(cpu, cfg.Events)
	full.Sustained = rate(cfg.Events, time.Duration((ingest.Seconds+full.CatchUpSeconds)*float64(time.Second)))
	if err := queries(&full.Who, &full.WhoLogged, &full.Window); err != nil {
		return nil, err
	}
	pubRate := full.Sustained.PerSec / 2
	if cfg.LatencyRate > 0 {
		pubRate = cfg.LatencyRate
	}
	cfg.Logf("publish to queryable at %.0f events/s for %v", pubRate, cfg.Latency)
	full.PubRate = pubRate
	if full.PubToQuery, err = pubToQueryable(ctx, js, t, cfg, pubRate); err != nil {
		return nil, err
	}
	closed = true
	if err := t.Close(); err != nil {
		return nil, err
	}
	entries := float64(cfg.Events + cfg.Generator.Recipients + full.PubToQuery.N)
	full.DiskBytes = float64(diskUsage(t.LedgerDir)) / entries
	full.JSBytes = float64(diskUsage(filepath.Join(dataDir, "jetstream"))) / entries
	phaseDone(&full.Phase, ingest, samples)
	return full, nil
}

// whoLatency times n who queries. With logSwitch, the queries alternate
// between the consultation log off (the first figure) and on (the second),
// on the same ledger; the log is left on.
func whoLatency(ctx context.Context, client *slhttp.Client, logSwitch func(on bool), n int) (plain, logged Latency, count int, err error) {
	var durs, loggedDurs []time.Duration
	if logSwitch != nil {
		defer logSwitch(true)
	}
	for i := range n {
		on := logSwitch != nil && i%2 == 1
		if logSwitch != nil {
			logSwitch(on)
		}
		t := time.Now()
		w, err := client.Who(ctx, Marked)
		if err != nil {
			return Latency{}, Latency{}, 0, err
		}
		if on {
			loggedDurs = append(loggedDurs, time.Since(t))
		} else {
			durs = append(durs, time.Since(t))
		}
		count = w.Disclosures
	}
	plain = latency(durs)
	if len(loggedDurs) > 0 {
		logged = latency(loggedDurs)
	}
	return plain, logged, count, nil
}

func windowLatency(ctx context.Context, client *slhttp.Client, cfg *Config, n int) (Latency, float64, error) {
	r := rand.New(rand.NewPCG(7, 7))
	span := time.Duration(cfg.Events) * cfg.Generator.Spacing
	month := 30 * 24 * time.Hour
	durs := make([]time.Duration, n)
	rows := 0
	for i := range durs {
		since := cfg.Generator.Start
		if span > month {
			since = since.Add(time.Duration(r.Int64N(int64(span - month))))
		}
		f := ledger.DisclosureFilter{Recipient: RecipientID(r.IntN(cfg.Generator.Recipients)), Since: since, Until: since.Add(month), Limit: ledger.MaxLimit}
		t := time.Now()
		page, err := client.Disclosures(ctx, f)
		if err != nil {
			return Latency{}, 0, err
		}
		durs[i] = time.Since(t)
		rows += len(page.Disclosures)
	}
	return latency(durs), float64(rows) / float64(n), nil
}

// pubToQueryable publishes at a steady rate and times each event from its
// publish until the ledger has committed it (after which every query sees it).
//
// The events are made a chunk at a time, just ahead of their publishing, and
// their acks drained as they come: the publisher shares the process (and its
// memory limit) with the ledger it measures, and holding a whole run's events
// and futures would make the ledger's garbage collector, not its ingest, the
// figure.
func pubToQueryable(ctx context.Context, js jetstream.JetStream, t *Target, cfg *Config, perSec float64) (Latency, error) {
	n := max(int(perSec*cfg.Latency.Seconds()), 10)
	g := cfg.Generator
	g.Seed += 1000      // new ids
	base := t.Applied() // no other publisher: the next sequences are ours, in order
	sent := make([]time.Time, n)
	done := make([]time.Duration, n)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	watchErr := make(chan error, 1)
	go func() {
		next := 0
		for next < n {
			if err := t.WaitApplied(ctx, base+uint64(next)+1); err != nil {
				watchErr <- err
				return
			}
			now := time.Now()
			applied := int(t.Applied() - base)
			for ; next < min(applied, n); next++ {
				done[next] = now.Sub(sent[next])
			}
		}
		watchErr <- nil
	}()
	// Acks are drained a chunk at a time, behind the publisher.
	acks := make(chan []jetstream.PubAckFuture, 64)
	ackErr := make(chan error, 1)
	var last uint64
	go func() {
		for fs := range acks {
			l, err := drainAcks(ctx, fs)
			if err != nil {
				ackErr <- err
				cancel()
				for range acks {
				}
				return
			}
			last = max(last, l)
		}
		ackErr <- nil
	}()
	c := *cfg
	c.Events, c.Chunk, c.Generator = n, min(cfg.Chunk, 1000), g
	interval := time.Duration(float64(time.Second) / perSec)
	start := time.Now()
	i := 0
	var pubErr error
publish:
	for ch := range c.chunks(ctx) {
		futures := make([]jetstream.PubAckFuture, 0, len(ch.events))
		for k, ev := range ch.events {
			if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
				time.Sleep(d)
			}
			sent[i] = time.Now()
			if pubErr = publishAsync(js, "sharelog.in.bench", [][]byte{ev}, ch.msgIDs[k:k+1], &futures); pubErr != nil {
				break publish
			}
			i++
		}
		acks <- futures
	}
	if pubErr != nil {
		cancel()
	}
	close(acks)
	if err := <-ackErr; pubErr == nil && err != nil {
		pubErr = err
	}
	if pubErr != nil {
		return Latency{}, pubErr
	}
	if err := ctx.Err(); err != nil {
		return Latency{}, err
	}
	if last != base+uint64(n) {
		return Latency{}, fmt.Errorf("stream sequences %d..%d are not ours alone", base+1, last)
	}
	if err := <-watchErr; err != nil {
		return Latency{}, err
	}
	return latency(done), nil
}

// cpuTime returns the CPU time (user and system) this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// cpuPerEvent returns the CPU time used since since (a cpuTime), in
// microseconds per event for n events.
func cpuPerEvent(since time.Duration, n int) float64 {
	return float64(cpuTime()-since) / float64(time.Microsecond) / float64(n)
}

func rate(n int, d time.Duration) Rate {
	return Rate{Events: n, Seconds: d.Seconds(), PerSec: float64(n) / d.Seconds()}
}

func latency(durs []time.Duration) Latency {
	slices.Sort(durs)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	q := func(p float64) time.Duration { return durs[min(int(p*float64(len(durs))), len(durs)-1)] }
	return Latency{N: len(durs), P50: ms(q(0.50)), P99: ms(q(0.99)), Max: ms(durs[len(durs)-1])}
}

// diskUsage returns the bytes allocated on disk to files under dir.
func diskUsage(dir string) int64 {
	var total int64
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		if info, err := d.Info(); err == nil {
			if st, ok := info.Sys().(*syscall.Stat_t); ok {
				total += st.Blocks * 512
			} else {
				total += info.Size()
			}
		}
		return nil
	})
	return total
}
