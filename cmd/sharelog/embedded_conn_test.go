package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestServeReconnectsToTheEmbeddedServer: sharelog's own connection to its
// embedded NATS server goes over loopback (nats.ConnectEmbedded), so it can
// be dropped, as the server drops a slow consumer. It comes back, says so in
// the log, and the ingest goes on: an event published after the drop is
// recorded.
func TestServeReconnectsToTheEmbeddedServer(t *testing.T) {
	ctx := context.Background()
	m := startMain(t, testConfig(t.TempDir()))
	if got := m.Conn.ConnectedAddr(); !strings.HasPrefix(got, "127.0.0.1:") {
		t.Fatalf("sharelog's connection is to %q, want loopback", got)
	}
	_, js := m.connect(t)
	publish := func(id string) uint64 {
		t.Helper()
		b, err := json.Marshal(recipientEvent(id, map[string]any{"type": "manual"}))
		if err != nil {
			t.Fatal(err)
		}
		ack, err := js.Publish(ctx, "sharelog.in.admin", b)
		if err != nil {
			t.Fatal(err)
		}
		return ack.Sequence
	}
	applied := func(seq uint64) func() error {
		return func() error {
			if got := m.Store.Applied(); got < seq {
				return fmt.Errorf("ledger applied %d, want %d", got, seq)
			}
			return nil
		}
	}
	checkFor(t, 10*time.Second, applied(publish("before")))

	cid, err := m.Conn.GetClientID()
	if err != nil {
		t.Fatal(err)
	}
	if err := m.NATSServer.DisconnectClientByID(cid); err != nil {
		t.Fatal(err)
	}
	checkFor(t, 10*time.Second, func() error {
		if !strings.Contains(m.logs.String(), "nats reconnected") {
			return errors.New(`no "nats reconnected" in the log`)
		}
		return nil
	})
	checkFor(t, 30*time.Second, applied(publish("after")))
}
