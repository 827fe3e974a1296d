package witness

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"testing"

	"github.com/sharelog/sharelog/internal/checkpoint"
	"github.com/sharelog/sharelog/internal/store"
)

// BenchmarkReceive is the cost of checking one other replica's checkpoint
// against a ledger of 20,000 entries in Badger: decode, signature, the
// tree's root at a size below the ledger's (stored hashes read from Badger).
// A replica receives one per other replica and second at most.
func BenchmarkReceive(b *testing.B) {
	ctx := context.Background()
	root := b.TempDir()
	s, err := store.Open(storeConfig(root))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	const n = 20000
	for start := 0; start < n; start += 1000 {
		batch := s.Begin()
		seq := s.Applied()
		for i := range 1000 {
			seq++
			if _, err := batch.Append(seq, recipientEvent(b, fmt.Sprintf("r%d", start+i))); err != nil {
				b.Fatal(err)
			}
		}
		if err := batch.Commit(seq); err != nil {
			b.Fatal(err)
		}
		batch.Discard()
	}
	ps, pkey := signer(b, "sharelog/p")
	size := int64(n - 123)
	r, err := s.RootAt(ctx, size)
	if err != nil {
		b.Fatal(err)
	}
	signed, _ := checkpoint.Sign(checkpoint.Checkpoint{Origin: "sharelog/p", Size: size, Root: r}, ps)
	msg, _ := json.Marshal(Message{Key: pkey, Checkpoint: string(signed)})
	_, own := signer(b, "sharelog/me")
	w, err := New(Config{Replica: "me", Tree: s, Key: own, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		w.receive(ctx, SubjectPrefix+"p", msg)
	}
	b.StopTimer()
	if m := value(w.checks.WithLabelValues("p", "match")); m != float64(b.N) || len(w.Differences()) != 0 {
		b.Fatalf("%v matches of %d, differences %v", m, b.N, w.Differences())
	}
}
