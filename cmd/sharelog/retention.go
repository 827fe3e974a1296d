package main

import (
	"path/filepath"

	"github.com/sharelog/sharelog/internal/policy"
	"github.com/sharelog/sharelog/internal/retention"
)

// startRetention creates the forgetting job and, with --forget-every above
// zero, runs it in the background. It runs after the ingest loop has
// started, since a round waits for its forgettings to be applied.
func (m *Main) startRetention(pol *policy.Policy) {
	m.Retention = retention.New(m.Store, m.Publisher, m.JetStream, retention.Config{
		Policy: pol.Retention.ForgetPolicy(),
		Every:  m.Config.ForgetEvery,
		// Forgettings and scrubs: the leader's (cluster.go).
		Leader: m.Lease.IsLeader,
	}, m.Logger)
	if m.Config.ForgetEvery > 0 {
		m.goLoop(loopRetention, m.Retention.Run)
	}
}

// masterKeyFile is where the master key is: --master-key-file, or
// master.key in the data directory.
func masterKeyFile(cfg Config) string {
	if cfg.MasterKeyFile != "" {
		return cfg.MasterKeyFile
	}
	return filepath.Join(cfg.Data, "master.key")
}
