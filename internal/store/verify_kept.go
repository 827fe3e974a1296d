package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/dgraph-io/badger/v4"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/sharelog/sharelog/internal/checkpoint"
)

// KeptView is what a ledger holds against a checkpoint an auditor kept apart
// from it: the ledger's tree as it stands, the consistency proof from the
// kept checkpoint's size to it, and the ledger's own signed checkpoint of
// that size. Nothing in it is checked: the caller checks it against the kept
// checkpoint with the key it holds.
type KeptView struct {
	// Size and Root are the ledger's tree size (its entry count) and root,
	// from its stored tree hashes.
	Size int64
	Root tlog.Hash
	// Proof proves the tree of the kept size a prefix of the tree of Size;
	// nil when the ledger is smaller than the kept size or the kept size is 0.
	Proof *checkpoint.ConsistencyProof
	// Stored is the ledger's own signed checkpoint of the kept size, nil if
	// it holds none.
	Stored []byte
}

// ReadKept reads, from the ledger in cfg.Dir opened read-only as Verify
// opens it, what the ledger holds against a kept checkpoint of tree size
// size (see KeptView). It uses cfg.Dir, cfg.EncryptionKey and cfg.Logger. It
// reads the stored tree hashes, not the entries: Verify recomputes those.
// An error reading the tree (a stored hash missing, say) is returned as it
// is; Verify names what is wrong.
func ReadKept(ctx context.Context, cfg VerifyConfig, size int64) (*KeptView, error) {
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	db, _, cleanup, err := openReadOnly(cfg.Dir, cfg.EncryptionKey, logger)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	var kv KeptView
	err = db.View(func(txn *badger.Txn) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		hashes, n, err := readTree(txn)
		if err != nil {
			return fmt.Errorf("verify: %w", err)
		}
		kv.Size = n
		if kv.Root, err = tlog.TreeHash(kv.Size, hashes); err != nil {
			return fmt.Errorf("verify: tree of size %d: %w", kv.Size, err)
		}
		if size >= 1 && size <= kv.Size {
			proof, err := tlog.ProveTree(kv.Size, size, hashes)
			if err != nil {
				return fmt.Errorf("verify: consistency proof from %d to %d: %w", size, kv.Size, err)
			}
			kv.Proof = &checkpoint.ConsistencyProof{From: size, To: kv.Size, Proof: proof}
		}
		item, err := txn.Get(checkpointKey(size))
		switch {
		case errors.Is(err, badger.ErrKeyNotFound):
			return nil
		case err != nil:
			return err
		}
		kv.Stored, err = item.ValueCopy(nil)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &kv, nil
}
