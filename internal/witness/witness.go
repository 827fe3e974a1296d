package witness

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/sharelog/sharelog/internal/checkpoint"
	"github.com/sharelog/sharelog/internal/cluster"
)

// Where replicas publish their checkpoints for each other (see the package
// doc): replica r publishes on SubjectPrefix+r, and the stream Stream keeps
// the last Kept messages of each replica.
const (
	SubjectPrefix = "sharelog.witness."
	Stream        = "SHARELOG_WITNESS"
	Kept          = 16
)

// Interval is how often a Witness publishes its replica's latest checkpoint
// when it has grown, and checks again the others' it could not check yet.
const Interval = time.Second

// Tree is this replica's ledger as the Witness sees it. Package store's
// Store implements it.
type Tree interface {
	// Count returns the number of entries, the tree's size.
	Count() uint64
	// RootAt returns the tree's root hash at size, 0 <= size <= Count().
	RootAt(ctx context.Context, size int64) (tlog.Hash, error)
	// LatestCheckpoint returns the latest stored signed checkpoint, or nil.
	LatestCheckpoint(ctx context.Context) ([]byte, error)
}

// Config configures a Witness.
type Config struct {
	// Replica is this replica's name (cluster.ValidName).
	Replica string
	// Tree is this replica's ledger.
	Tree Tree
	// Key is the verifier key of this replica's checkpoints, published
	// with them.
	Key string
	// Keys, when not nil, are the only keys accepted, by replica name (a
	// keys file: LoadKeys). When nil, each replica's key is pinned on
	// first sight.
	Keys map[string]note.Verifier
	// Registerer receives the metrics; nil: not registered.
	Registerer prometheus.Registerer
	// Logger receives the logs; nil: slog.Default().
	Logger *slog.Logger
}

// Message is what a replica publishes on SubjectPrefix+<its name>, as JSON.
type Message struct {
	// Key is the replica's verifier key ("<name>+<hash>+<key>").
	Key string `json:"key"`
	// Checkpoint is its latest signed checkpoint, a note of package
	// checkpoint.
	Checkpoint string `json:"checkpoint"`
}

// Difference is one way another replica's checkpoints disagree with this
// replica's tree, or with themselves.
type Difference struct {
	Replica string
	// Size is the other replica's checkpoint size.
	Size int64
	// Theirs is the root of its checkpoint; Ours, this replica's root at
	// Size, or with TwoRoots the other root it signed for Size earlier.
	Theirs, Ours tlog.Hash
	// TwoRoots: the other replica signed two different roots for Size.
	TwoRoots bool
}

// String names the replica, the size and both roots in hex.
func (d Difference) String() string {
	if d.TwoRoots {
		return fmt.Sprintf("replica %s signed two roots for size %d: %s, then %s", d.Replica, d.Size, hexHash(d.Ours), hexHash(d.Theirs))
	}
	return fmt.Sprintf("replica %s at size %d has root %s, this replica's tree at that size has %s", d.Replica, d.Size, hexHash(d.Theirs), hexHash(d.Ours))
}

func hexHash(h tlog.Hash) string { return hex.EncodeToString(h[:]) }

// Witness publishes this replica's checkpoints and checks the others'. Its
// methods are safe for concurrent use.
type Witness struct {
	cfg      Config
	own      note.Verifier // this replica's key
	log      *slog.Logger
	js       jetstream.JetStream
	mismatch *prometheus.GaugeVec
	checks   *prometheus.CounterVec

	// Owned by Run.
	cc        jetstream.ConsumeContext
	published int64 // size of the latest checkpoint published; -1 while the latest is not signed by own
	failing   bool  // the last publish failed (logged once)

	mu      sync.Mutex
	peers   map[string]*peer
	changed chan struct{} // closed and replaced when a check is made
}

// peer is what this replica knows of another.
type peer struct {
	key     note.Verifier
	last    *checkpoint.Checkpoint  // the latest accepted
	pending []checkpoint.Checkpoint // above this tree's size: the oldest and the latest
	checked bool                    // a checkpoint was checked against this tree
	diff    *Difference             // the first difference, latched
	refused string                  // why its latest refused message was refused (latched)
}

