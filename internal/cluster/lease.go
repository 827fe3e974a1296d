// Package cluster lets several sharelog replicas on one NATS cluster agree
// on the one that does the side effects: delivering notices and reminders,
// the forgetting job, publishing the official checkpoint. Every replica
// folds SHARELOG_IN and answers queries; only the holder of the lease acts.
//
// # The lease
//
// The lease is the key KeyLeader of the key-value bucket BucketLease, whose
// TTL (JetStream's MaxAge, History 1) is the lease's: a key not written for
// TTL expires. A replica holds the lease from the moment its kv.Create of
// the key succeeds; it renews it every TTL/3 by kv.Update with the revision
// of its last write, so that a renewal after someone else took the key
// fails. The others retry Create, at once when they see the key deleted or
// expired (a watch of the key; the bucket places a marker when a key
// expires), and otherwise every TTL/3.
//
// Safety does not depend on the others: a holder acts only until TTL minus
// Margin after it sent its last successful write, by its own monotonic
// clock. The server expires the key no earlier than TTL after it stored that
// write, which it did after it was sent, so the holder has stopped acting
// (IsLeader false, the loops run by WhileLeader cancelled) before another
// replica can create the key. Margin covers the loops' winding down and the
// difference between the clocks' rates. A replica cut off from NATS thus
// stops by itself, and a clean shutdown deletes the key (Run, when its
// context ends), so that another takes over at once.
//
// Side effects may repeat across a hand-over (a notice sent by the old
// holder just before it stopped, whose delivery record the new one has not
// applied yet), never be lost: whatever must happen stays due in the ledger
// until a record of it is applied, and carries a stable id (notice ids)
// so that a recipient recognises a repeat.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// BucketLease is the key-value bucket of the lease, and KeyLeader its key,
// whose value is the holder's replica name.
const (
	BucketLease = "SHARELOG_LEASE"
	KeyLeader   = "leader"
)

// DefaultTTL is the lease's TTL when Config.TTL is zero: the longest a
// crashed holder's side effects stop for.
const DefaultTTL = 10 * time.Second

// MinTTL is the shortest TTL: a key-value bucket's expiry markers live at
// least a second, and the server checks expiries at most every 250ms.
const MinTTL = time.Second

// nameRE is what a replica name may be: one NATS subject token, readable
// in logs and metrics.
var nameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// ValidName returns an error unless name may name a replica: 1 to 64
// letters, digits, '-' or '_', so that it is one NATS subject token (other
// packages put it in subjects, sharelog.witness.<replica>).
func ValidName(name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("replica name %q: use 1 to 64 letters, digits, '-' or '_' (it becomes a NATS subject token)", name)
	}
	return nil
}

// Config configures a Lease.
type Config struct {
	// Name is this replica's name (ValidName), the lease's value while it
	// holds it.
	Name string
	// TTL is how long the lease lasts without a renewal (default
	// DefaultTTL, at least MinTTL). Every replica must use the same: it is
	// the bucket's.
	TTL time.Duration
	// Margin is how long before the lease could expire the holder stops
	// acting when it could not renew it (default TTL/5, less than TTL/2).
	Margin time.Duration
	// Replicas is the bucket's JetStream replication (default 1).
	Replicas int
}

func (c *Config) defaults() error {
	if err := ValidName(c.Name); err != nil {
		return err
	}
	if c.TTL == 0 {
		c.TTL = DefaultTTL
	}
	if c.TTL < MinTTL {
		return fmt.Errorf("lease TTL %s: at least %s", c.TTL, MinTTL)
	}
	if c.Margin == 0 {
		c.Margin = c.TTL / 5
	}
	if c.Margin < 0 || c.Margin >= c.TTL/2 {
		return fmt.Errorf("lease margin %s: between 0 and half the TTL (%s)", c.Margin, c.TTL)
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	return nil
}

// Lease is this replica's part in the leader lease. Create it with Open,
// then Run it. A nil *Lease is a process on its own, always the leader.
type Lease struct {
	kv  jetstream.KeyValue
	cfg Config
	log *slog.Logger

	// epoch is the origin of until: durations since it are read from the
	// monotonic clock.
	epoch time.Time
	// until is how long after epoch this replica may act as leader; 0
	// when it does not hold the lease.
	until atomic.Int64
	// changes counts the changes of role.
	changes atomic.Uint64
	// active counts the loops WhileLeader is running.
	active atomic.Int32

	mu      sync.Mutex
	leading bool          // the role last announced
	holder  string        // the holder last seen in the bucket; "" for none
	changed chan struct{} // closed at the next change of role
}

// Open creates the bucket BucketLease, or updates it to cfg, and returns a
// Lease that does not hold it yet.
func Open(ctx context.Context, js jetstream.JetStream, cfg Config, logger *slog.Logger) (*Lease, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.Default()
	}
	kvc := jetstream.KeyValueConfig{
		Bucket:         BucketLease,
		Description:    "sharelog's leader lease: key " + KeyLeader + " holds the name of the replica that does the side effects",
		History:        1,
		TTL:            cfg.TTL,
		LimitMarkerTTL: cfg.TTL, // a marker when the key expires, which the others watch
		Storage:        jetstream.FileStorage,
		Replicas:       cfg.Replicas,
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, kvc)
	if errors.Is(err, jetstream.ErrLimitMarkerTTLNotSupported) {
		// A server before 2.11: no markers; the others find the key gone
		// when they next try, within TTL/3.
		kvc.LimitMarkerTTL = 0
		kv, err = js.CreateOrUpdateKeyValue(ctx, kvc)
	}
	if err != nil {
		return nil, fmt.Errorf("key-value bucket %s: %w", BucketLease, err)
	}
	return &Lease{kv: kv, cfg: cfg, log: logger.With("system", "lease", "replica", cfg.Name),
		epoch: time.Now(), changed: make(chan struct{})}, nil
}

