package main

import (
	"context"
	"fmt"
	"strings"

	"golang.org/x/mod/sumdb/note"

	"github.com/sharelog/sharelog/internal/checkpoint"
	"github.com/sharelog/sharelog/internal/store"
)

// What `verify --checkpoint` names when the ledger does not hold what a
// checkpoint kept apart from it (by an auditor, or in NATS) says it held.
const (
	// keptTruncated: the ledger is smaller than the kept checkpoint.
	keptTruncated = "TRUNCATED"
	// keptRewritten: the ledger is as large or larger, but its tree does not
	// extend the kept one: entries the kept checkpoint covers were rolled
	// back (an older copy restored and grown again) or rewritten.
	keptRewritten = "ROLLED BACK / REWRITTEN"
	// keptResigned: the ledger's own checkpoints were signed again: by a key
	// other than the one the caller holds, or by it over another root at
	// the kept size (a rewritten ledger signed with a key its rewriter
	// could read).
	keptResigned = "RE-SIGNED"
)

// keptError is a ledger that fails a kept checkpoint.
type keptError struct {
	name   string // keptTruncated, keptRewritten or keptResigned
	detail string
}

func (e *keptError) Error() string { return e.name + ": " + e.detail }

// kind is the name as JSON gives it.
func (e *keptError) kind() string {
	switch e.name {
	case keptTruncated:
		return "truncated"
	case keptRewritten:
		return "rewritten"
	}
	return "re-signed"
}

// keptCheckpoint is a signed checkpoint kept apart from the ledger, and
// where it was kept.
type keptCheckpoint struct {
	from   string // "FILE", or the NATS bucket
	signed []byte
}

// checkKept checks the ledger in cfg.Dir against the kept checkpoint k,
// whose signature v (the key the caller holds, or with keyInData the data
// directory's) must verify. It compares the ledger's size with the kept
// size, the ledger's own signed checkpoint of that size with the kept one,
// and checks the consistency proof, computed from the ledger's tree, from
// the kept checkpoint to the ledger's tree. It returns a *keptError naming
// what is wrong, a tampered error if the kept checkpoint itself does not
// verify, or nil; store.Verify then checks every entry.
func checkKept(ctx context.Context, cfg store.VerifyConfig, k keptCheckpoint, v note.Verifier, keyInData bool) error {
	kept, err := checkpoint.Open(k.signed, v)
	if err != nil {
		if keyInData {
			return &keptError{keptResigned, fmt.Sprintf("the checkpoint kept in %s is signed by %s, not by the key in the data directory (%s): the data directory's signing key was replaced",
				k.from, strings.Join(checkpoint.Signers(k.signed), ", "), checkpoint.KeyID(v))}
		}
		return tampered(fmt.Errorf("the checkpoint kept in %s does not verify with your key: %w", k.from, err))
	}
	view, err := store.ReadKept(ctx, cfg, kept.Size)
	if err != nil {
		return err
	}
	if view.Size < kept.Size {
		return &keptError{keptTruncated, fmt.Sprintf("the ledger holds %d entries, fewer than the %d of the checkpoint kept in %s: entries %d to %d are gone",
			view.Size, kept.Size, k.from, view.Size+1, kept.Size)}
	}
	if view.Stored != nil {
		own, err := checkpoint.Open(view.Stored, v)
		if err != nil {
			return &keptError{keptResigned, fmt.Sprintf("the ledger's own checkpoint of size %d is signed by %s, not by %s, which signed the checkpoint kept in %s",
				kept.Size, strings.Join(checkpoint.Signers(view.Stored), ", "), checkpoint.KeyID(v), k.from)}
		}
		if own.Root != kept.Root {
			return &keptError{keptResigned, fmt.Sprintf("the ledger's own checkpoint of size %d, signed by %s, has root %s, but the checkpoint kept in %s has root %s: the ledger was rewritten and signed again with the key, so whoever rewrote it could use the key",
				kept.Size, checkpoint.KeyID(v), b64(own.Root[:]), k.from, b64(kept.Root[:]))}
		}
	}
	if view.Proof != nil {
		head := checkpoint.Checkpoint{Origin: kept.Origin, Size: view.Size, Root: view.Root}
		if err := view.Proof.Verify(kept, head); err != nil {
			return &keptError{keptRewritten, fmt.Sprintf("the ledger's tree of size %d (root %s) does not extend the checkpoint kept in %s (size %d, root %s): entries up to %d were rolled back or rewritten",
				view.Size, b64(view.Root[:]), k.from, kept.Size, b64(kept.Root[:]), kept.Size)}
		}
	}
	return nil
}
