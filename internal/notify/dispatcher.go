package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sharelog/sharelog/internal/ledger"
	"github.com/sharelog/sharelog/internal/nats"
)

// Source is the CloudEvents source of the delivery records the Dispatcher
// publishes, and SubjectDelivery the SHARELOG_IN subject it publishes them to.
const (
	Source          = "sharelog/notify"
	SubjectDelivery = nats.SubjectInNotify
)

// Store is what the Dispatcher reads from the ledger. internal/store
// implements it.
type Store interface {
	// DueNotices returns up to limit open notices due a delivery attempt at
	// now: never attempted; failed with NextAttemptAt <= now; or, when
	// remindEvery > 0, delivered, overdue and not attempted in the last
	// remindEvery (Reminder set). Manual-channel notices are never returned.
	DueNotices(ctx context.Context, now time.Time, remindEvery time.Duration, limit int) ([]ledger.OutgoingNotice, error)
	// ManualQueue returns the open manual-channel notices not yet sent.
	ManualQueue(ctx context.Context) ([]ledger.OutgoingNotice, error)
	// Obligation returns the obligation of notice, or ENOTFOUND.
	Obligation(ctx context.Context, notice string) (*ledger.Obligation, error)
	// Recipient returns the current registry entry of id, or ENOTFOUND.
	Recipient(ctx context.Context, id string) (*ledger.Recipient, error)
	// WaitApplied waits until the ledger has applied SHARELOG_IN up to streamSeq.
	WaitApplied(ctx context.Context, streamSeq uint64) error
}

// Publisher puts events on SHARELOG_IN and returns once they are durable
// there. *nats.Publisher implements it.
type Publisher interface {
	Publish(ctx context.Context, subject string, events []*ledger.Event) ([]nats.Ack, error)
}

// Backoff is the retry schedule of failed deliveries: exponential with full
// jitter. Attempt n (from 1) that fails is retried after a random delay in
// [0, min(Max, Base*2^(n-1))]. The schedule is computed from the attempt
// number, not kept in memory, because each attempt's NextAttemptAt is recorded
// in the ledger and survives a restart.
type Backoff struct {
	Base time.Duration // default 1s
	Max  time.Duration // default 1h
}

// Delay returns the delay before the attempt after failed attempt n (from 1).
func (b Backoff) Delay(n int) time.Duration {
	if b.Base <= 0 || b.Max <= 0 {
		return 0
	}
	// Full jitter is cenkalti/backoff's randomisation by a factor of 1
	// around half the ceiling: a delay in [0, ceiling].
	exp := &backoff.ExponentialBackOff{
		InitialInterval:     max(min(b.Base, b.Max)/2, 1),
		RandomizationFactor: 1,
		Multiplier:          2,
		MaxInterval:         b.Max / 2,
	}
	exp.Reset()
	// The interval reaches its maximum within 64 doublings.
	for range min(n-1, 64) {
		exp.NextBackOff()
	}
	return min(exp.NextBackOff(), b.Max)
}

// Config tunes the Dispatcher. Zero values take the defaults.
type Config struct {
	// CatchUp, if set, is called by Run before its first round: it waits
	// until the ledger has applied the delivery records already in
	// SHARELOG_IN, so that a restart does not resend what was recorded.
	// *nats.Ingester's CatchUp is one. Run retries it with backoff, except
	// when SHARELOG_IN is gone (jetstream.ErrStreamNotFound), which is fatal.
	CatchUp func(ctx context.Context) error
	// Interval is how often the store is polled for due notices (default 250ms).
	Interval time.Duration
	// RemindEvery is how often an overdue notice is delivered again as a
	// reminder (default 7 days; negative: never).
	RemindEvery time.Duration
	// Backoff is the retry schedule of failed deliveries.
	Backoff Backoff
	// WebhookTimeout bounds one webhook request (default 10s).
	WebhookTimeout time.Duration
	// Secrets holds the recipients' webhook secrets. A webhook delivery to a
	// recipient without one fails with "no webhook secret configured".
	Secrets *Secrets
	// Batch is the most notices attempted in one round (default 1000).
	Batch int
	// Concurrency is the most webhook requests in flight (default 32).
	Concurrency int
	// HTTPClient sends webhooks. The default does not follow redirects.
	HTTPClient *http.Client
	// Now is the clock (default time.Now).
	Now func() time.Time
}