// Name returns this replica's name ("" for a nil Lease).
func (l *Lease) Name() string {
	if l == nil {
		return ""
	}
	return l.cfg.Name
}

// IsLeader reports whether this replica may do the side effects now: it
// holds the lease and the lease cannot have expired yet by its clock. A nil
// Lease is always the leader.
func (l *Lease) IsLeader() bool {
	if l == nil {
		return true
	}
	u := l.until.Load()
	return u > 0 && time.Since(l.epoch) < time.Duration(u)
}

// Changed returns a channel closed at the next change of role; read
// IsLeader after taking it. A nil Lease never changes: its channel is nil.
func (l *Lease) Changed() <-chan struct{} {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.changed
}

// Changes returns how many times the role changed.
func (l *Lease) Changes() uint64 {
	if l == nil {
		return 0
	}
	return l.changes.Load()
}

// Leader returns the name of the replica holding the lease as this replica
// last saw it, "" when none does.
func (l *Lease) Leader() string {
	if l == nil {
		return ""
	}
	if l.IsLeader() {
		return l.cfg.Name
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.holder == l.cfg.Name {
		return "" // its own lease, which it no longer acts on
	}
	return l.holder
}

// Status describes the role in one line, for /readyz and the logs:
// "leader (replica a)", "follower (replica b; leader a)", or
// "follower (replica b; no leader)".
func (l *Lease) Status() string {
	switch {
	case l == nil:
		return "leader (single process)"
	case l.IsLeader():
		return "leader (replica " + l.cfg.Name + ")"
	}
	if h := l.Leader(); h != "" {
		return "follower (replica " + l.cfg.Name + "; leader " + h + ")"
	}
	return "follower (replica " + l.cfg.Name + "; no leader)"
}

// Run takes, renews and retakes the lease until ctx ends; then it stops
// acting as leader, waits (up to Margin) for the loops WhileLeader runs to
// stop, deletes the key if it still holds it, so that another replica
// takes over at once, and returns nil. It returns an error only when it
// cannot watch the key.
func (l *Lease) Run(ctx context.Context) error {
	w, err := l.kv.Watch(ctx, KeyLeader)
	if err != nil {
		return fmt.Errorf("lease: watch %s: %w", BucketLease, err)
	}
	kick := make(chan struct{}, 1)
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		l.follow(w, kick)
	}()
	defer func() {
		w.Stop()
		<-watched
	}()
	var rev uint64 // the revision of this replica's last write of the key; 0 when it holds none
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			l.resign(rev)
			return nil
		case <-t.C:
		case <-kick:
		}
		t.Reset(l.attempt(ctx, &rev))
	}
}

// follow reads the watch of the key: it notes the holder, and kicks Run
// when the key is deleted or expires (to take it at once), or another
// replica writes it while this one leads (to step down at once).
func (l *Lease) follow(w jetstream.KeyWatcher, kick chan<- struct{}) {
	for e := range w.Updates() {
		if e == nil {
			continue // the initial value is read
		}
		holder := ""
		if e.Operation() == jetstream.KeyValuePut {
			holder = string(e.Value())
		}
		l.mu.Lock()
		l.holder = holder
		l.mu.Unlock()
		if holder == "" || (holder != l.cfg.Name && l.IsLeader()) {
			select {
			case kick <- struct{}{}:
			default:
			}
		}
	}
}

// now is the time since epoch, by the monotonic clock.
func (l *Lease) now() time.Duration { return time.Since(l.epoch) }

