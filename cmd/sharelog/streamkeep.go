package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sharelog/sharelog/internal/checkpoint"
	"github.com/sharelog/sharelog/internal/nats"
	"github.com/sharelog/sharelog/internal/store"
)

// The stream keeper looks every keep/4, within these bounds.
const (
	streamKeepTickMin = 100 * time.Millisecond
	streamKeepTickMax = time.Minute
)

// startStreamKeep runs the stream keeper (--stream-keep; 0: never): it purges
// the SHARELOG_IN messages the ledger has made safe. Outside replica mode
// that is every message the ledger has applied and a stored signed checkpoint
// covers, once it has been applied for --stream-keep. In replica mode the
// leader alone purges (the lease, cluster.go), and only up to the newest
// complete snapshot's position too, since a replica behind the stream's
// first message rebuilds from that snapshot (snapshot.go); while there is no
// snapshot (--snapshot-every 0, say) it purges nothing.
func (m *Main) startStreamKeep() {
	keep := m.Config.StreamKeep
	if keep <= 0 {
		return
	}
	k := &streamKeeper{js: m.JetStream, st: m.Store, keep: keep, log: m.Logger.With("system", "stream-keep")}
	if m.Snapshots != nil {
		snaps := m.Snapshots
		k.bound = func(ctx context.Context) (uint64, error) {
			latest, ok, err := snaps.Latest(ctx)
			if err != nil || !ok {
				return 0, err
			}
			return latest.Position.Applied, nil
		}
	}
	m.goLoop(loopStreamKeep, m.Lease.WhileLeader(k.Run)) // on the leader alone (cluster.go)
}

// purgeStep is the most messages the stream keeper purges in one request,
// about one of the stream's 8 MB blocks. A purge holds the stream's lock,
// and with it every publish, until it is done; purging a backlog (half a
// minute of a burst, or a new leader's first purge, which can be far more)
// in steps bounds each wait. BenchmarkPurgeCold, 250,000 messages whose
// blocks are not loaded: a publish waited up to 43-48 ms in one request and
// 5-11 ms in steps, for 82-97 ms in all instead of 48-50.
const purgeStep = 10000

// streamKeeper purges from SHARELOG_IN what the ledger has made safe: a
// message the ledger has durably applied, whose entries a stored signed
// checkpoint covers, once it has been applied for keep. Crash recovery needs
// only the messages after the ledger's applied sequence, which it never
// purges.
type streamKeeper struct {
	js   jetstream.JetStream
	st   *store.Store
	keep time.Duration
	// bound, when set, is a further limit on the sequence purged (replica
	// mode: the newest snapshot's); 0 purges nothing.
	bound func(ctx context.Context) (uint64, error)
	// step is the most messages purged in one request (0: purgeStep).
	step uint64
	log  *slog.Logger
}

// Run purges every keep/4 (within streamKeepTickMin and streamKeepTickMax)
// until ctx ends, and then returns nil. A failed round is logged and tried
// again at the next tick: it has no fatal error, since the ingest loop
// answers for a stream that is gone. Each Run starts with no marks, so a new
// leader first purges keep after it took the lease.
func (k *streamKeeper) Run(ctx context.Context) error {
	t := time.NewTicker(min(max(k.keep/4, streamKeepTickMin), streamKeepTickMax))
	defer t.Stop()
	var marks keepMarks
	failing := false
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		err := k.round(ctx, &marks, time.Now())
		switch {
		case err != nil && ctx.Err() == nil && !failing:
			k.log.Warn("purging the stream failed; trying again", "stream", nats.StreamIn, "err", err)
			failing = true
		case err == nil && failing:
			k.log.Info("purging the stream works again", "stream", nats.StreamIn)
			failing = false
		}
	}
}

