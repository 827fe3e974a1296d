package checkpoint

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Tree is the ledger as the Checkpointer sees it. Package store's Store
// implements it.
type Tree interface {
	// Count returns the number of entries, the tree's size; it is cheap.
	Count() uint64
	// TreeHead returns a committed tree size and its root hash, read
	// consistently.
	TreeHead(ctx context.Context) (size int64, root tlog.Hash, err error)
	// LatestCheckpoint returns the latest stored signed checkpoint, or nil
	// if there is none.
	LatestCheckpoint(ctx context.Context) ([]byte, error)
	// SaveCheckpoint durably stores a signed checkpoint of the given size.
	SaveCheckpoint(size int64, signed []byte) error
}

// Interval is how often the Checkpointer looks for growth.
const Interval = time.Second

// Checkpointer signs and stores a checkpoint of the tree at most once per
// Interval, when the tree has grown since the last one.
type Checkpointer struct {
	tree   Tree
	signer note.Signer
	log    *slog.Logger

	mu   sync.Mutex // serialises Checkpoint
	last int64      // size of the latest stored checkpoint; -1 before the first look
}

// NewCheckpointer returns a Checkpointer signing tree's checkpoints with
// signer.
func NewCheckpointer(tree Tree, signer note.Signer, logger *slog.Logger) *Checkpointer {
	if logger == nil {
		logger = slog.Default()
	}
	return &Checkpointer{tree: tree, signer: signer, log: logger.With("system", "checkpoint"), last: -1}
}

// Run signs checkpoints until ctx ends, and then returns nil. A failed
// checkpoint is logged and tried again at the next tick; Run has no fatal
// error. It signs no last checkpoint when ctx ends: its owner calls
// Checkpoint once the ledger's writer has stopped, so that the last
// checkpoint covers every entry.
func (c *Checkpointer) Run(ctx context.Context) error {
	t := time.NewTicker(Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if _, err := c.Checkpoint(ctx); err != nil && ctx.Err() == nil {
				c.log.Error("checkpoint failed", "err", err)
			}
		}
	}
}

// Checkpoint signs and stores a checkpoint of the current tree if it is
// larger than the latest stored checkpoint, and returns the latest stored
// signed checkpoint (nil while the tree is empty). It is safe to call
// concurrently with Run.
func (c *Checkpointer) Checkpoint(ctx context.Context) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.last < 0 {
		latest, err := c.tree.LatestCheckpoint(ctx)
		if err != nil {
			return nil, err
		}
		c.last = 0
		if latest != nil {
			cp, err := ParseUnverified(latest)
			if err != nil {
				return nil, err
			}
			c.last = cp.Size
		}
	}
	if int64(c.tree.Count()) <= c.last {
		return c.tree.LatestCheckpoint(ctx)
	}
	size, root, err := c.tree.TreeHead(ctx)
	if err != nil {
		return nil, err
	}
	if size <= c.last {
		return c.tree.LatestCheckpoint(ctx)
	}
	signed, err := Sign(Checkpoint{Origin: c.signer.Name(), Size: size, Root: root}, c.signer)
	if err != nil {
		return nil, err
	}
	if err := c.tree.SaveCheckpoint(size, signed); err != nil {
		return nil, err
	}
	c.last = size
	c.log.Debug("checkpoint signed", "size", size)
	return signed, nil
}
