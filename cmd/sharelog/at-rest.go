package main

import (
	"errors"
	"fmt"

	"github.com/sharelog/sharelog/internal/nats"
	"github.com/sharelog/sharelog/internal/store"
)

// Encryption at rest, on by default: the ledger's Badger files with a key
// derived from the master key (store.AtRestKey), and the embedded JetStream
// store with another (nats.AtRestKey). With --nats the cluster's own
// JetStream encryption is its operator's to configure.

// jetStreamKey returns the key of the embedded JetStream store's encryption
// at rest, derived from the master key (made on first start), or "" when
// cfg keeps the store unencrypted.
func jetStreamKey(cfg Config) (string, error) {
	if cfg.UnencryptedJetStream {
		return "", nil
	}
	master, err := store.LoadMasterKey(masterKeyFile(cfg))
	if err != nil {
		return "", err
	}
	return nats.AtRestKey(master), nil
}

// ledgerAtRestError names the flag or file that opens a ledger kept
// otherwise than the flags ask.
func ledgerAtRestError(err error) error {
	switch {
	case errors.Is(err, store.ErrLedgerUnencrypted):
		return fmt.Errorf("%w: encryption at rest is now the default; to keep this ledger unencrypted, start with --unencrypted-ledger (SHARELOG_UNENCRYPTED_LEDGER=true)", err)
	case errors.Is(err, store.ErrLedgerEncrypted):
		return fmt.Errorf("%w: start without --unencrypted-ledger, with the --master-key-file it was created with", err)
	}
	return err
}
