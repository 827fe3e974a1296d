package nats

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v5"
	natsio "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sharelog/sharelog/internal/access"
	"github.com/sharelog/sharelog/internal/cloudevents"
	"github.com/sharelog/sharelog/internal/ledger"
	"github.com/sharelog/sharelog/internal/metrics"
	"github.com/sharelog/sharelog/internal/store"
)

// SubjectAckPrefix is followed by a recipient id: a recipient acknowledges
// notices by publishing to sharelog.in.ack.<recipient>, and the ingest loop
// takes that recipient as the event's From (NATS permissions decide who may
// publish there).
const SubjectAckPrefix = "sharelog.in.ack."

// IngestConfig tunes the ingest loop.
type IngestConfig struct {
	// BatchSize is the most stream messages applied in one Badger transaction
	// (default 1000).
	BatchSize int
	// BatchBytes bounds the message bytes of one batch (default 4 MiB), which
	// keeps a batch well inside Badger's transaction limit.
	BatchBytes int
	// Access, when set, makes the loop vouch each event's publisher by the
	// subject it arrived on (vouch, permissions.go); nil trusts every subject.
	Access *access.Control
	// Gapless (replica mode) makes a stream whose first message is past
	// the ledger's next one fatal (ErrStreamGap), instead of consuming from
	// its first message: the messages in between are gone, and the ledger
	// must be rebuilt from a snapshot (package snapshot) at the next start.
	Gapless bool
}

// ErrStreamGap says that SHARELOG_IN no longer holds the messages after the
// ledger's position: a ledger that has applied up to sequence n needs n+1.
var ErrStreamGap = errors.New("the stream no longer holds the messages after the ledger's position")

// Ingester is the ledger's one writer: it applies SHARELOG_IN to the store in
// stream order, in batches, one transaction and one sync per batch.
type Ingester struct {
	js      jetstream.JetStream
	store   *store.Store
	decoder *cloudevents.Decoder
	metrics *metrics.Metrics
	log     *slog.Logger
	cfg     IngestConfig
	ready   atomic.Bool
	// onRequest is called after a batch that recorded a rectification,
	// erasure, restriction or lifting (see NotifyRequests).
	onRequest atomic.Pointer[func()]
}

// NotifyRequests registers f, called after each committed batch that
// recorded a rectification, erasure, restriction or lifting of one, so that
// the notice dispatcher can start at once instead of at its next poll. f must
// not block. Safe to call while Run runs.
func (in *Ingester) NotifyRequests(f func()) { in.onRequest.Store(&f) }

// requestTypes are the events that open obligations.
var requestTypes = map[string]bool{
	ledger.TypeRectification: true, ledger.TypeErasure: true,
	ledger.TypeRestriction: true, ledger.TypeRestrictionLifted: true,
}

// NewIngester returns an Ingester; Run starts it.
func NewIngester(js jetstream.JetStream, st *store.Store, dec *cloudevents.Decoder, m *metrics.Metrics, logger *slog.Logger, cfg IngestConfig) *Ingester {
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 1000
	}
	if cfg.BatchBytes <= 0 {
		cfg.BatchBytes = 4 << 20
	}
	if logger == nil {
		logger = slog.Default()
	}
	return &Ingester{js: js, store: st, decoder: dec, metrics: m, log: logger.With("system", "ingest"), cfg: cfg}
}

// Ready reports whether the ingest loop is consuming.
func (in *Ingester) Ready() bool { return in.ready.Load() }

// CatchUp waits until the ledger has applied everything SHARELOG_IN held when
// it was called: a read-your-writes barrier.
func (in *Ingester) CatchUp(ctx context.Context) error {
	last, err := LastSeq(ctx, in.js)
	if err != nil {
		return err
	}
	return in.store.WaitApplied(ctx, last)
}

// Ingest retry schedule: a failed batch or consumer is retried after
// retryInitial, doubling up to retryMax; the schedule starts again after
// consumption has run for longer than retryMax.
const (
	retryInitial = 100 * time.Millisecond
	retryMax     = 10 * time.Second
)