// round notes the ledger's position and purges what is due.
func (k *streamKeeper) round(ctx context.Context, marks *keepMarks, now time.Time) error {
	// Applied is read before Count: a commit stores its count before its
	// applied sequence, so the count read is at least the one of the
	// applied sequence read, and a checkpoint of that count covers it.
	applied := k.st.Applied()
	marks.note(now, applied, k.st.Count())
	if !marks.ripe(now, k.keep) {
		return nil
	}
	signed, err := k.st.LatestCheckpoint(ctx)
	if err != nil || signed == nil {
		return err
	}
	cp, err := checkpoint.ParseUnverified(signed)
	if err != nil {
		return fmt.Errorf("latest checkpoint: %w", err)
	}
	bound := applied
	if k.bound != nil {
		if bound, err = k.bound(ctx); err != nil {
			return err
		}
	}
	upTo := marks.due(now, k.keep, cp.Size, bound)
	if upTo == 0 {
		return nil
	}
	return k.purge(ctx, upTo)
}

// purge purges SHARELOG_IN up to and including sequence upTo, unless it
// starts after it already.
func (k *streamKeeper) purge(ctx context.Context, upTo uint64) error {
	s, err := k.js.Stream(ctx, nats.StreamIn)
	if err != nil {
		return err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return err
	}
	if info.State.FirstSeq > upTo {
		return nil
	}
	if info.State.LastSeq < upTo {
		// The ledger is past the stream's end: the stream was replaced.
		// The ingest loop stops on it; purging could only lose more.
		return errors.New("the stream ends before the ledger's position; not purging")
	}
	start := time.Now()
	step := k.step
	if step == 0 {
		step = purgeStep
	}
	var longest time.Duration
	requests := 0
	for first := info.State.FirstSeq; first <= upTo; first += step {
		began := time.Now()
		if err := s.Purge(ctx, jetstream.WithPurgeSequence(min(first+step, upTo+1))); err != nil {
			return err
		}
		longest = max(longest, time.Since(began))
		requests++
	}
	k.log.Debug("stream purged", "stream", nats.StreamIn, "up_to", upTo, "messages", upTo+1-info.State.FirstSeq,
		"requests", requests, "took", time.Since(start), "longest_request", longest)
	return nil
}

// keepMarks are the ledger's positions as the stream keeper saw them, oldest
// first: at time at, the ledger had applied every message up to applied,
// and held count entries.
type keepMarks []keepMark

type keepMark struct {
	at      time.Time
	applied uint64
	count   int64
}

// note adds the ledger's position seen at now, unless it has not moved.
func (ms *keepMarks) note(now time.Time, applied, count uint64) {
	if n := len(*ms); n > 0 && (*ms)[n-1].applied >= applied {
		return
	}
	*ms = append(*ms, keepMark{at: now, applied: applied, count: int64(count)})
}

// ripe reports whether the oldest mark was seen keep ago or longer.
func (ms keepMarks) ripe(now time.Time, keep time.Duration) bool {
	return len(ms) > 0 && now.Sub(ms[0].at) >= keep
}

// due returns the last stream sequence that may be purged at now, or 0 for
// none: the greatest applied sequence of a mark seen keep ago or longer
// whose entries the checkpoint of size checkpointed covers, and at most
// bound. It drops the marks that sequence makes useless: those at or below
// it, and the older of two ripe, covered marks, of which the newer alone
// matters (so the marks stay few while bound holds the purge back).
func (ms *keepMarks) due(now time.Time, keep time.Duration, checkpointed int64, bound uint64) uint64 {
	marks := *ms
	ripe := 0 // marks[:ripe] are ripe and covered
	for ripe < len(marks) && now.Sub(marks[ripe].at) >= keep && marks[ripe].count <= checkpointed {
		ripe++
	}
	if ripe == 0 {
		return 0
	}
	upTo := min(marks[ripe-1].applied, bound)
	drop := ripe - 1 // the newest ripe mark stays unless it is purged whole
	if marks[ripe-1].applied <= upTo {
		drop = ripe
	}
	*ms = marks[drop:]
	return upTo
}
