package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	natsio "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sharelog/sharelog/internal/cloudevents"
	"github.com/sharelog/sharelog/internal/ledger"
	"github.com/sharelog/sharelog/internal/nats"
	"github.com/sharelog/sharelog/internal/vocab"
)

// secretID is a data-subject identifier distinctive enough to search for.
const secretID = "QX7-SECRET-9041"

// fakeLedger is a hand-written fake of Store and Publisher: it keeps
// obligations in memory and applies the delivery records it is given with
// the ledger's own rules (internal/ledger), after decoding each one with the
// real Decoder (so that every record the Dispatcher publishes is valid
// input). It re-implements no rule.
type fakeLedger struct {
	t   testing.TB
	dec *cloudevents.Decoder

	mu         sync.Mutex
	obs        map[string]*ledger.Obligation
	order      []string
	events     map[string][]byte
	recipients map[string]ledger.Recipient
	seen       map[string]uint64
	deliveries []ledger.NoticeDelivery
	seq        uint64
	down       atomic.Bool // Publish fails, as if NATS went away
}

func newFakeLedger(t testing.TB) *fakeLedger {
	t.Helper()
	voc, err := vocab.Load()
	if err != nil {
		t.Fatal(err)
	}
	dec, err := cloudevents.NewDecoder(voc)
	if err != nil {
		t.Fatal(err)
	}
	return &fakeLedger{t: t, dec: dec, obs: map[string]*ledger.Obligation{}, events: map[string][]byte{},
		recipients: map[string]ledger.Recipient{}, seen: map[string]uint64{}}
}

func (f *fakeLedger) addRecipient(r ledger.Recipient) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.recipients[r.ID] = r
}

// open opens an erasure obligation for recipient and returns its notice id.
func (f *fakeLedger) open(recipient, channel string, due time.Time) string {
	f.t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	notice := fmt.Sprintf("n-%s-%d", recipient, len(f.order)+1)
	ev := map[string]any{
		"specversion": "1.0", "id": notice, "source": "sharelog/propagation", "type": ledger.TypeNotice,
		"time": "2026-03-02T10:00:00Z", "datacontenttype": "application/json",
		"data": ledger.Notice{Notice: notice, Action: ledger.ActionErase, Request: "req-1",
			Subject: ledger.Subject{Scheme: "dbs-ref", ID: secretID}, Categories: []string{"user.contact.email"},
			Disclosures: []string{"d-" + recipient}, Due: due},
	}
	raw, err := json.Marshal(ev)
	if err != nil {
		f.t.Fatal(err)
	}
	if _, err := f.dec.DecodeStructured(raw); err != nil {
		f.t.Fatalf("notice fixture: %v", err)
	}
	f.events[notice] = raw
	f.obs[notice] = &ledger.Obligation{Notice: notice, Request: "req-1", Action: ledger.ActionErase, Recipient: recipient,
		Channel: channel, Categories: []string{"user.contact.email"}, Disclosures: []string{"d-" + recipient},
		OpenedAt: time.Now().UTC(), Due: due, State: ledger.StatePending}
	f.order = append(f.order, notice)
	return notice
}

func (f *fakeLedger) outgoing(ob *ledger.Obligation, now time.Time, reminder bool) ledger.OutgoingNotice {
	o := *ob
	o.SetOverdue(now)
	return ledger.OutgoingNotice{Obligation: o, Event: f.events[ob.Notice], Reminder: reminder}
}

// DueNotices selects with the ledger's own rule (Obligation.DueForDelivery).
func (f *fakeLedger) DueNotices(ctx context.Context, now time.Time, remindEvery time.Duration, limit int) ([]ledger.OutgoingNotice, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []ledger.OutgoingNotice
	for _, n := range f.order {
		if len(out) >= limit {
			break
		}
		ob := *f.obs[n]
		ob.SetOverdue(now)
		if due, reminder := ob.DueForDelivery(now, remindEvery); due {
			out = append(out, f.outgoing(&ob, now, reminder))
		}
	}
	return out, nil
}

