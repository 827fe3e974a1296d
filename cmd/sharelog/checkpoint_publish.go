package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/sharelog/sharelog/internal/checkpoint"
	"github.com/sharelog/sharelog/internal/nats"
)

// checkpointKeyFile is where the checkpoint signing key is:
// --checkpoint-key-file, or DATA/checkpoint.key.
func checkpointKeyFile(cfg Config) string {
	if cfg.CheckpointKeyFile != "" {
		return cfg.CheckpointKeyFile
	}
	return filepath.Join(cfg.Data, checkpoint.KeyFileName)
}

// startCheckpoints loads (or creates) the checkpoint signing key, starts the
// Checkpointer's loop, and has it publish every checkpoint to the subject
// and key-value bucket auditors keep (package nats); Close signs and
// publishes a last checkpoint.
//
// A key inside the data directory (the default, so that one command starts
// sharelog) is logged as a warning at every start: whoever can rewrite the
// ledger can then re-sign it, and only checkpoints kept elsewhere show it.
// With --checkpoint-key-file elsewhere, a key still in the data directory is
// not replaced by a new one: the start is refused until it is moved, so the
// checkpoints keep the key auditors hold.
func (m *Main) startCheckpoints(ctx context.Context) error {
	keyPath := checkpointKeyFile(m.Config)
	inData := filepath.Join(m.Config.Data, checkpoint.KeyFileName)
	if !samePath(keyPath, inData) {
		_, errOld := os.Stat(inData)
		_, errNew := os.Stat(keyPath)
		switch {
		case errOld == nil && errors.Is(errNew, fs.ErrNotExist):
			return fmt.Errorf("checkpoint key: --checkpoint-key-file %s does not exist, but the data directory holds the key that signed this ledger's checkpoints, %s: move it there (mv %s %s), or delete it to start a new key (auditors then need the new public key)", keyPath, inData, inData, keyPath)
		case errOld == nil:
			m.Logger.Warn("a checkpoint signing key is still in the data directory: delete it, whoever can edit the ledger can re-sign it with that key", "path", inData, "key_in_use", keyPath)
		}
	}
	if within(keyPath, m.Config.Data) {
		m.Logger.Warn("the checkpoint signing key is inside the data directory: whoever can edit the ledger can re-sign it; keep the key apart with --checkpoint-key-file, and have auditors keep the published checkpoints", "path", keyPath)
	}
	pubPath := filepath.Join(m.Config.Data, checkpoint.PubFileName)
	signer, vkey, created, err := checkpoint.LoadOrCreateKey(keyPath, pubPath, checkpoint.DefaultName())
	if err != nil {
		return err
	}
	if created {
		m.Logger.Info("created checkpoint signing key", "path", keyPath, "public", vkey)
	}
	m.Checkpointer = checkpoint.NewCheckpointer(m.Store, signer, m.Logger)
	kv, err := nats.EnsureCheckpointBucket(ctx, m.JetStream, m.Config.streamReplicas())
	if err != nil {
		return err
	}
	m.Checkpointer.PublishTo(nats.NewCheckpointPublisher(m.Conn, kv))
	m.Checkpointer.PublishWhile(m.Lease.IsLeader) // the official checkpoint: the leader's (cluster.go)
	m.goLoop(loopCheckpoint, m.Checkpointer.Run)
	return nil
}

// samePath reports whether a and b name the same file: the same file when
// both exist, else the same absolute path.
func samePath(a, b string) bool {
	fa, errA := os.Stat(a)
	fb, errB := os.Stat(b)
	if errA == nil && errB == nil {
		return os.SameFile(fa, fb)
	}
	return absPath(a) == absPath(b)
}

// within reports whether path is inside dir, symbolic links resolved as far
// as they exist.
func within(path, dir string) bool {
	rel, err := filepath.Rel(absPath(dir), absPath(path))
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}

// absPath is path made absolute, with symbolic links resolved in its
// longest existing prefix.
func absPath(path string) string {
	abs, err := filepath.Abs(path)
	if err != nil {
		return filepath.Clean(path)
	}
	rest := ""
	for dir := abs; ; dir = filepath.Dir(dir) {
		if real, err := filepath.EvalSymlinks(dir); err == nil {
			return filepath.Join(real, rest)
		}
		if filepath.Dir(dir) == dir {
			return abs
		}
		rest = filepath.Join(filepath.Base(dir), rest)
	}
}
