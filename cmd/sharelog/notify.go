package main

import (
	"context"

	"github.com/sharelog/sharelog/internal/nats"
	"github.com/sharelog/sharelog/internal/notify"
)

// startNotify ensures SHARELOG_NOTICES and starts the notice Dispatcher. It
// runs after the ingest loop has started, since the Dispatcher waits for its
// delivery records to be applied.
func (m *Main) startNotify(ctx context.Context) error {
	cfg := m.Config
	var secrets *notify.Secrets
	if cfg.WebhookSecrets != "" {
		var err error
		if secrets, err = notify.LoadSecrets(cfg.WebhookSecrets); err != nil {
			return err
		}
		m.Logger.Info("webhook secrets loaded", "file", cfg.WebhookSecrets, "recipients", len(secrets.Recipients()))
	}
	if err := notify.EnsureStream(ctx, m.JetStream, notify.StreamConfig{Replicas: cfg.streamReplicas()}); err != nil {
		return err
	}
	if m.Access != nil {
		if err := nats.EnsureRecipientConsumers(ctx, m.JetStream, m.Access); err != nil {
			return err
		}
	}
	remind := cfg.RemindEvery
	if remind == 0 {
		remind = -1 // --remind-every 0: never
	}
	m.Notifier = notify.New(m.Store, m.Publisher, m.JetStream, notify.Config{
		RemindEvery: remind,
		Secrets:     secrets,
		// Start from a ledger that has applied every delivery record already
		// in SHARELOG_IN, so that a restart does not resend what was recorded.
		CatchUp: m.Ingester.CatchUp,
	}, m.Logger)
	m.Ingester.NotifyRequests(m.Notifier.Wake)
	m.goLoop(loopNotify, m.Lease.WhileLeader(m.Notifier.Run)) // on the leader alone (cluster.go)
	return nil
}
