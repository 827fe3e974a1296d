package consultation

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/sharelog/sharelog/internal/ledger"
	"github.com/sharelog/sharelog/internal/nats"
)

// Source is the CloudEvents source of the consultations sharelog records.
const Source = "sharelog/consultations"

// Publisher puts events on SHARELOG_IN; *nats.Publisher implements it.
type Publisher interface {
	Publish(ctx context.Context, subject string, events []*ledger.Event) ([]nats.Ack, error)
}

// Ledger is what Log reads of the ledger; *store.Store implements it.
type Ledger interface {
	WaitApplied(ctx context.Context, streamSeq uint64) error
	Lookup(ctx context.Context, source, id string) (*ledger.Entry, error)
}

// Decoder validates the events Log makes, as every input is validated, and
// hands them to the ingest; *cloudevents.Decoder implements it.
type Decoder interface {
	DecodeStructured(body []byte) (*ledger.Event, error)
	Handoff(events []*ledger.Event)
}

// Config configures a Log.
type Config struct {
	// Wait bounds Consult: a consultation not committed within it is
	// reported as not recorded (default 5s).
	Wait time.Duration
	// MaxBatch is the most consultations published together (default
	// nats.MaxAtomicBatch).
	MaxBatch int
	// Now returns the current time (default time.Now): the event's time,
	// when the request was asked.
	Now func() time.Time
}

// Log records consultations. Run must be running for Consult to succeed.
type Log struct {
	pub   Publisher
	led   Ledger
	dec   Decoder
	cfg   Config
	log   *slog.Logger
	queue chan *pending
}

// pending is one Consult waiting for its event to be published.
type pending struct {
	ev   *ledger.Event
	done chan published // buffered: Run never waits for a caller that gave up
}

// published is the outcome of publishing one event.
type published struct {
	seq uint64
	err error
}

// New returns a Log publishing with pub and reading led.
func New(pub Publisher, led Ledger, dec Decoder, cfg Config, logger *slog.Logger) *Log {
	if cfg.Wait <= 0 {
		cfg.Wait = 5 * time.Second
	}
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = nats.MaxAtomicBatch
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if logger == nil {
		logger = slog.Default()
	}
	return &Log{pub: pub, led: led, dec: dec, cfg: cfg, log: logger.With("system", "consultation"), queue: make(chan *pending, cfg.MaxBatch)}
}

// Run publishes the consultations Consult queues, all those waiting at
// once in one batch, until ctx is done; then it returns nil. A batch that
// cannot be published fails its callers and Run goes on with the next.
func (l *Log) Run(ctx context.Context) error {
	batch := make([]*pending, 0, l.cfg.MaxBatch)
	for {
		batch = batch[:0]
		select {
		case p := <-l.queue:
			batch = append(batch, p)
		case <-ctx.Done():
			return nil
		}
	fill:
		for len(batch) < l.cfg.MaxBatch {
			select {
			case p := <-l.queue:
				batch = append(batch, p)
			default:
				break fill
			}
		}
		l.publish(ctx, batch)
	}
}

// publish publishes one batch and tells each caller its stream sequence.
func (l *Log) publish(ctx context.Context, batch []*pending) {
	events := make([]*ledger.Event, len(batch))
	for i, p := range batch {
		events[i] = p.ev
	}
	pctx, cancel := context.WithTimeout(ctx, l.cfg.Wait)
	defer cancel()
	l.dec.Handoff(events) // before publishing: the ingest may read them at once
	acks, err := l.pub.Publish(pctx, nats.SubjectInNotify, events)
	if err == nil && len(acks) != len(events) {
		err = fmt.Errorf("%d acks for %d events", len(acks), len(events))
	}
	if err != nil {
		l.log.Error("consultations not published", "count", len(batch), "err", err)
	}
	for i, p := range batch {
		r := published{err: err}
		if err == nil {
			r.seq = acks[i].Seq
		}
		p.done <- r
	}
}

// Consult records c in the ledger and returns once its entry is committed:
// durable in the ledger, in the Merkle tree. The time is the ledger's; the
// event also says when Consult was called. It returns an EINVALID error for
// a consultation that breaks the event's contract (a reason too long, a
// malformed subject), and an EUNAVAILABLE error when it could not be
// recorded within Config.Wait (NATS or the ingest down, Run not running):
// the caller must then refuse the request. Neither error quotes the
// person or the reason.
func (l *Log) Consult(ctx context.Context, c ledger.Consultation) error {
	ctx, cancel := context.WithTimeout(ctx, l.cfg.Wait)
	defer cancel()
	ev, err := l.event(c)
	if err != nil {
		return err
	}
	p := &pending{ev: ev, done: make(chan published, 1)}
	select {
	case l.queue <- p:
	case <-ctx.Done():
		return unavailable("not published", ctx.Err())
	}
	var r published
	select {
	case r = <-p.done:
	case <-ctx.Done():
		return unavailable("not published", ctx.Err())
	}
	if r.err != nil {
		return unavailable("not published", r.err)
	}
	if err := l.led.WaitApplied(ctx, r.seq); err != nil {
		return unavailable("not applied", err)
	}
	e, err := l.led.Lookup(ctx, Source, ev.ID)
	switch {
	case ledger.ErrorCode(err) == ledger.ENOTFOUND:
		return ledger.Errorf(ledger.EINTERNAL, "consultation refused by the ledger: see SHARELOG_REJECTED, stream sequence %d", r.seq)
	case err != nil:
		return unavailable("not read back", err)
	case e.StreamSeq != r.seq:
		return ledger.Errorf(ledger.EINTERNAL, "consultation recorded from stream sequence %d, published as %d", e.StreamSeq, r.seq)
	}
	return nil
}

// event makes the consultation's event, validated as any input is.
func (l *Log) event(c ledger.Consultation) (*ledger.Event, error) {
	var id [16]byte
	if _, err := rand.Read(id[:]); err != nil {
		return nil, err
	}
	raw, err := ledger.MarshalEvent("c-"+hex.EncodeToString(id[:]), Source, ledger.TypeConsultation, l.cfg.Now().UTC(), &c)
	if err != nil {
		return nil, err
	}
	ev, err := l.dec.DecodeStructured(raw)
	if err != nil {
		var ie *ledger.InvalidError
		if errors.As(err, &ie) {
			return nil, ledger.Errorf(ledger.EINVALID, "consultation: %s", ie.Error())
		}
		return nil, err
	}
	return ev, nil
}

// unavailable is the error of a consultation that could not be recorded:
// the request must be refused.
func unavailable(what string, err error) error {
	return ledger.Errorf(ledger.EUNAVAILABLE, "consultation log: %s, so the request is refused: %v", what, err)
}
