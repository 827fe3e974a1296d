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
	// onRequest is called after a batch that opened obligations whose
	// notices are due (see NotifyRequests).
	onRequest atomic.Pointer[func()]
}

// NotifyRequests registers f, called after each committed batch that opened
// obligations whose notices are due at once (a request's; the erasures a
// hold's release lets proceed: ledger.Plan.OpensNotices), so that the notice
// dispatcher can start at once instead of at its next poll. f must not
// block. Safe to call while Run runs.
func (in *Ingester) NotifyRequests(f func()) { in.onRequest.Store(&f) }

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

	var p pipe
	defer p.stop()
	for {
		// A new slice each time: the batch in flight keeps its messages.
		batch := make([]decoded, 0, in.cfg.BatchSize)
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
		// When more messages wait, the batch's commit is pipelined
		// with the appending of the next (store.Batch.CommitNext).
		more := func() bool { return len(msgs) > 0 }
		if err := in.apply(ctx, &p, batch, more); err != nil {
			return err
		}
	}
}

// pipe is what the ingest loop carries from one batch to the next while a
// commit is in flight: the batch opened before it (store.Batch.CommitNext),
// and the messages of the batch committing, to apply again if its commit
// fails speculation.
type pipe struct {
	next   *store.Batch
	flight []decoded
}

