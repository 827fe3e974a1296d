package nats

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	"github.com/sharelog/sharelog/internal/store"
)

// BucketKeys is the key-value bucket of the secrets replicas share
// (store.Secrets): subjects' salts and entries' data keys, each wrapped
// under the master key, named after the stream message that first needed
// it (store.SaltName, store.DataKeyName), never after a person.
const BucketKeys = "SHARELOG_KEYS"

// keysHistory: a bucket keeps one value per key, so that the tombstone
// replaces a destroyed secret. JetStream drops the old value by its limits,
// not by a secure delete (a bucket's stream cannot allow deletes of one
// message): its bytes, wrapped under the master key, stay in the stream's
// block files until JetStream compacts them.
const keysHistory = 1

// tombstone is the value that replaces a destroyed secret. A wrapped
// secret is 60 bytes (nonce, 32-byte secret, tag), so none is a tombstone.
var tombstone = []byte("destroyed")

// Keys is the store of secrets replicas share, on the key-value bucket
// BucketKeys. It implements store.Secrets.
type Keys struct {
	kv  jetstream.KeyValue
	log *slog.Logger
}

// EnsureKeys creates the key-value bucket BucketKeys, or updates it to the
// configuration sharelog needs, and returns its Keys. replicas is the
// bucket's JetStream replication (0 means 1). Safe to call from every
// replica's start.
func EnsureKeys(ctx context.Context, js jetstream.JetStream, replicas int, logger *slog.Logger) (*Keys, error) {
	if replicas == 0 {
		replicas = 1
	}
	if logger == nil {
		logger = slog.Default()
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      BucketKeys,
		Description: "sharelog replicas' shared salts and data keys, wrapped under the master key; forgetting overwrites them with a tombstone",
		History:     keysHistory,
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("key-value bucket %s: %w", BucketKeys, err)
	}
	return &Keys{kv: kv, log: logger.With("system", "keys")}, nil
}

// keysParallel bounds the requests one Secrets call has in flight.
const keysParallel = 64

// Secrets implements store.Secrets: for each name, in parallel, it stores
// fresh(name) if the bucket has no value for it (an update expecting no
// revision: the first writer wins), and otherwise reads the value that
// won. The cost of a batch is one or two round trips, whatever its size.
// A secret is never made twice: a name deleted outside sharelog fails
// until it is destroyed (Destroy) or restored.
func (k *Keys) Secrets(ctx context.Context, names []string, fresh func(string) []byte) ([][]byte, error) {
	out := make([][]byte, len(names))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(keysParallel)
	for i, name := range names {
		v := fresh(name)
		g.Go(func() error {
			_, err := k.kv.Update(gctx, name, v, 0)
			if err == nil {
				out[i] = v
				return nil
			}
			if !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
				return fmt.Errorf("%s %s: %w", BucketKeys, name, err)
			}
			e, err := k.kv.Get(gctx, name)
			switch {
			case errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted):
				// The update found a revision, the get no value: a server
				// of a replicated bucket that has not caught up yet, or a
				// delete outside sharelog. Either way the batch fails and
				// is retried, never folded with another value.
				return fmt.Errorf("%s %s exists but could not be read (a server not caught up, or deleted outside sharelog)", BucketKeys, name)
			case err != nil:
				return fmt.Errorf("%s %s: %w", BucketKeys, name, err)
			case bytes.Equal(e.Value(), tombstone):
				return fmt.Errorf("%s %s: %w", BucketKeys, name, store.ErrSecretDestroyed)
			}
			out[i] = e.Value()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return out, nil
}

// Destroy replaces the named secrets with a tombstone. A name never stored
// gets a tombstone too, so that no replica can make it later.
func (k *Keys) Destroy(ctx context.Context, names []string) error {
	for _, name := range names {
		if err := k.destroy(ctx, name); err != nil {
			return fmt.Errorf("%s %s: destroy: %w", BucketKeys, name, err)
		}
	}
	return nil
}

// destroyRetry is the pause before Destroy looks at a name again.
const destroyRetry = 50 * time.Millisecond

func (k *Keys) destroy(ctx context.Context, name string) error {
	for {
		e, err := k.kv.Get(ctx, name)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound): // never stored, or deleted
			_, err = k.kv.Create(ctx, name, tombstone)
			if errors.Is(err, jetstream.ErrKeyExists) {
				// Stored meanwhile, or a server not caught up: look again.
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(destroyRetry):
				}
				continue
			}
			return err
		case err != nil:
			return err
		case bytes.Equal(e.Value(), tombstone):
			return nil
		}
		_, err = k.kv.Update(ctx, name, tombstone, e.Revision())
		if !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return err
		}
		// Changed meanwhile: look again.
	}
}

// destroyed reports whether every named secret is a tombstone.
func (k *Keys) destroyed(ctx context.Context, names []string) (bool, error) {
	for _, name := range names {
		e, err := k.kv.Get(ctx, name)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		if !bytes.Equal(e.Value(), tombstone) {
			return false, nil
		}
	}
	return true, nil
}

// Shred carries out the shred records the ledger's forgettings left
// (store.PendingShreds): the leader destroys their secrets; every replica
// clears a record once its secrets are destroyed. It returns the number of
// records cleared.
func (k *Keys) Shred(ctx context.Context, st *store.Store, leader bool) (int, error) {
	shreds, err := st.PendingShreds(ctx)
	if err != nil {
		return 0, err
	}
	done := 0
	for _, sh := range shreds {
		if leader {
			if err := k.Destroy(ctx, sh.Names); err != nil {
				return done, err
			}
			k.log.Info("forgotten subject's shared secrets destroyed", "forgetting", sh.Seq, "secrets", len(sh.Names))
		} else if ok, err := k.destroyed(ctx, sh.Names); err != nil || !ok {
			return done, err
		}
		if err := st.ShredDone(sh.Seq); err != nil {
			return done, err
		}
		done++
	}
	return done, nil
}

// RunShredder runs Shred every interval until ctx ends, and then returns
// nil; leader says whether this replica is the leader (nil: always). A
// failed round is logged and retried at the next.
func (k *Keys) RunShredder(ctx context.Context, st *store.Store, leader func() bool, every time.Duration) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if _, err := k.Shred(ctx, st, leader == nil || leader()); err != nil && ctx.Err() == nil {
			k.log.Error("destroying forgotten subjects' shared secrets failed; retrying", "err", err)
		}
	}
}
