package nats

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	natsio "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"

	"github.com/sharelog/sharelog/internal/ledger"
)

// ContentTypeStructured is the content type of an event in the CloudEvents
// JSON format.
const ContentTypeStructured = "application/cloudevents+json"

// MsgID returns the Nats-Msg-Id sharelog uses for an event: a digest of its
// (source, id), so that JetStream's duplicate window catches a resend without
// putting anything but a digest in a header.
func MsgID(source, id string) string {
	h := sha256.New()
	h.Write([]byte(source))
	h.Write([]byte{0})
	h.Write([]byte(id))
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// ConflictMsgID returns the Nats-Msg-Id of a copy of an event whose
// (source, id) the ledger holds with other content (PublishConflicts): a
// digest of the (source, id) and of the copy's bytes, so that the copy is
// not taken for a resend of the recorded event (MsgID) within the duplicate
// window, while a resend of the same copy still is one.
func ConflictMsgID(source, id string, raw []byte) string {
	content := sha256.Sum256(raw)
	h := sha256.New()
	h.Write([]byte(MsgID(source, id)))
	h.Write([]byte{0})
	h.Write(content[:])
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// AsyncAckTimeout is how long an asynchronous publish waits for JetStream's
// acknowledgement before its future fails with jetstream.ErrAsyncPublishTimeout.
// Without it a future whose acknowledgement is lost never resolves: on a
// cluster the stream's leader can store a message and die before it answers,
// while the client, connected to another node, is never disconnected.
const AsyncAckTimeout = 10 * time.Second

// NewJetStream returns the JetStream context every sharelog publisher uses:
// asynchronous publishes time out after AsyncAckTimeout. opts come after,
// and may override it.
func NewJetStream(nc *natsio.Conn, opts ...jetstream.JetStreamOpt) (jetstream.JetStream, error) {
	return jetstream.New(nc, append([]jetstream.JetStreamOpt{jetstream.WithPublishAsyncTimeout(AsyncAckTimeout)}, opts...)...)
}

// Ack is JetStream's acknowledgement of one published event.
type Ack struct {
	// Seq is the event's SHARELOG_IN sequence.
	Seq uint64
	// Duplicate is true when JetStream's duplicate window already held the
	// event; Seq is then the sequence of the earlier copy.
	Duplicate bool
}

// MaxAtomicBatch is the most messages JetStream takes in one atomic batch
// (the server's default limit).
const MaxAtomicBatch = 1000

// Publisher publishes validated events to SHARELOG_IN.
type Publisher struct {
	js     jetstream.JetStream
	atomic bool
}

// NewPublisher returns a Publisher on js. With atomic, events go in JetStream
// atomic batches of up to MaxAtomicBatch, each stored all or nothing with one
// acknowledgement (and, on a server that syncs every write, one fsync); the
// stream must allow atomic publish (EnsureStreams says whether it does).
// Otherwise each event is published asynchronously and acknowledged alone.
func NewPublisher(js jetstream.JetStream, atomic bool) *Publisher {
	return &Publisher{js: js, atomic: atomic}
}

// Publish publishes events, in order, in the structured content mode to
// subject (which must be under sharelog.in.), and returns once JetStream has
// acknowledged every one of them, so that each is durable in the stream.
// It returns the acks in the order of events. On error some events may have
// been stored; publishing them again is harmless, since the ledger records an
// event once per (source, id).
//
// An atomic batch holding an event JetStream has seen within its duplicate
// window is refused whole; that batch is then published event by event, so
// that each duplicate is reported as one.
func (p *Publisher) Publish(ctx context.Context, subject string, events []*ledger.Event) ([]Ack, error) {
	return p.publish(ctx, subject, events, eventMsgID)
}

// PublishConflicts publishes, as Publish does, events whose (source, id) the
// ledger holds with other content, so that the ingest refuses them as
// conflicts and keeps them in SHARELOG_REJECTED, as it does a conflicting
// copy that comes over NATS. Each has a message id of its own
// (ConflictMsgID), so JetStream does not drop it as a resend of the recorded
// event.
func (p *Publisher) PublishConflicts(ctx context.Context, subject string, events []*ledger.Event) ([]Ack, error) {
	return p.publish(ctx, subject, events, conflictMsgID)
}

func eventMsgID(ev *ledger.Event) string    { return MsgID(ev.Source, ev.ID) }
func conflictMsgID(ev *ledger.Event) string { return ConflictMsgID(ev.Source, ev.ID, ev.Raw) }

func (p *Publisher) publish(ctx context.Context, subject string, events []*ledger.Event, msgID func(*ledger.Event) string) ([]Ack, error) {
	if !p.atomic {
		return p.publishAsync(ctx, subject, events, msgID)
	}
	acks := make([]Ack, 0, len(events))
	for start := 0; start < len(events); start += MaxAtomicBatch {
		chunk := events[start:min(start+MaxAtomicBatch, len(events))]
		a, err := p.publishAtomic(ctx, subject, chunk, msgID)
		var apiErr *jetstream.APIError
		if errors.As(err, &apiErr) && apiErr.ErrorCode == jetstreamext.JSErrCodeBatchPublishDuplicateMsgID {
			a, err = p.publishAsync(ctx, subject, chunk, msgID)
		}
		if err != nil {
			return nil, err
		}
		acks = append(acks, a...)
	}
	return acks, nil
}

func eventMsg(subject string, ev *ledger.Event, msgID func(*ledger.Event) string) *natsio.Msg {
	msg := &natsio.Msg{Subject: subject, Data: ev.Raw, Header: natsio.Header{}}
	msg.Header.Set("Content-Type", ContentTypeStructured)
	msg.Header.Set(jetstream.MsgIDHeader, msgID(ev))
	return msg
}

// publishAtomic stores events as one atomic batch: they take consecutive
// stream sequences ending at the batch ack's.
func (p *Publisher) publishAtomic(ctx context.Context, subject string, events []*ledger.Event, msgID func(*ledger.Event) string) ([]Ack, error) {
	msgs := make([]*natsio.Msg, len(events))
	for i, ev := range events {
		msgs[i] = eventMsg(subject, ev, msgID)
	}
	ba, err := jetstreamext.PublishMsgBatch(ctx, p.js, msgs)
	if err != nil {
		return nil, fmt.Errorf("publish batch: %w", err)
	}
	first := ba.Sequence - uint64(len(events)) + 1
	acks := make([]Ack, len(events))
	for i := range acks {
		acks[i] = Ack{Seq: first + uint64(i)}
	}
	return acks, nil
}

func (p *Publisher) publishAsync(ctx context.Context, subject string, events []*ledger.Event, msgID func(*ledger.Event) string) ([]Ack, error) {
	futures := make([]jetstream.PubAckFuture, len(events))
	for i, ev := range events {
		f, err := p.js.PublishMsgAsync(eventMsg(subject, ev, msgID), jetstream.WithStallWait(30*time.Second))
		if err != nil {
			return nil, fmt.Errorf("publish: %w", err)
		}
		futures[i] = f
	}
	acks := make([]Ack, len(events))
	for i, f := range futures {
		select {
		case pa := <-f.Ok():
			acks[i] = Ack{Seq: pa.Sequence, Duplicate: pa.Duplicate}
		case err := <-f.Err():
			return nil, fmt.Errorf("publish: %w", err)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return acks, nil
}
