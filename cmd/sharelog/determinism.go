package main

import (
	"context"
	"time"

	"github.com/sharelog/sharelog/internal/nats"
	"github.com/sharelog/sharelog/internal/store"
)

// loopKeys destroys forgotten subjects' shared secrets (replicas only).
const loopKeys = "keys"

// shredEvery is how often a replica looks for forgettings whose shared
// secrets are still to destroy.
const shredEvery = 5 * time.Second

// openKeys returns the secrets replicas share, so that every replica
// records identical entries (store.Secrets, nats.Keys on SHARELOG_KEYS),
// when sharelog serve runs as a replica (--replica), and nil otherwise: a
// sharelog on its own makes its secrets with crypto/rand as before. Every
// replica must have the same master key file.
func (m *Main) openKeys(ctx context.Context) (store.Secrets, error) {
	if m.Config.Replica == "" {
		return nil, nil
	}
	k, err := nats.EnsureKeys(ctx, m.JetStream, m.Config.streamReplicas(), m.Logger)
	if err != nil {
		return nil, err
	}
	m.Keys = k
	return k, nil
}

// startShredder runs the loop that destroys, on the leader, the shared
// secrets of forgotten subjects, and clears their records on every replica
// once they are gone (nats.Keys.RunShredder).
func (m *Main) startShredder() {
	if m.Keys == nil {
		return
	}
	k, st, leader := m.Keys, m.Store, m.Lease.IsLeader
	m.goLoop(loopKeys, func(ctx context.Context) error { return k.RunShredder(ctx, st, leader, shredEvery) })
}