// ManualQueue selects with the ledger's own rule (Obligation.InManualQueue).
func (f *fakeLedger) ManualQueue(ctx context.Context) ([]ledger.OutgoingNotice, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []ledger.OutgoingNotice
	for _, n := range f.order {
		if ob := f.obs[n]; ob.InManualQueue() {
			out = append(out, f.outgoing(ob, time.Now(), false))
		}
	}
	return out, nil
}

func (f *fakeLedger) Obligation(ctx context.Context, notice string) (*ledger.Obligation, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ob, ok := f.obs[notice]
	if !ok {
		return nil, ledger.Errorf(ledger.ENOTFOUND, "no notice %q", notice)
	}
	c := *ob
	return &c, nil
}

func (f *fakeLedger) Recipient(ctx context.Context, id string) (*ledger.Recipient, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.recipients[id]
	if !ok {
		return nil, ledger.Errorf(ledger.ENOTFOUND, "no recipient %q", id)
	}
	return &r, nil
}

func (f *fakeLedger) WaitApplied(ctx context.Context, seq uint64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.seq < seq {
		return errors.New("fake ledger: sequence not published")
	}
	return nil
}

func (f *fakeLedger) Publish(ctx context.Context, subject string, events []*ledger.Event) ([]nats.Ack, error) {
	if f.down.Load() {
		return nil, natsio.ErrConnectionClosed
	}
	if subject != SubjectDelivery {
		f.t.Errorf("published to %q, want %q", subject, SubjectDelivery)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	acks := make([]nats.Ack, len(events))
	for i, ev := range events {
		dec, err := f.dec.DecodeStructured(ev.Raw)
		if err != nil {
			f.t.Errorf("delivery record refused by the decoder: %v", err)
			return nil, err
		}
		key := dec.Source + "\x00" + dec.ID
		if s, ok := f.seen[key]; ok {
			acks[i] = nats.Ack{Seq: s, Duplicate: true}
			continue
		}
		f.seq++
		f.seen[key] = f.seq
		acks[i] = nats.Ack{Seq: f.seq}
		f.apply(*dec.Data.(*ledger.NoticeDelivery))
	}
	return acks, nil
}

// apply records a delivery the way the ledger does (Obligation.Deliver).
func (f *fakeLedger) apply(r ledger.NoticeDelivery) {
	f.deliveries = append(f.deliveries, r)
	ob := f.obs[r.Notice]
	if ob == nil {
		f.t.Errorf("delivery record for unknown notice %s", r.Notice)
		return
	}
	if ob.Open() && r.Attempt != ob.Attempts+1 {
		f.t.Errorf("notice %s: attempt %d recorded after %d attempts", r.Notice, r.Attempt, ob.Attempts)
	}
	ob.Deliver(&r)
}

// records returns the delivery records of notice, in order.
func (f *fakeLedger) records(notice string) []ledger.NoticeDelivery {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []ledger.NoticeDelivery
	for _, r := range f.deliveries {
		if r.Notice == notice {
			out = append(out, r)
		}
	}
	return out
}

func (f *fakeLedger) state(notice string) string {
	ob, _ := f.Obligation(context.Background(), notice)
	return ob.State
}

// startNATS runs an embedded NATS server with JetStream and returns a
// JetStream context on it as serve makes it (nats.NewJetStream, with opts),
// with SHARELOG_NOTICES created.
func startNATS(t testing.TB, opts ...jetstream.JetStreamOpt) (*natsio.Conn, jetstream.JetStream) {
	t.Helper()
	ns, err := nats.StartServer(nats.ServerConfig{Listen: "127.0.0.1:0", StoreDir: t.TempDir()}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	nc, err := natsio.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := nats.NewJetStream(nc, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if err := EnsureStream(context.Background(), js, StreamConfig{}); err != nil {
		t.Fatal(err)
	}
	return nc, js
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// runDispatcher runs d until the test ends.
func runDispatcher(t testing.TB, d *Dispatcher) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run returned %v, want nil", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// checkFor polls f until it returns nil or the timeout passes.
func checkFor(t testing.TB, timeout time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %v", timeout, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// fastConfig retries within milliseconds.
func fastConfig(secrets *Secrets) Config {
	return Config{Interval: 5 * time.Millisecond, Backoff: Backoff{Base: time.Millisecond, Max: 20 * time.Millisecond},
		WebhookTimeout: 5 * time.Second, Secrets: secrets}
}