// attempt renews the lease (*rev != 0) or tries to take it, and returns
// when to try next. A holder that has not renewed in time steps down.
func (l *Lease) attempt(ctx context.Context, rev *uint64) time.Duration {
	renew, retry := l.cfg.TTL/3, l.cfg.TTL/20
	until := time.Duration(l.until.Load())
	if until > 0 && l.now() >= until {
		l.stepDown("the lease was not renewed in time")
	}
	// No write may outlast the lease it renews: when it is cut short, the
	// holder steps down as the lease ends.
	deadline := l.now() + renew
	if l.IsLeader() {
		deadline = until
	}
	actx, cancel := context.WithDeadline(ctx, l.epoch.Add(deadline))
	defer cancel()
	sent := l.now()
	var (
		r   uint64
		err error
	)
	if *rev != 0 {
		r, err = l.kv.Update(actx, KeyLeader, []byte(l.cfg.Name), *rev)
	} else {
		r, err = l.kv.Create(actx, KeyLeader, []byte(l.cfg.Name))
	}
	switch {
	case err == nil:
		*rev = r
		l.stepUp(sent + l.cfg.TTL - l.cfg.Margin)
		return renew
	case ctx.Err() != nil:
		return renew // Run is ending
	case errors.Is(err, jetstream.ErrKeyExists), errors.Is(err, jetstream.ErrKeyRevisionMismatch):
		// Another replica holds the key, or this one's expired.
		*rev = 0
		l.stepDown("another replica holds the lease, or it expired")
		return renew
	}
	if l.IsLeader() {
		l.log.Warn("lease renewal failed; retrying", "err", err)
		return min(retry, time.Duration(l.until.Load())-l.now())
	}
	if until > 0 {
		l.stepDown("the lease could not be renewed in time")
	}
	l.log.Debug("lease not taken", "err", err)
	return renew
}

// stepUp makes this replica the leader until until (since epoch).
func (l *Lease) stepUp(until time.Duration) {
	l.until.Store(int64(until))
	l.announce(true, "")
}

// stepDown makes this replica a follower, saying why if it was the leader.
func (l *Lease) stepDown(why string) {
	l.until.Store(0)
	l.announce(false, why)
}

// announce records the role and, when it changed, tells Changed's
// listeners and logs it.
func (l *Lease) announce(leading bool, why string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.leading == leading {
		return
	}
	l.leading = leading
	if leading {
		l.holder = l.cfg.Name
	}
	close(l.changed)
	l.changed = make(chan struct{})
	l.changes.Add(1)
	if leading {
		l.log.Info("leader: this replica does the side effects")
	} else {
		l.log.Warn("no longer leader: side effects stopped", "why", why)
	}
}

// resign steps down, waits up to Margin for the loops WhileLeader runs to
// stop, and deletes the key if this replica's write rev is still its last.
func (l *Lease) resign(rev uint64) {
	l.stepDown("shutting down")
	for stop := time.Now().Add(l.cfg.Margin); l.active.Load() > 0 && time.Now().Before(stop); {
		time.Sleep(5 * time.Millisecond)
	}
	if rev == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := l.kv.Delete(ctx, KeyLeader, jetstream.LastRevision(rev)); err != nil {
		l.log.Warn("lease not handed over; another replica takes it when it expires", "err", err)
		return
	}
	l.log.Info("lease handed over")
}

// WhileLeader returns run made to run only while this replica is the
// leader: it starts run when this replica takes the lease and cancels its
// context, and waits for it to return, when it loses it. The result follows
// the background loops' contract: it returns nil once ctx is done, and an
// error if run fails (or returns while leader and ctx is not done). For a
// nil Lease it is run itself.
func (l *Lease) WhileLeader(run func(context.Context) error) func(context.Context) error {
	if l == nil {
		return run
	}
	return func(ctx context.Context) error {
		for {
			changed := l.Changed()
			if !l.IsLeader() {
				select {
				case <-ctx.Done():
					return nil
				case <-changed:
					continue
				}
			}
			if err := l.runLeading(ctx, changed, run); err != nil || ctx.Err() != nil {
				return err
			}
		}
	}
}

// runLeading runs run until changed is closed or ctx ends.
func (l *Lease) runLeading(ctx context.Context, changed <-chan struct{}, run func(context.Context) error) error {
	l.active.Add(1)
	defer l.active.Add(-1)
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- run(rctx) }()
	select {
	case err := <-done:
		if err == nil && ctx.Err() == nil {
			err = errors.New("stopped while leader")
		}
		return err
	case <-changed:
	case <-ctx.Done():
	}
	cancel()
	return <-done
}
