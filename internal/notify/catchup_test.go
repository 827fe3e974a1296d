package notify

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	natsio "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sharelog/sharelog/internal/ledger"
	"github.com/sharelog/sharelog/internal/nats"
)

// TestCatchUpStreamGone: with SHARELOG_IN missing the start-up catch-up
// cannot succeed; Run returns its error, named for the loop, and delivers
// nothing.
func TestCatchUpStreamGone(t *testing.T) {
	_, js := startNATS(t) // SHARELOG_NOTICES only: no SHARELOG_IN
	f := newFakeLedger(t)
	f.addRecipient(natsRecipient("acro"))
	notice := f.open("acro", "nats", time.Now().Add(time.Hour))
	cfg := fastConfig(nil)
	cfg.CatchUp = func(ctx context.Context) error {
		_, err := nats.LastSeq(ctx, js)
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := New(f, f, js, cfg, nil).Run(ctx)
	if err == nil || ctx.Err() != nil {
		t.Fatalf("Run = %v (ctx %v), want the catch-up's error", err, ctx.Err())
	}
	if !errors.Is(err, jetstream.ErrStreamNotFound) || !strings.HasPrefix(err.Error(), "notify: ") {
		t.Errorf("Run = %q, want notify: ... stream not found", err)
	}
	if recs := f.records(notice); len(recs) != 0 {
		t.Errorf("%d delivery records after a failed catch-up, want none", len(recs))
	}
}

// TestCatchUpRetried: a catch-up that times out is retried with backoff;
// no notice goes out before it succeeds, and they all do after.
func TestCatchUpRetried(t *testing.T) {
	_, js := startNATS(t)
	f := newFakeLedger(t)
	f.addRecipient(natsRecipient("acro"))
	notice := f.open("acro", "nats", time.Now().Add(time.Hour))
	var calls atomic.Int32
	cfg := fastConfig(nil)
	cfg.CatchUp = func(ctx context.Context) error {
		n := calls.Add(1)
		if recs := f.records(notice); len(recs) != 0 {
			t.Errorf("catch-up %d: %d delivery records already, want none before catching up", n, len(recs))
		}
		if n <= 2 {
			return fmt.Errorf("stream %s: %w", nats.StreamIn, natsio.ErrTimeout)
		}
		return nil
	}
	runDispatcher(t, New(f, f, js, cfg, nil))
	checkFor(t, 10*time.Second, func() error {
		if s := f.state(notice); s != ledger.StateDelivered {
			return fmt.Errorf("state %s, want delivered", s)
		}
		return nil
	})
	if n := calls.Load(); n != 3 {
		t.Errorf("catch-up called %d times, want 3 (two timeouts, then success)", n)
	}
}
