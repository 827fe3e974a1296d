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

// TestLogExcerpt: a failed test shows serve's warnings and errors from
// anywhere in its log, and the log's last lines.
func TestLogExcerpt(t *testing.T) {
	log := "level=INFO msg=a\nlevel=WARN msg=b\nlevel=DEBUG msg=c\nlevel=ERROR msg=d\nlevel=INFO msg=e\nlevel=INFO msg=f\n"
	if got, want := logExcerpt(log, 2), "level=WARN msg=b\nlevel=ERROR msg=d\nlevel=INFO msg=e\nlevel=INFO msg=f"; got != want {
		t.Errorf("excerpt:\n%s\nwant:\n%s", got, want)
	}
	if got := logExcerpt("level=INFO msg=a\n", 40); got != "level=INFO msg=a" {
		t.Errorf("excerpt of a short log: %q", got)
	}
}
