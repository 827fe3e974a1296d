package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/sharelog/sharelog/internal/cluster"
)

// Replicas (issue 15): several `sharelog serve --nats URL --replica NAME`
// processes on one NATS cluster each fold SHARELOG_IN into a ledger of their
// own and answer every query, but only one does the side effects: the holder
// of the lease in the key-value bucket SHARELOG_LEASE (package cluster).
// Those side effects are the notice dispatcher with its reminders
// (startNotify: the loop runs through Lease.WhileLeader, started when this
// replica takes the lease and stopped when it loses it), the forgetting
// job's forgettings and scrubbing of streams (startRetention: a round of a
// replica that does not lead only compacts its own ledger), and publishing
// the official checkpoint to SHARELOG_CHECKPOINTS (startCheckpoints: every
// replica signs its own). Without --replica, Lease is nil: the process is
// on its own and always the leader, as before.
//
// Every replica needs the same site key (DATA/site.key, which keys the
// subject hashes) and master key (--master-key-file) to fold the stream
// into the same ledger.

// loopLease is the lease's background loop, as /readyz and the logs name it.
const loopLease = "lease"

// startCluster checks --replica and, with it, opens the lease and runs it
// in the background. Without --replica it does nothing.
func (m *Main) startCluster(ctx context.Context) error {
	cfg := m.Config
	if cfg.Replica == "" {
		return nil
	}
	if cfg.NATS == "" {
		return errors.New("--replica needs --nats: replicas share an existing NATS server or cluster, not the embedded one")
	}
	if err := cluster.ValidName(cfg.Replica); err != nil {
		return fmt.Errorf("--replica: %w", err)
	}
	lease, err := cluster.Open(ctx, m.JetStream, cluster.Config{Name: cfg.Replica, TTL: cfg.LeaseTTL, Replicas: cfg.streamReplicas()}, m.Logger)
	if err != nil {
		return fmt.Errorf("--replica %s: %w", cfg.Replica, err)
	}
	m.Lease = lease
	m.goLoop(loopLease, lease.Run)
	return nil
}

// observeLease adds the lease's metrics, sharelog_leader and
// sharelog_leader_changes_total, with --replica.
func (m *Main) observeLease() {
	if m.Lease != nil {
		m.Metrics.ObserveLeader(m.Lease.IsLeader, m.Lease.Changes)
	}
}

// role is the line /readyz adds to "ready": this replica's role with
// --replica, nothing without.
func (m *Main) role() string {
	if m.Lease == nil {
		return ""
	}
	return m.Lease.Status()
}