func (c *Config) defaults() {
	if c.Interval <= 0 {
		c.Interval = 250 * time.Millisecond
	}
	if c.RemindEvery == 0 {
		c.RemindEvery = 7 * 24 * time.Hour
	}
	if c.RemindEvery < 0 {
		c.RemindEvery = 0
	}
	if c.Backoff.Base <= 0 {
		c.Backoff.Base = time.Second
	}
	if c.Backoff.Max <= 0 {
		c.Backoff.Max = time.Hour
	}
	if c.WebhookTimeout <= 0 {
		c.WebhookTimeout = 10 * time.Second
	}
	if c.Batch <= 0 {
		c.Batch = 1000
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 32
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{
			Transport: &http.Transport{
				Proxy:               http.ProxyFromEnvironment,
				MaxIdleConnsPerHost: c.Concurrency,
				IdleConnTimeout:     90 * time.Second,
				TLSHandshakeTimeout: 10 * time.Second,
			},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Dispatcher delivers due notices and records every attempt. Create it with
// New, then Run it. Its other methods (ManualQueue, MarkSent, Obligation,
// WebhookSecret) serve the HTTP API and are safe to call concurrently with Run.
type Dispatcher struct {
	store Store
	pub   Publisher
	js    jetstream.JetStream
	cfg   Config
	log   *slog.Logger
	wake  chan struct{}
	// noStream is set while the last nats-channel notice found no stream
	// to take it (SHARELOG_NOTICES deleted), and cleared by the next one
	// JetStream acknowledges (StreamMissing).
	noStream atomic.Bool
}

// New returns a Dispatcher that reads store, records attempts with pub and
// publishes nats-channel notices with js.
func New(store Store, pub Publisher, js jetstream.JetStream, cfg Config, logger *slog.Logger) *Dispatcher {
	cfg.defaults()
	if logger == nil {
		logger = slog.Default()
	}
	return &Dispatcher{store: store, pub: pub, js: js, cfg: cfg, log: logger.With("system", "notify"), wake: make(chan struct{}, 1)}
}

// StreamMissing reports whether the last nats-channel notice found no stream
// SHARELOG_NOTICES to take it: notices are then retried but none reaches a
// recipient, and serve's /readyz says so.
func (d *Dispatcher) StreamMissing() bool { return d.noStream.Load() }

// Wake makes a running Dispatcher poll now instead of at its next interval.
func (d *Dispatcher) Wake() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// WebhookSecret returns recipient's webhook secret, if one is configured. The
// HTTP API verifies acks with it.
func (d *Dispatcher) WebhookSecret(recipient string) ([]byte, bool) {
	return d.cfg.Secrets.Secret(recipient)
}

// Round retry schedule: a failed round is retried after Config.Interval,
// doubling up to roundRetryMax, and the next good round starts it again.
const roundRetryMax = 30 * time.Second

// Run delivers due notices until ctx is done, and then returns nil. It first
// catches up (Config.CatchUp), retrying with backoff; if that fails for good
// it returns the error, wrapped as "notify: ...". Then each round takes the
// notices due, attempts them all (concurrently), publishes a delivery record
// for each attempt and waits until the ledger has applied them. A failed
// round is logged and retried with backoff; it does not end Run.
// Attempts cut short by ctx are not recorded; they are made again on the next
// start, with the same notice ids. A round lasts as long as its slowest
// attempt (at most WebhookTimeout), and the store is polled no more than
// every Interval, nor more than a fifth of the time.
func (d *Dispatcher) Run(ctx context.Context) error {
	if err := d.catchUp(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("notify: catching up with %s: %w", nats.StreamIn, err)
	}
	retry := &backoff.ExponentialBackOff{InitialInterval: d.cfg.Interval, Multiplier: 2, MaxInterval: roundRetryMax}
	retry.Reset()
	for {
		n, query, err := d.round(ctx)
		if ctx.Err() != nil {
			return nil
		}
		// Polling costs a scan of the open obligations: never spend more
		// than a fifth of the time on it.
		wait := max(d.cfg.Interval, 4*query)
		switch {
		case err != nil:
			wait = retry.NextBackOff()
			d.log.Error("notice round failed", "err", err, "retry_in", wait)
		case n >= d.cfg.Batch:
			retry.Reset()
			continue // more are due
		default:
			retry.Reset()
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-d.wake:
			t.Stop()
		case <-t.C:
		}
	}
}

// catchUp calls Config.CatchUp until it succeeds, with backoff from
// Config.Interval up to roundRetryMax; a missing SHARELOG_IN is permanent.
func (d *Dispatcher) catchUp(ctx context.Context) error {
	if d.cfg.CatchUp == nil {
		return nil
	}
	_, err := backoff.Retry(ctx, func() (struct{}, error) {
		err := d.cfg.CatchUp(ctx)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return struct{}{}, backoff.Permanent(err)
		}
		return struct{}{}, err
	}, backoff.WithBackOff(&backoff.ExponentialBackOff{InitialInterval: d.cfg.Interval, Multiplier: 2, MaxInterval: roundRetryMax}),
		backoff.WithMaxElapsedTime(0),
		backoff.WithNotify(func(err error, next time.Duration) {
			d.log.Warn("catching up with the ledger failed", "err", err, "retry_in", next)
		}))
	return err
}

// Round makes one delivery attempt for each notice due now and records them
// all; it returns how many notices were due. It returns once every record is
// applied to the ledger, or with an error. Run calls it in a loop; tests and
// benchmarks may call it directly (not concurrently with Run).
func (d *Dispatcher) Round(ctx context.Context) (int, error) {
	n, _, err := d.round(ctx)
	return n, err
}

// round is Round, and also returns how long the query for due notices took.
func (d *Dispatcher) round(ctx context.Context) (n int, query time.Duration, err error) {
	start := time.Now()
	due, err := d.store.DueNotices(ctx, d.cfg.Now(), d.cfg.RemindEvery, d.cfg.Batch)
	queried := time.Now()
	query = queried.Sub(start)
	if err != nil {
		return 0, query, fmt.Errorf("due notices: %w", err)
	}
	if len(due) == 0 {
		return 0, query, nil
	}
	records := d.attempt(ctx, due)
	sent := time.Now()
	events := make([]*ledger.Event, 0, len(records))
	for _, r := range records {
		if r == nil {
			continue // cut short by ctx
		}
		ev, err := DeliveryEvent(r)
		if err != nil {
			return len(due), query, err
		}
		events = append(events, ev)
	}
	if len(events) == 0 {
		return len(due), query, ctx.Err()
	}
	// Record what was sent even when shutting down, so that a restart does not
	// send it again; but do not wait for the ledger then.
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	acks, err := d.pub.Publish(pctx, SubjectDelivery, events)
	if err != nil {
		return len(due), query, fmt.Errorf("record deliveries: %w", err)
	}
	var last uint64
	for _, a := range acks {
		last = max(last, a.Seq)
	}
	recorded := time.Now()
	if err := d.store.WaitApplied(ctx, last); err != nil {
		return len(due), query, fmt.Errorf("wait for delivery records: %w", err)
	}
	d.log.Debug("notice round", "due", len(due), "recorded", len(events), "query", query,
		"send", sent.Sub(queried), "record", recorded.Sub(sent), "apply", time.Since(recorded))
	return len(due), query, nil
}

// attempt delivers each notice once and returns its record, in the order of
// due; a record is nil when ctx ended the attempt.
func (d *Dispatcher) attempt(ctx context.Context, due []ledger.OutgoingNotice) []*ledger.NoticeDelivery {
	records := make([]*ledger.NoticeDelivery, len(due))
	regs := map[string]*ledger.Recipient{}
	var natsIdx, hookIdx []int
	for i := range due {
		o := &due[i]
		rid := o.Obligation.Recipient
		rec, seen := regs[rid]
		if !seen {
			r, err := d.store.Recipient(ctx, rid)
			if err != nil && ledger.ErrorCode(err) != ledger.ENOTFOUND {
				// Not the recipient's failure: leave the notice for the next round.
				if ctx.Err() == nil {
					d.log.Warn("recipient lookup failed", "recipient", rid, "err", err)
				}
				continue
			}
			rec, regs[rid] = r, r
		}
		channel := o.Obligation.Channel
		if rec != nil {
			channel = rec.Channel.Type
		}
		switch {
		case rec == nil:
			records[i] = d.failed(o, channel, 0, "recipient not registered", d.cfg.Backoff.Max)
		case channel == "nats":
			natsIdx = append(natsIdx, i)
		case channel == "webhook":
			hookIdx = append(hookIdx, i)
		default:
			// The registry now says manual (or something new): sharelog does
			// not send it; say so in the record and try again much later.
			records[i] = d.failed(o, "manual", 0, "recipient's channel is "+channel+": not sent automatically", d.cfg.Backoff.Max)
		}
	}
	var wg sync.WaitGroup
	if len(natsIdx) > 0 {
		wg.Go(func() { d.sendNATS(ctx, due, natsIdx, records) })
	}
	sem := make(chan struct{}, d.cfg.Concurrency)
	for _, i := range hookIdx {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			records[i] = d.sendWebhook(ctx, &due[i], regs[due[i].Obligation.Recipient])
		})
	}
	wg.Wait()
	return records
}

