package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/sharelog/sharelog/internal/nats"
	"github.com/sharelog/sharelog/internal/snapshot"
	"github.com/sharelog/sharelog/internal/store"
)

// openLedger opens the ledger. Outside replica mode it is store.Open, as
// ever. In replica mode (--replica) it opens the snapshots' bucket, and
// rebuilds the ledger from the newest snapshot when the ledger is empty and
// there is one, or when SHARELOG_IN no longer holds the messages after the
// ledger's position (its first sequence is past the next one the ledger
// needs): the ingest loop then folds the stream after the snapshot's
// sequence. The restored ledger is verified before it is opened
// (snapshot.Snapshots.Restore), so sharelog reports ready only with a
// ledger that passed. A ledger that cannot be rebuilt (the stream has a gap
// and no snapshot covers it) is an error naming both positions.
func (m *Main) openLedger(ctx context.Context, cfg store.Config) (*store.Store, error) {
	if m.Config.Replica == "" {
		return store.Open(cfg)
	}
	master, err := store.LoadMasterKey(masterKeyFile(m.Config))
	if err != nil {
		return nil, err
	}
	cfg.MasterKey = master
	m.Snapshots, err = snapshot.New(ctx, m.JetStream, master, snapshot.Config{
		Replica:  m.Config.Replica,
		Replicas: m.Config.streamReplicas(),
		Logger:   m.Logger,
	})
	if err != nil {
		return nil, err
	}
	first, err := nats.FirstSeq(ctx, m.JetStream)
	if err != nil {
		return nil, err
	}
	_, err = store.LedgerEncrypted(cfg.Dir)
	empty := errors.Is(err, fs.ErrNotExist)
	var applied uint64
	if !empty {
		st, err := store.Open(cfg)
		if err != nil {
			return nil, err
		}
		if applied = st.Applied(); first <= applied+1 {
			return st, nil // the stream holds everything after the ledger
		}
		if err := st.Close(); err != nil {
			return nil, err
		}
	}
	latest, ok, err := m.Snapshots.Latest(ctx)
	if err != nil {
		return nil, err
	}
	switch {
	case ok && latest.Position.Applied+1 >= first && latest.Position.Applied >= applied:
	case empty && first <= 1:
		return store.Open(cfg) // nothing to restore: the stream holds everything
	case !ok:
		return nil, fmt.Errorf("ledger at stream sequence %d, %s starts at %d, and %s holds no snapshot to rebuild from", applied, nats.StreamIn, first, snapshot.Bucket)
	default:
		return nil, fmt.Errorf("ledger at stream sequence %d, %s starts at %d, and the newest snapshot in %s ends at %d: nothing covers the messages in between", applied, nats.StreamIn, first, snapshot.Bucket, latest.Position.Applied)
	}
	m.Logger.Info("rebuilding the ledger from a snapshot", "snapshot", latest.Name, "ledger_applied", applied, "stream_first", first)
	m.restored = true
	return m.Snapshots.Restore(ctx, latest, cfg)
}

// restoredWitnessWait bounds how long a replica rebuilt from a snapshot
// waits for another replica's checkpoint to check itself against.
const restoredWitnessWait = 30 * time.Second

// verifyRestored checks a ledger just rebuilt from a snapshot against the
// other replicas' checkpoints (witness.Verify) before the replica serves,
// once its ingest runs (a checkpoint ahead of it is checked when it has
// caught up). A difference refuses the start. When no other replica's
// checkpoint could be checked within restoredWitnessWait (say, every other
// replica is down), it says so and serves on the snapshot's own check: its
// tree gives the root recorded in the snapshot.
func (m *Main) verifyRestored(ctx context.Context) error {
	if !m.restored || m.Witness == nil {
		return nil
	}
	vctx, cancel := context.WithTimeout(ctx, restoredWitnessWait)
	defer cancel()
	err := m.Witness.Verify(vctx)
	switch {
	case err == nil:
		m.Logger.Info("the ledger rebuilt from a snapshot agrees with the other replicas' checkpoints")
		return nil
	case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
		m.Logger.Warn("no other replica's checkpoint to check the rebuilt ledger against; serving on the snapshot's own root", "waited", restoredWitnessWait)
		return nil
	}
	return fmt.Errorf("rebuilt from a snapshot: %w", err)
}

// startSnapshots runs the snapshot loop in replica mode with --snapshot-every
// set. Snapshots are taken by the leader only (the lease, cluster.go).
func (m *Main) startSnapshots() {
	if m.Snapshots == nil || m.Config.SnapshotEvery <= 0 {
		return
	}
	leader := m.Lease.IsLeader
	m.goLoop(loopSnapshot, func(ctx context.Context) error {
		return m.Snapshots.Run(ctx, m.Store, m.Config.SnapshotEvery, leader)
	})
}