// New returns a Witness for cfg over the JetStream js (the stream must
// exist: EnsureStream).
func New(cfg Config, js jetstream.JetStream) (*Witness, error) {
	if err := cluster.ValidName(cfg.Replica); err != nil {
		return nil, err
	}
	own, err := note.NewVerifier(cfg.Key)
	if err != nil {
		return nil, fmt.Errorf("witness: this replica's checkpoint key: %w", err)
	}
	if v, ok := cfg.Keys[cfg.Replica]; ok && checkpoint.KeyID(v) != checkpoint.KeyID(own) {
		return nil, fmt.Errorf("witness: the keys file gives replica %s the key %s, but its checkpoints are signed by %s", cfg.Replica, checkpoint.KeyID(v), checkpoint.KeyID(own))
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	w := &Witness{
		cfg: cfg,
		own: own,
		log: cfg.Logger.With("system", "witness", "replica", cfg.Replica),
		js:  js,
		mismatch: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sharelog_witness_mismatch",
			Help: "1 when another replica's signed checkpoints disagree with this replica's tree (latched until restart), by the other replica's name.",
		}, []string{"replica"}),
		checks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sharelog_witness_checks_total",
			Help: "Other replicas' checkpoints checked against this replica's tree, by replica and result (match, mismatch, refused).",
		}, []string{"replica", "result"}),
		peers:   map[string]*peer{},
		changed: make(chan struct{}),
	}
	if cfg.Registerer != nil {
		if err := errors.Join(cfg.Registerer.Register(w.mismatch), cfg.Registerer.Register(w.checks)); err != nil {
			return nil, fmt.Errorf("witness: metrics: %w", err)
		}
	}
	return w, nil
}

// EnsureStream creates the stream Stream, or updates it to the
// configuration sharelog needs, with replicas copies (0: one). Safe to call
// from every start.
func EnsureStream(ctx context.Context, js jetstream.JetStream, replicas int) error {
	if replicas == 0 {
		replicas = 1
	}
	_, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:              Stream,
		Description:       "sharelog replicas' signed checkpoints, for each other to check: the last few of each replica",
		Subjects:          []string{SubjectPrefix + ">"},
		MaxMsgsPerSubject: Kept,
		Discard:           jetstream.DiscardOld,
		Storage:           jetstream.FileStorage,
		Replicas:          replicas,
	})
	if err != nil {
		return fmt.Errorf("stream %s: %w", Stream, err)
	}
	return nil
}

