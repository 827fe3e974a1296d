package checkpoint

import (
	"fmt"

	"golang.org/x/mod/sumdb/tlog"
)

// LeafHash returns the Merkle tree leaf hash of an entry's stored value:
// SHA-256(0x00 || value).
func LeafHash(value []byte) tlog.Hash { return tlog.RecordHash(value) }

// InclusionProof proves that entry Seq, whose leaf hash is LeafHash, is leaf
// Seq-1 of the tree of size TreeSize (RFC 9162 section 2.1.3). Hashes are
// base64 in JSON.
type InclusionProof struct {
	Seq       int64       `json:"seq"`
	LeafIndex int64       `json:"leafIndex"`
	TreeSize  int64       `json:"treeSize"`
	LeafHash  tlog.Hash   `json:"leafHash"`
	Proof     []tlog.Hash `json:"proof"`
}

// Verify checks the proof against the checkpoint c, which must be of the
// proof's tree size.
func (p *InclusionProof) Verify(c Checkpoint) error {
	if c.Size != p.TreeSize {
		return fmt.Errorf("inclusion proof is for tree size %d, checkpoint is of size %d", p.TreeSize, c.Size)
	}
	if p.Seq < 1 || p.LeafIndex != p.Seq-1 || p.Seq > p.TreeSize {
		return fmt.Errorf("inclusion proof: entry %d (leaf %d) is not in a tree of size %d", p.Seq, p.LeafIndex, p.TreeSize)
	}
	if err := tlog.CheckRecord(p.Proof, p.TreeSize, c.Root, p.LeafIndex, p.LeafHash); err != nil {
		return fmt.Errorf("entry %d is not proven in the tree of size %d: %w", p.Seq, p.TreeSize, err)
	}
	return nil
}

// ConsistencyProof proves that the tree of size From is a prefix of the tree
// of size To (RFC 9162 section 2.1.4).
type ConsistencyProof struct {
	From  int64       `json:"from"`
	To    int64       `json:"to"`
	Proof []tlog.Hash `json:"proof"`
}

// Verify checks the proof between the checkpoints older and newer, of sizes
// From and To.
func (p *ConsistencyProof) Verify(older, newer Checkpoint) error {
	if older.Size != p.From || newer.Size != p.To {
		return fmt.Errorf("consistency proof is for sizes %d and %d, checkpoints are of sizes %d and %d", p.From, p.To, older.Size, newer.Size)
	}
	if older.Origin != newer.Origin {
		return fmt.Errorf("checkpoints of different logs: %q and %q", older.Origin, newer.Origin)
	}
	if p.From < 1 || p.From > p.To {
		return fmt.Errorf("consistency proof: sizes %d and %d are not 1 <= from <= to", p.From, p.To)
	}
	if err := tlog.CheckTree(p.Proof, p.To, newer.Root, p.From, older.Root); err != nil {
		return fmt.Errorf("tree of size %d is not consistent with tree of size %d: %w", p.To, p.From, err)
	}
	return nil
}
