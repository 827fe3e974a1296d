package nats

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	natsio "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sharelog/sharelog/internal/ledger"
)

// Where sharelog publishes its signed checkpoints for others to keep (see
// package checkpoint): every checkpoint, as the C2SP signed note and nothing
// else, goes to SubjectCheckpoint and to key KeyLatestCheckpoint of the
// key-value bucket BucketCheckpoints. An auditor subscribes to the subject,
// or mirrors the bucket's stream (StreamCheckpoints) into a stream of its
// own, where the ledger's administrators cannot rewrite it.
const (
	SubjectCheckpoint   = "sharelog.checkpoint"
	BucketCheckpoints   = "SHARELOG_CHECKPOINTS"
	StreamCheckpoints   = "KV_" + BucketCheckpoints
	KeyLatestCheckpoint = "latest"
	// CheckpointHistory is how many checkpoints the bucket keeps (the
	// most JetStream keeps of one key); a mirror keeps them all.
	CheckpointHistory = jetstream.KeyValueMaxHistory
)

// EnsureCheckpointBucket creates the key-value bucket BucketCheckpoints, or
// updates it to the configuration sharelog needs, at replicas (0: 1). Safe
// to call from every start.
func EnsureCheckpointBucket(ctx context.Context, js jetstream.JetStream, replicas int) (jetstream.KeyValue, error) {
	if replicas == 0 {
		replicas = 1
	}
	have := 0
	if s, err := js.Stream(ctx, StreamCheckpoints); err == nil {
		have = s.CachedInfo().Config.Replicas
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      BucketCheckpoints,
		Description: "sharelog's signed checkpoints, for auditors to keep: key latest, with history",
		History:     CheckpointHistory,
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
	})
	if err != nil {
		return nil, ReplicasError("key-value bucket "+BucketCheckpoints, have, replicas, err)
	}
	return kv, nil
}

// CheckpointPublisher publishes signed checkpoints to SubjectCheckpoint and
// BucketCheckpoints. It implements checkpoint.Publisher.
type CheckpointPublisher struct {
	nc      *natsio.Conn
	kv      jetstream.KeyValue
	checked bool // the bucket's latest was compared with the first checkpoint
}

// NewCheckpointPublisher returns a CheckpointPublisher over nc and the
// bucket kv (EnsureCheckpointBucket).
func NewCheckpointPublisher(nc *natsio.Conn, kv jetstream.KeyValue) *CheckpointPublisher {
	return &CheckpointPublisher{nc: nc, kv: kv}
}

// PublishCheckpoint puts signed under KeyLatestCheckpoint, and once the
// bucket has stored it, publishes it on SubjectCheckpoint (at most once:
// core NATS). The first checkpoint, published again after a restart, is
// skipped when the bucket's latest is already the same. It is not safe for
// concurrent use (the Checkpointer serialises it).
func (p *CheckpointPublisher) PublishCheckpoint(ctx context.Context, size int64, signed []byte) error {
	if !p.checked {
		e, err := p.kv.Get(ctx, KeyLatestCheckpoint)
		switch {
		case err == nil && bytes.Equal(e.Value(), signed):
			p.checked = true
			return nil
		case err != nil && !errors.Is(err, jetstream.ErrKeyNotFound):
			return fmt.Errorf("checkpoint %d: bucket %s: %w", size, BucketCheckpoints, err)
		}
		p.checked = true
	}
	if _, err := p.kv.Put(ctx, KeyLatestCheckpoint, signed); err != nil {
		return fmt.Errorf("checkpoint %d: bucket %s: %w", size, BucketCheckpoints, err)
	}
	if err := p.nc.Publish(SubjectCheckpoint, signed); err != nil {
		return fmt.Errorf("checkpoint %d: subject %s: %w", size, SubjectCheckpoint, err)
	}
	return nil
}

// KeptCheckpoint is one signed checkpoint kept in BucketCheckpoints.
type KeptCheckpoint struct {
	Revision uint64 // the bucket's revision: its stream sequence
	Signed   []byte // the signed note
}

// KeptCheckpoints returns the signed checkpoints kept in BucketCheckpoints,
// oldest first (at most CheckpointHistory). It returns ENOTFOUND when the
// bucket does not exist or holds none.
func KeptCheckpoints(ctx context.Context, js jetstream.JetStream) ([]KeptCheckpoint, error) {
	// Read the bucket's stream message by message, as an auditor may
	// (stream info and gets; no consumer: see permissions.go): the bucket
	// has one key, so its stream holds that key's history and nothing else.
	st, err := js.Stream(ctx, StreamCheckpoints)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, ledger.Errorf(ledger.ENOTFOUND, "no key-value bucket %s on this NATS server", BucketCheckpoints)
	}
	if err != nil {
		return nil, fmt.Errorf("bucket %s: %w", BucketCheckpoints, err)
	}
	state := st.CachedInfo().State
	var out []KeptCheckpoint
	for seq := state.FirstSeq; seq <= state.LastSeq && seq > 0; seq++ {
		msg, err := st.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("bucket %s: revision %d: %w", BucketCheckpoints, seq, err)
		}
		if msg.Subject != "$KV."+BucketCheckpoints+"."+KeyLatestCheckpoint || msg.Header.Get("KV-Operation") != "" {
			continue // a delete or purge marker, or another key
		}
		out = append(out, KeptCheckpoint{Revision: msg.Sequence, Signed: msg.Data})
	}
	if len(out) == 0 {
		return nil, ledger.Errorf(ledger.ENOTFOUND, "no checkpoint kept in bucket %s yet", BucketCheckpoints)
	}
	return out, nil
}

// LatestKeptCheckpoint returns the latest signed checkpoint kept in
// BucketCheckpoints, or ENOTFOUND.
func LatestKeptCheckpoint(ctx context.Context, js jetstream.JetStream) ([]byte, error) {
	kv, err := keptBucket(ctx, js)
	if err != nil {
		return nil, err
	}
	e, err := kv.Get(ctx, KeyLatestCheckpoint)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, ledger.Errorf(ledger.ENOTFOUND, "no checkpoint kept in bucket %s yet", BucketCheckpoints)
	}
	if err != nil {
		return nil, fmt.Errorf("bucket %s: %w", BucketCheckpoints, err)
	}
	return e.Value(), nil
}

func keptBucket(ctx context.Context, js jetstream.JetStream) (jetstream.KeyValue, error) {
	kv, err := js.KeyValue(ctx, BucketCheckpoints)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, ledger.Errorf(ledger.ENOTFOUND, "no key-value bucket %s on this NATS server", BucketCheckpoints)
	}
	if err != nil {
		return nil, fmt.Errorf("bucket %s: %w", BucketCheckpoints, err)
	}
	return kv, nil
}
