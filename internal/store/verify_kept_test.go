package store

import (
	"context"
	"testing"

	"github.com/sharelog/sharelog/internal/checkpoint"
)

func TestReadKept(t *testing.T) {
	l := newSignedLedger(t) // checkpoints of sizes 5, 10 and signedSize
	ctx := context.Background()
	cfg := VerifyConfig{Dir: l.cfg.Dir, Logger: l.cfg.Logger}
	five, err := checkpoint.Open(l.cps[0], l.verifier)
	if err != nil || five.Size != 5 {
		t.Fatalf("first checkpoint = %+v, %v", five, err)
	}
	kv, err := ReadKept(ctx, cfg, 5)
	if err != nil {
		t.Fatal(err)
	}
	if kv.Size != signedSize || kv.Root != l.root || string(kv.Stored) != string(l.cps[0]) || kv.Proof == nil {
		t.Fatalf("ReadKept(5) = size %d, root match %v, stored %q, proof %v", kv.Size, kv.Root == l.root, kv.Stored, kv.Proof)
	}
	head := checkpoint.Checkpoint{Origin: five.Origin, Size: kv.Size, Root: kv.Root}
	if err := kv.Proof.Verify(five, head); err != nil {
		t.Errorf("consistency proof from the kept 5 to the ledger: %v", err)
	}
	other := five
	other.Root[0] ^= 1
	if err := kv.Proof.Verify(other, head); err == nil {
		t.Error("the proof verified a kept checkpoint with another root")
	}
	// A size the ledger did not sign: no stored checkpoint, still a proof.
	if kv, err := ReadKept(ctx, cfg, 7); err != nil || kv.Stored != nil || kv.Proof == nil || kv.Proof.From != 7 {
		t.Errorf("ReadKept(7) = %+v, %v; want a proof and no stored checkpoint", kv, err)
	}
	// A kept size larger than the ledger: no proof.
	if kv, err := ReadKept(ctx, cfg, signedSize+2); err != nil || kv.Size != signedSize || kv.Proof != nil || kv.Stored != nil {
		t.Errorf("ReadKept(%d) = %+v, %v; want size %d, no proof", signedSize+2, kv, err, signedSize)
	}
}
