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

// Publisher publishes signed checkpoints where others keep them, outside
// the data directory (package nats: the subject sharelog.checkpoint and the
// key-value bucket SHARELOG_CHECKPOINTS), so that whoever can rewrite the
// ledger cannot also rewrite every copy of what it signed.
type Publisher interface {
	// PublishCheckpoint publishes the signed checkpoint of tree size size.
	// The Checkpointer calls it with growing sizes, and again with the same
	// checkpoint after a failure.
	PublishCheckpoint(ctx context.Context, size int64, signed []byte) error
}

// Interval is how often the Checkpointer looks for growth.
const Interval = time.Second

// Checkpointer signs and stores a checkpoint of the tree at most once per
// Interval, when the tree has grown since the last one.
type Checkpointer struct {
	tree   Tree
	signer note.Signer
	log    *slog.Logger

	mu        sync.Mutex // serialises Checkpoint
	last      int64      // size of the latest stored checkpoint; -1 before the first look
	pub       Publisher  // nil: publish nothing
	published int64      // size of the latest checkpoint published

	leader func() bool // nil: always publish (PublishWhile)
}

// PublishTo makes the Checkpointer publish every checkpoint it signs to p,
// and, at its first look, the latest one stored (a restart publishes again
// what an outage kept from being published). Call it before Run.
func (c *Checkpointer) PublishTo(p Publisher) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pub = p
}

// PublishWhile makes the Checkpointer publish only while leader() is true:
// of several replicas, each signs and stores its own checkpoints, and the
// leader alone publishes the official one. A replica that becomes leader
// publishes its latest stored checkpoint at its next look. Call it before
// Run.
func (c *Checkpointer) PublishWhile(leader func() bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.leader = leader
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
// signed checkpoint (nil while the tree is empty). With a Publisher
// (PublishTo), it then publishes the latest stored checkpoint unless it was
// published already; a failure to publish is logged, not returned, and
// tried again at the next call, since the checkpoint is stored either way.
// It is safe to call concurrently with Run.
func (c *Checkpointer) Checkpoint(ctx context.Context) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	signed, err := c.sign(ctx)
	if err != nil || signed == nil || c.pub == nil || c.last <= c.published || (c.leader != nil && !c.leader()) {
		return signed, err
	}
	if err := c.pub.PublishCheckpoint(ctx, c.last, signed); err != nil {
		if ctx.Err() == nil {
			c.log.Error("publish checkpoint failed; trying again", "size", c.last, "err", err)
		}
		return signed, nil
	}
	c.published = c.last
	c.log.Debug("checkpoint published", "size", c.last)
	return signed, nil
}

// sign is Checkpoint without the publishing; c.mu is held.
func (c *Checkpointer) sign(ctx context.Context) ([]byte, error) {
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
