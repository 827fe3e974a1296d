package main

import (
	"context"
	"errors"

	"golang.org/x/mod/sumdb/note"

	"github.com/sharelog/sharelog/internal/checkpoint"
	"github.com/sharelog/sharelog/internal/witness"
)

// loopWitness is the name of the witness's background loop.
const loopWitness = "witness"

// startWitness, in replica mode (--replica), has this replica publish its
// signed checkpoints on sharelog.witness.<replica> and check the other
// replicas' against its ledger (package witness): a difference is logged,
// counted in sharelog_witness_mismatch, listed by /readyz, and makes /readyz
// answer 503 on a replica whose ledger is in no majority. Without --replica
// it does nothing. It runs after startCheckpoints (the key exists) and once
// the metrics exist; the witness's loop runs on every replica, leader or not.
func (m *Main) startWitness(ctx context.Context) error {
	cfg := m.Config
	if cfg.Replica == "" {
		if cfg.WitnessKeys != "" {
			return errors.New("--witness-keys needs --replica: replicas witness each other only in replica mode")
		}
		return nil
	}
	var keys map[string]note.Verifier
	if cfg.WitnessKeys != "" {
		var err error
		if keys, err = witness.LoadKeys(cfg.WitnessKeys); err != nil {
			return err
		}
	}
	vkey, err := checkpoint.PublicKey(checkpointKeyFile(cfg))
	if err != nil {
		return err
	}
	// One copy: --stream-replicas (issue 15) sets how many at merge.
	if err := witness.EnsureStream(ctx, m.JetStream, cfg.streamReplicas()); err != nil {
		return err
	}
	m.Witness, err = witness.New(witness.Config{
		Replica:    cfg.Replica,
		Tree:       m.Store,
		Key:        vkey,
		Keys:       keys,
		Registerer: m.Metrics.Registry,
		Logger:     m.Logger,
	}, m.JetStream)
	if err != nil {
		return err
	}
	m.goLoop(loopWitness, m.Witness.Run)
	return nil
}
