package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"

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
		Replica: m.Config.Replica,
		// The lead wires Replicas to --stream-replicas and Verify to the
		// witness at merge.
		Logger: m.Logger,
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
	return m.Snapshots.Restore(ctx, latest, cfg)
}

// startSnapshots runs the snapshot loop in replica mode with --snapshot-every
// set. Snapshots are taken by the leader only; until the lease is wired
// (the lead sets the leader func at merge to Main.Lease.IsLeader), every
// replica counts as the leader, as one process does.
func (m *Main) startSnapshots() {
	if m.Snapshots == nil || m.Config.SnapshotEvery <= 0 {
		return
	}
	var leader func() bool
	m.goLoop(loopSnapshot, func(ctx context.Context) error {
		return m.Snapshots.Run(ctx, m.Store, m.Config.SnapshotEvery, leader)
	})
}