// Run publishes this replica's checkpoints and checks the others' until ctx
// ends, and then returns nil. Failures (NATS away) are logged and tried
// again every Interval; Run has no fatal error.
func (w *Witness) Run(ctx context.Context) error {
	t := time.NewTicker(Interval)
	defer t.Stop()
	defer func() {
		if w.cc != nil {
			w.cc.Stop()
		}
	}()
	for {
		if w.cc == nil {
			w.consume(ctx)
		}
		w.publish(ctx)
		w.recheck(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// consume starts reading the others' checkpoints, from the oldest kept.
func (w *Witness) consume(ctx context.Context) {
	cons, err := w.js.OrderedConsumer(ctx, Stream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{SubjectPrefix + ">"}})
	if err == nil {
		w.cc, err = cons.Consume(func(m jetstream.Msg) { w.receive(ctx, m.Subject(), m.Data()) })
	}
	if err != nil && ctx.Err() == nil {
		w.log.Warn("cannot read the other replicas' checkpoints yet; trying again", "stream", Stream, "err", err)
	}
}

// publish publishes this replica's latest stored checkpoint if it is larger
// than the last one published.
func (w *Witness) publish(ctx context.Context) {
	signed, err := w.cfg.Tree.LatestCheckpoint(ctx)
	if err != nil || signed == nil {
		return
	}
	if cp, err := checkpoint.ParseUnverified(signed); err != nil || cp.Size <= w.published {
		return
	}
	cp, err := checkpoint.Open(signed, w.own)
	if err != nil {
		// Signed by another key: a ledger copied from another replica, or
		// a key replaced. The next checkpoint this replica signs is
		// published.
		if w.published >= 0 {
			w.log.Warn("this replica's latest checkpoint is not signed by its key; publishing none until it signs the next", "err", err)
			w.published = -1
		}
		return
	}
	data, err := json.Marshal(Message{Key: w.cfg.Key, Checkpoint: string(signed)})
	if err != nil {
		return
	}
	if _, err := w.js.Publish(ctx, SubjectPrefix+w.cfg.Replica, data); err != nil {
		if !w.failing && ctx.Err() == nil {
			w.log.Warn("cannot publish this replica's checkpoint for the others; trying again", "size", cp.Size, "err", err)
		}
		w.failing = true
		return
	}
	w.failing = false
	w.published = cp.Size
}

// receive takes one message of the stream.
func (w *Witness) receive(ctx context.Context, subject string, data []byte) {
	name := strings.TrimPrefix(subject, SubjectPrefix)
	if name == w.cfg.Replica {
		return
	}
	if cluster.ValidName(name) != nil {
		w.log.Error("witness: a checkpoint on a subject that names no replica", "subject", subject)
		return
	}
	var m Message
	if err := json.Unmarshal(data, &m); err != nil {
		w.refuse(name, fmt.Errorf("not a witness message: %w", err))
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	p := w.peer(name)
	v, pin := p.key, false
	if v == nil {
		if w.cfg.Keys != nil {
			w.refuseLocked(name, p, errors.New("the witness keys file does not list this replica"))
			return
		}
		var err error
		if v, err = note.NewVerifier(m.Key); err != nil {
			w.refuseLocked(name, p, fmt.Errorf("its key: %w", err))
			return
		}
		pin = true
	}
	cp, err := checkpoint.Open([]byte(m.Checkpoint), v)
	if err != nil {
		if !pin {
			err = fmt.Errorf("signed by %s, not by this replica's key %s: %w", strings.Join(checkpoint.Signers([]byte(m.Checkpoint)), ", "), checkpoint.KeyID(v), err)
		}
		w.refuseLocked(name, p, err)
		return
	}
	if pin {
		p.key = v
		w.log.Info("witness: pinned another replica's checkpoint key on first sight; to require it, put this line in a --witness-keys file", "other", name, "line", name+" "+m.Key)
	}
	last := p.last
	if last == nil || cp.Size >= last.Size {
		p.last = &cp
	}
	w.check(ctx, name, p, cp)
	// Two roots for one size: named even while this tree is too small to
	// say which (a difference with this tree is named first).
	if p.diff == nil && last != nil && last.Size == cp.Size && last.Root != cp.Root {
		w.differ(name, p, Difference{Replica: name, Size: cp.Size, Theirs: cp.Root, Ours: last.Root, TwoRoots: true})
	}
}

// peer returns what is known of replica name; w.mu is held.
func (w *Witness) peer(name string) *peer {
	p := w.peers[name]
	if p == nil {
		p = &peer{key: w.cfg.Keys[name]}
		w.peers[name] = p
	}
	return p
}

// check checks the checkpoint cp of replica name against this tree, or
// keeps it for later if the tree is smaller; w.mu is held.
func (w *Witness) check(ctx context.Context, name string, p *peer, cp checkpoint.Checkpoint) {
	if cp.Size > int64(w.cfg.Tree.Count()) {
		w.keep(p, cp)
		return
	}
	ours, err := w.cfg.Tree.RootAt(ctx, cp.Size)
	if err != nil {
		w.keep(p, cp) // the tree's count ran ahead of its commit, or it is closing
		return
	}
	p.checked = true
	if ours != cp.Root {
		w.differ(name, p, Difference{Replica: name, Size: cp.Size, Theirs: cp.Root, Ours: ours})
	} else {
		w.checks.WithLabelValues(name, "match").Inc()
	}
	close(w.changed)
	w.changed = make(chan struct{})
}

// keep keeps cp to check when this tree has caught up: the oldest kept and
// the latest, so that a replica always a little ahead is still checked.
func (w *Witness) keep(p *peer, cp checkpoint.Checkpoint) {
	if n := len(p.pending); n > 0 && p.pending[n-1].Size >= cp.Size {
		return
	}
	if len(p.pending) == 2 {
		p.pending[1] = cp
		return
	}
	p.pending = append(p.pending, cp)
}

// differ raises the alarm for d, unless one was raised for the replica
// already; w.mu is held.
func (w *Witness) differ(name string, p *peer, d Difference) {
	w.checks.WithLabelValues(name, "mismatch").Inc()
	if p.diff != nil {
		return
	}
	p.diff = &d
	w.mismatch.WithLabelValues(name).Set(1)
	w.log.Error("witness: another replica's ledger differs from this one", "other", name, "size", d.Size,
		"their_root", hexHash(d.Theirs), "our_root", hexHash(d.Ours), "two_roots", d.TwoRoots, "detail", d.String())
}

// refuse refuses a message of replica name.
func (w *Witness) refuse(name string, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.refuseLocked(name, w.peer(name), err)
}

func (w *Witness) refuseLocked(name string, p *peer, err error) {
	p.refused = err.Error()
	w.checks.WithLabelValues(name, "refused").Inc()
	w.log.Error("witness: refused a checkpoint published as another replica", "other", name, "err", err)
}

// recheck checks the kept checkpoints this tree has caught up with.
func (w *Witness) recheck(ctx context.Context) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := int64(w.cfg.Tree.Count())
	for name, p := range w.peers {
		kept := p.pending
		p.pending = nil
		for _, cp := range kept {
			if cp.Size <= n {
				w.check(ctx, name, p, cp)
			} else {
				w.keep(p, cp)
			}
		}
	}
}

// Ready returns an error when this replica's tree is in no majority of the
// replicas checked, itself included (see the package doc), naming those that
// differ.
func (w *Witness) Ready() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	agree, differ := 1, []string{}
	for name, p := range w.peers {
		switch {
		case p.diff != nil:
			differ = append(differ, name)
		case p.checked:
			agree++
		}
	}
	if len(differ) == 0 || 2*agree > agree+len(differ) {
		return nil
	}
	slices.Sort(differ)
	return fmt.Errorf("witness: this replica's ledger is in no majority: %d of %d replicas checked, itself included, agree with it; it differs from %s", agree, agree+len(differ), strings.Join(differ, ", "))
}

// Warnings describes every difference found and every refused checkpoint,
// sorted, for /readyz's detail.
func (w *Witness) Warnings() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for name, p := range w.peers {
		if p.diff != nil {
			out = append(out, "witness: "+p.diff.String())
		}
		if p.refused != "" {
			out = append(out, fmt.Sprintf("witness: a checkpoint published as replica %s was refused: %s", name, p.refused))
		}
	}
	slices.Sort(out)
	return out
}

