package main

import (
	"context"
	"errors"

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
	if err := notify.EnsureStream(ctx, m.JetStream, notify.StreamConfig{}); err != nil {
		return err
	}
	remind := cfg.RemindEvery
	if remind == 0 {
		remind = -1 // --remind-every 0: never
	}
	m.Notifier = notify.New(m.Store, m.Publisher, m.JetStream, notify.Config{
		RemindEvery: remind,
		Secrets:     secrets,
	}, m.Logger)
	m.Ingester.NotifyRequests(m.Notifier.Wake)
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		// Start from a ledger that has applied every delivery record already
		// in SHARELOG_IN, so that a restart does not resend what was recorded.
		if err := m.Ingester.CatchUp(runCtx); err != nil {
			done <- err
			return
		}
		done <- m.Notifier.Run(runCtx)
	}()
	m.stopNotify = func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			m.Logger.Error("notice dispatcher", "err", err)
		}
	}
	return nil
}