// Run applies SHARELOG_IN to the ledger until ctx is done, and then returns
// nil. A failed batch is discarded and consumption restarts from the ledger's
// last committed position after a backoff, so every message is applied
// exactly once; a consumer deleted under it is replaced the same way.
//
// Run returns an error, wrapped as "ingest: ...", only when retrying cannot
// help: before each (re)start it checks SHARELOG_IN, and a stream that is
// gone, or that ends before the ledger's position (deleted or replaced), is
// fatal, since new messages would then be skipped. Other failures, such as a
// NATS server that does not answer, are retried for as long as ctx lasts.
func (in *Ingester) Run(ctx context.Context) error {
	b := &backoff.ExponentialBackOff{InitialInterval: retryInitial, Multiplier: 2, MaxInterval: retryMax}
	_, err := backoff.Retry(ctx, func() (struct{}, error) {
		if err := in.checkStream(ctx); err != nil {
			return struct{}{}, err
		}
		start := time.Now()
		err := in.consume(ctx)
		in.ready.Store(false)
		if time.Since(start) > retryMax {
			b.Reset() // it ran for a while: this failure starts a new schedule
		}
		if errors.Is(err, store.ErrSecretDestroyed) {
			return struct{}{}, backoff.Permanent(err) // a replica too far behind: retrying cannot help
		}
		return struct{}{}, err
	}, backoff.WithBackOff(b), backoff.WithMaxElapsedTime(0), backoff.WithNotify(func(err error, next time.Duration) {
		in.log.Error("ingest failed; resuming from the last committed batch", "err", err, "retry_in", next)
	}))
	if ctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("ingest: %w", err)
}

// checkStream returns a permanent error (backoff.Permanent) if SHARELOG_IN
// is gone or ends before the ledger's position, and the error as it is if
// the stream could not be read.
func (in *Ingester) checkStream(ctx context.Context) error {
	last, err := LastSeq(ctx, in.js)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return backoff.Permanent(fmt.Errorf("%w: it was deleted; restore it or start from a new data directory", err))
	}
	if err != nil {
		return err
	}
	if applied := in.store.Applied(); last < applied {
		return backoff.Permanent(fmt.Errorf("stream %s ends at sequence %d but the ledger has applied up to %d: the stream was deleted or replaced; restore it or start from a new data directory", StreamIn, last, applied))
	}
	if !in.cfg.Gapless {
		return nil
	}
	first, err := FirstSeq(ctx, in.js)
	if err != nil {
		return err
	}
	if applied := in.store.Applied(); first > applied+1 {
		return backoff.Permanent(fmt.Errorf("%w: stream %s starts at sequence %d, the ledger has applied up to %d; restart to rebuild it from a snapshot", ErrStreamGap, StreamIn, first, applied))
	}
	return nil
}

// consume runs one ordered consumer from the ledger's position until an error.
func (in *Ingester) consume(ctx context.Context) error {
	cons, err := in.js.OrderedConsumer(ctx, StreamIn, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:   in.store.Applied() + 1,
	})
	if err != nil {
		return fmt.Errorf("ordered consumer: %w", err)
	}
	// Messages are decoded and validated here, on the consumer's delivery
	// goroutine, so that decoding the next messages overlaps with applying
	// and committing the current batch on this one. Order is kept: one
	// delivery goroutine feeds one channel.
	msgs := make(chan decoded, 2*in.cfg.BatchSize)
	done := make(chan struct{})
	defer close(done)
	// deleted says the server deleted the consumer, which it does when the
	// stream is deleted: consume returns, and Run checks the stream.
	deleted := make(chan error, 1)
	cc, err := cons.Consume(func(m jetstream.Msg) {
		select {
		case msgs <- in.decode(m):
		case <-done:
		}
	}, jetstream.PullMaxMessages(2*in.cfg.BatchSize), jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		in.log.Warn("consumer", "err", err)
		if errors.Is(err, jetstream.ErrConsumerDeleted) {
			select {
			case deleted <- err:
			default:
			}
		}
	}))
	if err != nil {
		return fmt.Errorf("consume: %w", err)
	}
	defer cc.Stop()
	in.ready.Store(true)

	batch := make([]decoded, 0, in.cfg.BatchSize)
	for {
		batch = batch[:0]
		select {
		case d := <-msgs:
			batch = append(batch, d)
		case err := <-deleted:
			return fmt.Errorf("consume: %w", err)
		case <-ctx.Done():
			return ctx.Err()
		}
		in.observeLag(batch[0].msg)
		size := len(batch[0].msg.Data())
	fill:
		for len(batch) < in.cfg.BatchSize && size < in.cfg.BatchBytes {
			select {
			case d := <-msgs:
				batch = append(batch, d)
				size += len(d.msg.Data())
			default:
				break fill
			}
		}
		if err := in.apply(ctx, batch); err != nil {
			return err
		}
	}
}