// stop discards the open batch, which waits for the commit in flight.
func (p *pipe) stop() {
	if p.next != nil {
		p.next.Discard()
		p.next = nil
	}
	p.flight = nil
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
// rest in a new one. When more() says messages wait, the commit is issued
// without waiting for it (store.Batch.CommitNext): the next call appends
// to the batch it returns, kept in p, while Badger writes this one.
//
// A batch opened so sees the ledger without the batch committing before
// it; when it read what that one wrote, it or the one before fails with
// store.ErrSpeculationFailed, having recorded nothing: apply then applies
// both again, on batches begun after the ledger's last commit (messages
// already applied are skipped).
func (in *Ingester) apply(ctx context.Context, p *pipe, msgs []decoded, more func() bool) error {
	err := in.applyBatch(ctx, p, msgs, more)
	if !errors.Is(err, store.ErrSpeculationFailed) {
		return err
	}
	flight := p.flight
	p.stop() // nothing is in flight now, and Applied is the last commit's
	in.metrics.BatchesReapplied.Inc()
	in.log.Debug("batch applied again: it read what the batch before it changed", "err", err)
	// The messages of the failed commit, committed at once, so that msgs
	// go to a batch begun after it, which cannot fail so.
	if err := in.applyBatch(ctx, p, flight, func() bool { return false }); err != nil {
		return err
	}
	return in.applyBatch(ctx, p, msgs, more)
}

// applyBatch applies msgs in one batch: the one p holds, else a new one.
func (in *Ingester) applyBatch(ctx context.Context, p *pipe, msgs []decoded, more func() bool) error {
	start := time.Now()
	b := p.next // p.flight holds the messages of its predecessor, in flight
	p.next = nil
	if b == nil {
		b = in.store.Begin()
	}
	defer b.Discard()
	applied := b.Applied()
	if err := in.prefetch(ctx, b, msgs, applied); err != nil {
		return err
	}
	var (
		rejects             []rejection
		last                uint64
		recorded, duplicate int
	)
	// held is what the batch holds so far, to commit.
	held := func() commitment {
		return commitment{last: last, rejects: rejects, recorded: recorded, duplicate: duplicate, requests: b.OpensNotices(), start: start}
	}
	for i, d := range msgs {
		m, ev := d.msg, d.ev
		md, err := m.Metadata()
		if err != nil {
			return fmt.Errorf("message metadata: %w", err)
		}
		seq := md.Sequence.Stream
		if seq <= applied || seq <= last {
			continue // redelivered after a consumer reset, or applied before a batch was applied again
		}
		if d.err != nil {
			rejects = append(rejects, rejection{msg: m, seq: seq, source: d.source, err: d.err})
			last = seq
			continue
		}
		out, err := b.AppendAt(seq, ev, md.Timestamp) // the stream's time, the same on every replica
		switch {
		case errors.Is(err, store.ErrBatchTooBig) && last > 0:
			if err := in.commit(ctx, p, b, held(), msgs[:i], func() bool { return true }); err != nil {
				return err
			}
			return in.applyBatch(ctx, p, msgs[i:], more)
		case errors.Is(err, store.ErrRefusalDeferred):
			// A speculative batch would refuse this event on a snapshot
			// without the commit in flight: commit what it holds at once,
			// and apply the rest on a batch that sees the whole ledger.
			if last > 0 {
				if err := in.commit(ctx, p, b, held(), msgs[:i], func() bool { return false }); err != nil {
					return err
				}
			} else if err := b.Settle(); err != nil {
				return fmt.Errorf("commit batch ending at stream sequence %d: %w", applied, err)
			}
			b.Discard() // before Begin: the ledger has one writer
			p.flight = nil
			return in.applyBatch(ctx, p, msgs[i:], more)
		case out == ledger.Rejected:
			rejects = append(rejects, rejection{msg: m, seq: seq, source: d.source, err: err})
		case err != nil:
			return fmt.Errorf("append stream sequence %d: %w", seq, err)
		case out == ledger.Recorded:
			recorded++
		case out == ledger.Duplicate:
			duplicate++
		}
		last = seq
	}
	if last == 0 {
		// Nothing to commit; the commit in flight before b must still
		// have succeeded.
		if err := b.Settle(); err != nil {
			return fmt.Errorf("commit batch ending at stream sequence %d: %w", applied, err)
		}
		p.flight = nil
		return nil
	}
	return in.commit(ctx, p, b, held(), msgs, more)
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

// commitment is what a batch commits, for its commit and its metrics.
type commitment struct {
	last                uint64 // the batch's last stream sequence
	rejects             []rejection
	recorded, duplicate int
	requests            bool   // it opened obligations whose notices are due (NotifyRequests)
	count               uint64 // the ledger's entries once it commits
	start               time.Time
}

// commit republishes the batch's rejections, then commits it: at once when
// more() says no message waits, else with CommitNext, keeping the next
// batch and the messages of this one in p. Metrics and the NotifyRequests
// hook follow the batch's durability, before WaitApplied callers wake.
func (in *Ingester) commit(ctx context.Context, p *pipe, b *store.Batch, c commitment, msgs []decoded, more func() bool) error {
	if err := in.reject(ctx, b, c.rejects); err != nil {
		return err
	}
	c.count = b.Count()
	committing := time.Now()
	if more() {
		next, err := b.CommitNext(c.last, func(err error) {
			if err == nil {
				in.committed(c, committing)
			}
		})
		if err != nil {
			return fmt.Errorf("commit batch ending at stream sequence %d: %w", c.last, err)
		}
		p.next, p.flight = next, msgs
		if next == nil {
			p.flight = nil // committed at once (store.Batch.CommitNext says when)
		}
		return nil
	}
	err := b.CommitThen(c.last, func(err error) {
		if err == nil {
			in.committed(c, committing)
		}
	})
	if err != nil {
		return fmt.Errorf("commit batch ending at stream sequence %d: %w", c.last, err)
	}
	p.flight = nil
	return nil
}

// committed records the metrics of a durable batch, and calls the
// NotifyRequests hook if it opened obligations whose notices are due.
func (in *Ingester) committed(c commitment, committing time.Time) {
	m := in.metrics
	m.CommitSeconds.Observe(time.Since(committing).Seconds())
	m.Events.WithLabelValues(ledger.Recorded.String()).Add(float64(c.recorded))
	m.Events.WithLabelValues(ledger.Duplicate.String()).Add(float64(c.duplicate))
	m.Events.WithLabelValues(ledger.Rejected.String()).Add(float64(len(c.rejects)))
	m.BatchSize.Observe(float64(c.recorded + c.duplicate + len(c.rejects)))
	m.BatchSeconds.Observe(time.Since(c.start).Seconds())
	m.Entries.Set(float64(c.count))
	m.AppliedSeq.Set(float64(c.last))
	if f := in.onRequest.Load(); c.requests && f != nil {
		(*f)()
	}
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
