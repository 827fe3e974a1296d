package main

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	natsserver "github.com/nats-io/nats-server/v2/test"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sharelog/sharelog/internal/ledger"
	"github.com/sharelog/sharelog/internal/nats"
)

// TestRestartKeepsEverything closes and reopens serve on the same data
// directory: the ledger, the recipients and exactly-once all survive.
func TestRestartKeepsEverything(t *testing.T) {
	cfg := testConfig(t.TempDir())
	m := startMain(t, cfg)
	registerRecipient(t, m, "acro")
	subj := []ledger.Subject{{Scheme: "dbs-ref", ID: secretID}}
	at := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	ev := disclosure("casework", "r-1", subj, "acro", []string{"user.criminal_history"}, at)
	resp, body := postEvents(t, m.HTTP.URL(), "application/cloudevents+json", nil, mustJSON(t, ev))
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	if err := m.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}

	m2 := startMain(t, cfg)
	if w := who(t, m2, "dbs-ref:"+secretID); w.Disclosures != 1 || w.Recipients[0].Recipient != "acro" {
		t.Fatalf("after restart: %+v", w)
	}
	// The same event after the restart, over NATS and HTTP: still once.
	_, js := m2.connect(t)
	if _, err := js.Publish(context.Background(), "sharelog.in.casework", mustJSON(t, ev)); err != nil {
		t.Fatal(err)
	}
	resp, body = postEvents(t, m2.HTTP.URL(), "application/cloudevents+json", nil, mustJSON(t, ev))
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	if err := m2.Ingester.CatchUp(context.Background()); err != nil {
		t.Fatal(err)
	}
	if w := who(t, m2, "dbs-ref:"+secretID); w.Disclosures != 1 {
		t.Errorf("after resends: %d disclosures, want 1", w.Disclosures)
	}
	// The recipient and the disclosure, and the two lookups above, each
	// recorded in the consultation log (DPA 2018 s.62).
	if got := m2.Store.Count(); got != 4 {
		t.Errorf("ledger has %d entries, want 4", got)
	}
}

// TestDedupeAfterDuplicateWindow resends an event with the same Nats-Msg-Id
// after JetStream's duplicate window has passed, so that JetStream stores it
// twice: the ledger still records it once.
func TestDedupeAfterDuplicateWindow(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.Duplicates = 200 * time.Millisecond
	m := startMain(t, cfg)
	registerRecipient(t, m, "acro")
	_, js := m.connect(t)
	ctx := context.Background()
	// --duplicates is SHARELOG_IN's window; SHARELOG_REJECTED keeps its own,
	// for the rejections a batch replayed after a crash files again.
	for stream, want := range map[string]time.Duration{nats.StreamIn: cfg.Duplicates, nats.StreamRejected: nats.RejectedDuplicates} {
		s, err := js.Stream(ctx, stream)
		if err != nil {
			t.Fatal(err)
		}
		if got := s.CachedInfo().Config.Duplicates; got != want {
			t.Errorf("%s: duplicate window %v, want %v", stream, got, want)
		}
	}
	ev := mustJSON(t, disclosure("casework", "w-1", []ledger.Subject{{Scheme: "dbs-ref", ID: secretID}}, "acro", []string{"user.criminal_history"}, time.Now().UTC()))

	first, err := js.Publish(ctx, "sharelog.in.casework", ev, jetstream.WithMsgID("w-1"))
	if err != nil {
		t.Fatal(err)
	}
	if dup, err := js.Publish(ctx, "sharelog.in.casework", ev, jetstream.WithMsgID("w-1")); err != nil || !dup.Duplicate {
		t.Fatalf("within the window: duplicate=%v err=%v, want JetStream to dedupe", dup != nil && dup.Duplicate, err)
	}
	time.Sleep(3 * cfg.Duplicates) // let the window pass; not a timing assertion
	second, err := js.Publish(ctx, "sharelog.in.casework", ev, jetstream.WithMsgID("w-1"))
	if err != nil {
		t.Fatal(err)
	}
	if second.Duplicate || second.Sequence == first.Sequence {
		t.Fatalf("after the window JetStream should store the resend: %+v", second)
	}
	if err := m.Ingester.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	if w := who(t, m, "dbs-ref:"+secretID); w.Disclosures != 1 {
		t.Errorf("%d disclosures, want 1", w.Disclosures)
	}
	if got := get(t, m.HTTP.URL()+"/metrics"); !containsLine(got, `sharelog_events_total{outcome="duplicate"} 1`) {
		t.Errorf("metrics do not count the duplicate")
	}
}

// TestExternalNATS runs serve with --nats against a separately started
// nats-server with JetStream, as when users outgrow one machine.
func TestExternalNATS(t *testing.T) {
	opts := natsserver.DefaultTestOptions
	opts.Port = -1
	opts.JetStream = true
	opts.StoreDir = t.TempDir()
	ns := natsserver.RunServer(&opts)
	t.Cleanup(ns.Shutdown)

	cfg := testConfig(t.TempDir())
	cfg.NATS = ns.ClientURL()
	m := startMain(t, cfg)
	if m.NATSServer != nil {
		t.Fatal("embedded server started despite --nats")
	}
	registerRecipient(t, m, "acro")
	_, js := m.connect(t)
	ev := disclosure("casework", "x-1", []ledger.Subject{{Scheme: "dbs-ref", ID: secretID}}, "acro", []string{"user.criminal_history"}, time.Now().UTC())
	if _, err := js.Publish(context.Background(), "sharelog.in.casework", mustJSON(t, ev)); err != nil {
		t.Fatal(err)
	}
	checkFor(t, 10*time.Second, func() error {
		if w := who(t, m, "dbs-ref:"+secretID); w.Disclosures != 1 {
			return fmt.Errorf("%d disclosures, want 1", w.Disclosures)
		}
		return nil
	})
	// The streams live on the external server.
	if _, err := js.Stream(context.Background(), nats.StreamIn); err != nil {
		t.Errorf("SHARELOG_IN on the external server: %v", err)
	}
	var _ *server.Server = ns
}

func containsLine(text, line string) bool {
	return slices.Contains(strings.Split(text, "\n"), line)
}
