package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sharelog/sharelog/internal/ledger"
	"github.com/sharelog/sharelog/internal/notify"
)

// BenchmarkFanOut1000 measures one erasure told to 1,000 recipients: from
// the erasure's POST until every notice is durable, that is, every delivery
// record is applied to the ledger (and, for nats recipients, the notice was
// acknowledged by SHARELOG_NOTICES before its record was written). It runs
// the real serve code, with the dispatcher's default 250ms poll. Reported as
// ms/fanout; it asserts nothing about time.
//
//	go test -run '^$' -bench FanOut1000 -benchtime 5x ./cmd/sharelog/
func BenchmarkFanOut1000(b *testing.B) {
	for _, mix := range []struct {
		name                  string
		nats, webhook, manual int
	}{
		{"nats", 1000, 0, 0},
		{"mixed", 600, 300, 100},
	} {
		b.Run(mix.name, func(b *testing.B) { benchFanOut(b, mix.nats, mix.webhook, mix.manual) })
	}
}

func benchFanOut(b *testing.B, nNATS, nHook, nManual int) {
	dir := b.TempDir()
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer hook.Close()
	var events []map[string]any
	var secrets strings.Builder
	secrets.WriteString("recipients:\n")
	subject := ledger.Subject{Scheme: "dbs-ref", ID: "Z9Q-4471"}
	t0 := time.Now().UTC().Add(-24 * time.Hour).Truncate(time.Second)
	for i := range nNATS + nHook + nManual {
		id := fmt.Sprintf("r-%04d", i)
		channel := map[string]any{"type": "nats"}
		switch {
		case i >= nNATS+nHook:
			channel = map[string]any{"type": "manual"}
		case i >= nNATS:
			channel = map[string]any{"type": "webhook", "url": hook.URL + "/" + id}
			fmt.Fprintf(&secrets, "  %s: {secret: \"bench-secret-0123456789\"}\n", id)
		}
		events = append(events, recipientEvent(id, channel), disclosure("casework", "d-"+id, []ledger.Subject{subject}, id, []string{"user.contact.email"}, t0))
	}
	secretsFile := filepath.Join(dir, "secrets.yaml")
	if err := os.WriteFile(secretsFile, []byte(secrets.String()), 0o600); err != nil {
		b.Fatal(err)
	}
	cfg := testConfig(filepath.Join(dir, "data"))
	cfg.LogLevel = slog.LevelWarn
	cfg.WebhookSecrets = secretsFile
	m := NewMain(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := m.Open(context.Background()); err != nil {
		m.Close()
		b.Fatal(err)
	}
	defer m.Close()
	if resp, body := postEventsB(b, m.HTTP.URL(), events); resp != http.StatusAccepted {
		b.Fatalf("events: %d %s", resp, body)
	}
	ctx := context.Background()
	auto := nNATS + nHook

	b.ResetTimer()
	var total, opened time.Duration
	for i := range b.N {
		request := fmt.Sprintf("req-bench-%d", i)
		erasure := []map[string]any{{
			"specversion": "1.0", "id": "erasure-" + request, "source": "dpo", "type": ledger.TypeErasure,
			"time": time.Now().UTC().Format(time.RFC3339), "datacontenttype": "application/json",
			"data": map[string]any{"request": request, "subject": subject, "decidedAt": time.Now().UTC().Format(time.RFC3339), "regime": "dpa-part3"},
		}}
		start := time.Now()
		if resp, body := postEventsB(b, m.HTTP.URL(), erasure); resp != http.StatusAccepted {
			b.Fatalf("erasure: %d %s", resp, body)
		}
		seenOpen := false
		for {
			st, err := m.Store.Status(ctx, request)
			if ledger.ErrorCode(err) == ledger.ENOTFOUND {
				time.Sleep(time.Millisecond)
				continue
			}
			if err != nil {
				b.Fatal(err)
			}
			if !seenOpen {
				seenOpen = true
				opened += time.Since(start)
			}
			delivered := 0
			for _, o := range st.Obligations {
				if o.State == ledger.StateDelivered && o.Channel != "manual" {
					delivered++
				}
			}
			if delivered == auto {
				break
			}
			time.Sleep(2 * time.Millisecond)
		}
		total += time.Since(start)
	}
	b.StopTimer()
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms/fanout")
	b.ReportMetric(float64(opened.Milliseconds())/float64(b.N), "ms/opened")
	// Every nats notice is on SHARELOG_NOTICES.
	s, err := m.JetStream.Stream(ctx, notify.StreamNotices)
	if err != nil {
		b.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		b.Fatal(err)
	}
	if got := info.State.Msgs; got < uint64(nNATS*b.N) {
		b.Fatalf("SHARELOG_NOTICES holds %d notices, want %d", got, nNATS*b.N)
	}
}

func postEventsB(b *testing.B, url string, events []map[string]any) (int, string) {
	b.Helper()
	body, err := json.Marshal(events)
	if err != nil {
		b.Fatal(err)
	}
	resp, err := http.Post(url+"/v1/events", "application/cloudevents-batch+json", bytes.NewReader(body))
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(out)
}
