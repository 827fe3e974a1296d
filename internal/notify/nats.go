package notify

import (
	"context"
	"strconv"
	"time"

	natsio "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sharelog/sharelog/internal/ledger"
	"github.com/sharelog/sharelog/internal/nats"
)

// The stream and subjects of nats-channel notices (DESIGN.md).
const (
	StreamNotices = "SHARELOG_NOTICES"
	// SubjectNoticePrefix is followed by the recipient id.
	SubjectNoticePrefix = "sharelog.notice."
	// SubjectAckPrefix is followed by the recipient id; acks published there
	// land in SHARELOG_IN and the ingest loop vouches for the recipient.
	SubjectAckPrefix = "sharelog.in.ack."
)

// StreamConfig tunes SHARELOG_NOTICES.
type StreamConfig struct {
	// MaxAge is how long a notice stays in the stream (default 90 days). A
	// notice carries a data-subject identifier, so it is not kept for ever;
	// an overdue notice is published again as a reminder regardless.
	MaxAge time.Duration
	// Duplicates is the Nats-Msg-Id window (default 2m).
	Duplicates time.Duration
	// Replicas on a NATS cluster (default 1; --stream-replicas).
	Replicas int
}

// EnsureStream creates SHARELOG_NOTICES (subjects sharelog.notice.>, file
// storage), or updates it to cfg. Safe to call from every start.
func EnsureStream(ctx context.Context, js jetstream.JetStream, cfg StreamConfig) error {
	if cfg.MaxAge == 0 {
		cfg.MaxAge = 90 * 24 * time.Hour
	}
	if cfg.Duplicates == 0 {
		cfg.Duplicates = 2 * time.Minute
	}
	if cfg.Replicas == 0 {
		cfg.Replicas = 1
	}
	return nats.EnsureStream(ctx, js, jetstream.StreamConfig{
		Name:        StreamNotices,
		Description: "sharelog notices to recipients on the nats channel, one subject per recipient",
		Subjects:    []string{SubjectNoticePrefix + ">"},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		MaxAge:      cfg.MaxAge,
		Duplicates:  cfg.Duplicates,
		Replicas:    cfg.Replicas,
		Discard:     jetstream.DiscardOld,
	})
}

// NoticeMsgID returns the Nats-Msg-Id of a nats-channel notice: the notice id,
// plus "-r<attempt>" for a reminder so that the duplicate window does not
// swallow it. A resend of the same attempt has the same id.
func NoticeMsgID(notice string, attempt int, reminder bool) string {
	if reminder {
		return notice + "-r" + strconv.Itoa(attempt)
	}
	return notice
}

// sendNATS publishes the notices due[i] for i in idx to their recipients'
// subjects and fills in records[i]: delivered when JetStream acknowledged it.
func (d *Dispatcher) sendNATS(ctx context.Context, due []ledger.OutgoingNotice, idx []int, records []*ledger.NoticeDelivery) {
	futures := make([]jetstream.PubAckFuture, len(idx))
	errs := make([]error, len(idx))
	for k, i := range idx {
		o := &due[i]
		if d.js == nil {
			errs[k] = natsio.ErrConnectionClosed
			continue
		}
		msg := &natsio.Msg{Subject: SubjectNoticePrefix + o.Obligation.Recipient, Data: o.Event, Header: natsio.Header{}}
		msg.Header.Set("Content-Type", nats.ContentTypeStructured)
		f, err := d.js.PublishMsgAsync(msg, jetstream.WithMsgID(NoticeMsgID(o.Obligation.Notice, o.Obligation.Attempts+1, o.Reminder)))
		futures[k], errs[k] = f, err
	}
	for k, i := range idx {
		o := &due[i]
		if errs[k] != nil {
			d.noteStream(errs[k])
			records[i] = d.failed(o, "nats", 0, natsError(errs[k]), 0)
			continue
		}
		select {
		case <-futures[k].Ok():
			d.noStream.Store(false)
			records[i] = d.record(o, "nats", ledger.DeliveryDelivered)
		case err := <-futures[k].Err():
			d.noteStream(err)
			records[i] = d.failed(o, "nats", 0, natsError(err), 0)
		case <-ctx.Done():
			return
		}
	}
}

// noteStream remembers a publish that found no stream for its subject.
func (d *Dispatcher) noteStream(err error) {
	if errorsIs(err, jetstream.ErrNoStreamResponse) || errorsIs(err, natsio.ErrNoResponders) {
		d.noStream.Store(true)
	}
}

// natsError describes a publish failure without anything from the message.
func natsError(err error) string {
	switch {
	case err == nil:
		return ""
	case errorsIs(err, jetstream.ErrNoStreamResponse), errorsIs(err, natsio.ErrNoResponders):
		return "no stream " + StreamNotices + " for the subject"
	case errorsIs(err, jetstream.ErrAsyncPublishTimeout), errorsIs(err, natsio.ErrTimeout), errorsIs(err, context.DeadlineExceeded):
		return "nats publish timed out"
	case errorsIs(err, natsio.ErrConnectionClosed), errorsIs(err, natsio.ErrDisconnected):
		return "nats not connected"
	}
	return "nats publish failed"
}