// observeLag records how long m waited between JetStream storing it and
// the ingest loop taking it (metrics.DeliveryLagSeconds), once per batch.
func (in *Ingester) observeLag(m jetstream.Msg) {
	if md, err := m.Metadata(); err == nil {
		in.metrics.DeliveryLagSeconds.Observe(max(time.Since(md.Timestamp), 0).Seconds())
	}
}

// decoded is a stream message with the event decoded from it, or why it
// could not be.
type decoded struct {
	msg    jetstream.Msg
	ev     *ledger.Event
	source string // the event's, as far as it could be read, for the rejection's subject
	err    error
}

// decode decodes and validates one message, and records what its subject
// vouches for: the recipient of an ack subject, or sharelog's own subject.
func (in *Ingester) decode(m jetstream.Msg) decoded {
	d := in.decoder.DecodeNATS(m.Headers(), m.Data())
	ev, err := d.Event, d.Err
	if err != nil {
		return decoded{msg: m, source: d.Source, err: err}
	}
	if r, ok := strings.CutPrefix(m.Subject(), SubjectAckPrefix); ok {
		ev.From = r // the recipient this subject's publish permission vouches for
	}
	ev.Internal = m.Subject() == SubjectInNotify
	if err := vouch(in.cfg.Access, m.Subject(), ev); err != nil {
		return decoded{msg: m, source: ev.Source, err: err}
	}
	return decoded{msg: m, ev: ev, source: ev.Source}
}

// rejection is a stream message that will not enter the ledger.
type rejection struct {
	msg    jetstream.Msg
	seq    uint64
	source string
	err    error
}

// apply records one batch of decoded messages: append, republish what was
// refused, then commit the batch with its last stream sequence. If the batch
// outgrows a Badger transaction it commits what it has and goes on with the
// rest in a new one.
func (in *Ingester) apply(ctx context.Context, msgs []decoded) error {
	start := time.Now()
	b := in.store.Begin()
	defer b.Discard()
	applied := in.store.Applied()
	if err := in.prefetch(ctx, b, msgs, applied); err != nil {
		return err
	}
	var (
		rejects             []rejection
		last                uint64
		recorded, duplicate int
		requests            bool
	)
	for i, d := range msgs {
		m, ev := d.msg, d.ev
		md, err := m.Metadata()
		if err != nil {
			return fmt.Errorf("message metadata: %w", err)
		}
		seq := md.Sequence.Stream
		if seq <= applied || seq <= last {
			continue // redelivered after a consumer reset
		}
		if d.err != nil {
			rejects = append(rejects, rejection{msg: m, seq: seq, source: d.source, err: d.err})
			last = seq
			continue
		}
		out, err := b.AppendAt(seq, ev, md.Timestamp) // the stream's time, the same on every replica
		switch {
		case errors.Is(err, store.ErrBatchTooBig) && last > 0:
			if err := in.commit(ctx, b, last, rejects, recorded, duplicate, start); err != nil {
				return err
			}
			in.requestsRecorded(requests)
			return in.apply(ctx, msgs[i:])
		case out == ledger.Rejected:
			rejects = append(rejects, rejection{msg: m, seq: seq, source: d.source, err: err})
		case err != nil:
			return fmt.Errorf("append stream sequence %d: %w", seq, err)
		case out == ledger.Recorded:
			recorded++
			requests = requests || requestTypes[ev.Type]
		case out == ledger.Duplicate:
			duplicate++
		}
		last = seq
	}
	if last == 0 {
		return nil
	}
	if err := in.commit(ctx, b, last, rejects, recorded, duplicate, start); err != nil {
		return err
	}
	in.requestsRecorded(requests)
	return nil
}

// prefetch gets the shared secrets the batch will need in one call, on a
// replica (store.Batch.Prefetch).
func (in *Ingester) prefetch(ctx context.Context, b *store.Batch, msgs []decoded, applied uint64) error {
	if !in.store.SharedSecrets() {
		return nil
	}
	pending := make([]store.Pending, 0, len(msgs))
	for _, d := range msgs {
		md, err := d.msg.Metadata()
		if err != nil {
			return fmt.Errorf("message metadata: %w", err)
		}
		if d.err == nil && md.Sequence.Stream > applied {
			pending = append(pending, store.Pending{StreamSeq: md.Sequence.Stream, Event: d.ev})
		}
	}
	if err := b.Prefetch(ctx, pending); err != nil {
		return fmt.Errorf("prefetch secrets: %w", err)
	}
	return nil
}