// Differences returns the differences found, by replica name.
func (w *Witness) Differences() []Difference {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []Difference
	for _, p := range w.peers {
		if p.diff != nil {
			out = append(out, *p.diff)
		}
	}
	slices.SortFunc(out, func(a, b Difference) int { return strings.Compare(a.Replica, b.Replica) })
	return out
}

// Verify checks this replica's tree against the other replicas' latest
// checkpoints: it waits until at least one other replica's checkpoint has
// been checked against it (checking again those that were ahead of it),
// then returns nil, or an error naming every difference found. It returns
// an error wrapping ctx's when ctx ends before any was checked. A replica
// rebuilt from a snapshot calls it before serving.
func (w *Witness) Verify(ctx context.Context) error {
	for {
		w.recheck(ctx)
		w.mu.Lock()
		checked, changed := 0, w.changed
		var diffs []string
		for _, p := range w.peers {
			if p.diff != nil {
				diffs = append(diffs, p.diff.String())
			}
			if p.checked {
				checked++
			}
		}
		w.mu.Unlock()
		if len(diffs) > 0 {
			slices.Sort(diffs)
			return fmt.Errorf("witness: this replica's ledger differs from the others': %s", strings.Join(diffs, "; "))
		}
		if checked > 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("witness: no other replica's checkpoint checked against this ledger yet: %w", ctx.Err())
		case <-changed:
		case <-time.After(Interval / 4):
		}
	}
}