// record returns the record of attempt Attempts+1 of o.
func (d *Dispatcher) record(o *ledger.OutgoingNotice, channel, outcome string) *ledger.NoticeDelivery {
	return &ledger.NoticeDelivery{
		Notice:   o.Obligation.Notice,
		Attempt:  o.Obligation.Attempts + 1,
		Channel:  channel,
		Outcome:  outcome,
		At:       d.cfg.Now().UTC(),
		Reminder: o.Reminder,
	}
}

// failed returns a failed record whose next attempt is after delay, or after
// the backoff when delay is 0.
func (d *Dispatcher) failed(o *ledger.OutgoingNotice, channel string, status int, msg string, delay time.Duration) *ledger.NoticeDelivery {
	r := d.record(o, channel, ledger.DeliveryFailed)
	r.Status, r.Error = status, msg
	if delay <= 0 {
		delay = d.cfg.Backoff.Delay(r.Attempt)
	}
	next := r.At.Add(delay)
	r.NextAttemptAt = &next
	return r
}

// DeliveryEvent returns r as an org.sharelog.notice.delivery.v1 CloudEvent
// from Source, with the deterministic id notice + "/" + attempt, so that
// publishing the same record again records it once.
func DeliveryEvent(r *ledger.NoticeDelivery) (*ledger.Event, error) {
	id := fmt.Sprintf("%s/%d", r.Notice, r.Attempt)
	raw, err := ledger.MarshalEvent(id, Source, ledger.TypeNoticeDelivery, r.At.UTC(), r)
	if err != nil {
		return nil, fmt.Errorf("delivery record: %w", err)
	}
	return &ledger.Event{Source: Source, ID: id, Type: ledger.TypeNoticeDelivery, Time: r.At.UTC(), Data: r, Raw: raw}, nil
}