// requestsRecorded calls the NotifyRequests hook after a commit that
// recorded requests.
func (in *Ingester) requestsRecorded(requests bool) {
	if f := in.onRequest.Load(); requests && f != nil {
		(*f)()
	}
}

func (in *Ingester) commit(ctx context.Context, b *store.Batch, last uint64, rejects []rejection, recorded, duplicate int, start time.Time) error {
	if err := in.reject(ctx, b, rejects); err != nil {
		return err
	}
	committing := time.Now()
	if err := b.Commit(last); err != nil {
		return fmt.Errorf("commit batch ending at stream sequence %d: %w", last, err)
	}
	m := in.metrics
	m.CommitSeconds.Observe(time.Since(committing).Seconds())
	m.Events.WithLabelValues(ledger.Recorded.String()).Add(float64(recorded))
	m.Events.WithLabelValues(ledger.Duplicate.String()).Add(float64(duplicate))
	m.Events.WithLabelValues(ledger.Rejected.String()).Add(float64(len(rejects)))
	m.BatchSize.Observe(float64(recorded + duplicate + len(rejects)))
	m.BatchSeconds.Observe(time.Since(start).Seconds())
	m.Entries.Set(float64(in.store.Count()))
	m.AppliedSeq.Set(float64(last))
	return nil
}

// reject republishes refused messages to SHARELOG_REJECTED, original bytes
// with sharelog's headers (reason, detail, input sequence and subject) and
// none of the original's, under RejectedSubject (by reason and source), and
// waits until JetStream holds every one. The
// Nats-Msg-Id is derived from the input sequence, so a batch replayed after a
// crash does not file the same rejection twice within the duplicate window.
// Each rejection is recorded in the batch under the subjects its message
// names, as far as they can be read (Batch.Refused), so that forgetting one
// of them scrubs it from both streams.
func (in *Ingester) reject(ctx context.Context, b *store.Batch, rejects []rejection) error {
	futures := make([]jetstream.PubAckFuture, 0, len(rejects))
	for _, r := range rejects {
		reason, detail := ledger.ReasonMalformed, r.err.Error()
		var ie *ledger.InvalidError
		if errors.As(r.err, &ie) {
			reason, detail = ie.Reason(), ie.Error()
		}
		// The original bytes, and only sharelog's own headers: a refused
		// message's headers (ce-* attributes, a producer's own) may hold
		// an identifier, and nothing could scrub them.
		msg := natsio.NewMsg(RejectedSubject(reason, r.source))
		msg.Header.Set(HeaderReason, string(reason))
		msg.Header.Set(HeaderDetail, headerSafe(detail))
		msg.Header.Set(HeaderStreamSeq, strconv.FormatUint(r.seq, 10))
		msg.Header.Set(HeaderSubject, r.msg.Subject())
		msg.Data = r.msg.Data()
		f, err := in.js.PublishMsgAsync(msg, jetstream.WithMsgID("rejected-"+strconv.FormatUint(r.seq, 10)))
		if err != nil {
			return fmt.Errorf("publish rejection: %w", err)
		}
		futures = append(futures, f)
		in.metrics.Rejected.WithLabelValues(string(reason), "nats").Inc()
		in.log.Warn("event rejected", "reason", reason, "stream_seq", r.seq, "subject", r.msg.Subject())
	}
	for i, f := range futures {
		select {
		case ack := <-f.Ok():
			r := rejects[i]
			if err := b.Refused(cloudevents.NamedSubjects(r.msg.Headers(), r.msg.Data()), r.seq, ack.Sequence); err != nil {
				return fmt.Errorf("record rejection: %w", err)
			}
		case err := <-f.Err():
			return fmt.Errorf("publish rejection: %w", err)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// headerSafe makes s fit a header value: one line, at most 2,000 bytes.
func headerSafe(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' {
			return ' '
		}
		return r
	}, s)
	if len(s) > 2000 {
		s = s[:2000]
	}
	return s
}
