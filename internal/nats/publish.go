package nats

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	natsio "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

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

// Ack is JetStream's acknowledgement of one published event.
type Ack struct {
	// Seq is the event's SHARELOG_IN sequence.
	Seq uint64
	// Duplicate is true when JetStream's duplicate window already held the
	// event; Seq is then the sequence of the earlier copy.
	Duplicate bool
}

// Publisher publishes validated events to SHARELOG_IN.
type Publisher struct {
	js jetstream.JetStream
}

// NewPublisher returns a Publisher on js.
func NewPublisher(js jetstream.JetStream) *Publisher { return &Publisher{js: js} }

// Publish publishes events, in order, in the structured content mode to
// subject (which must be under sharelog.in.), and returns once JetStream has
// acknowledged every one of them, so that each is durable in the stream.
// It returns the acks in the order of events. On error some events may have
// been stored; publishing them again is harmless, since the ledger records an
// event once per (source, id).
func (p *Publisher) Publish(ctx context.Context, subject string, events []*ledger.Event) ([]Ack, error) {
	futures := make([]jetstream.PubAckFuture, len(events))
	for i, ev := range events {
		msg := &natsio.Msg{Subject: subject, Data: ev.Raw, Header: natsio.Header{}}
		msg.Header.Set("Content-Type", ContentTypeStructured)
		f, err := p.js.PublishMsgAsync(msg, jetstream.WithMsgID(MsgID(ev.Source, ev.ID)), jetstream.WithStallWait(30*time.Second))
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
