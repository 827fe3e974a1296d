package store

import (
	"context"
	"crypto/sha256"
	"fmt"
	"testing"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/sharelog/sharelog/internal/ledger"
)

// TestRootAt: the root at each earlier size is the root TreeHead gave when
// the tree had that size, and sizes outside the tree are refused.
func TestRootAt(t *testing.T) {
	s := openTest(t, testConfig(t))
	ctx := context.Background()
	roots := map[int64]tlog.Hash{}
	if _, roots[0], _ = s.TreeHead(ctx); roots[0] != tlog.Hash(sha256.Sum256(nil)) {
		t.Fatalf("empty tree root = %v, want SHA-256 of nothing (RFC 9162)", roots[0])
	}
	for i := range 7 {
		applyBatch(t, s, recipientEvent(t, fmt.Sprintf("r%d", i), "R"))
		size, root, err := s.TreeHead(ctx)
		if err != nil {
			t.Fatal(err)
		}
		roots[size] = root
	}
	for size, want := range roots {
		if got, err := s.RootAt(ctx, size); err != nil || got != want {
			t.Errorf("RootAt(%d) = %v, %v; want %v", size, got, err, want)
		}
	}
	if roots[3] == roots[4] {
		t.Fatal("roots of different sizes equal")
	}
	for _, bad := range []int64{-1, 8} {
		if _, err := s.RootAt(ctx, bad); ledger.ErrorCode(err) != ledger.EINVALID {
			t.Errorf("RootAt(%d) = %v, want EINVALID", bad, err)
		}
	}
}
