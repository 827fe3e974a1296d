package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sharelog/sharelog/internal/ledger"
	"github.com/sharelog/sharelog/internal/notify"
)

// recipientEvent returns a structured org.sharelog.recipient.v1 event.
func recipientEvent(id string, channel map[string]any) map[string]any {
	return map[string]any{
		"specversion": "1.0", "id": "recipient-" + id, "source": "admin", "type": ledger.TypeRecipient,
		"time": time.Now().UTC().Format(time.RFC3339), "datacontenttype": "application/json",
		"data": map[string]any{"id": id, "name": "Recipient " + id, "role": "competent-authority", "regime": "dpa-part3",
			"channel": channel, "contact": id + "@example.org"},
	}
}

// noticeHooks is the webhook endpoint of several recipients (/hook/<id>).
type noticeHooks struct {
	t       *testing.T
	secrets map[string][]byte
	down    map[string]int // recipient -> requests answered 503 before it comes up

	mu       sync.Mutex
	received map[string][]string // recipient -> notice ids, in order
	bodies   map[string][]byte   // recipient -> the last notice body
	reminded map[string]int      // recipient -> requests marked as reminders
}

func (h *noticeHooks) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := strings.TrimPrefix(r.URL.Path, "/hook/")
	body, _ := io.ReadAll(r.Body)
	if err := notify.Verify(h.secrets[id], r.Header, body, time.Now(), 0); err != nil {
		h.t.Errorf("webhook to %s: %v", id, err)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var ev struct{ ID string }
	json.Unmarshal(body, &ev)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.received[id] = append(h.received[id], ev.ID)
	h.bodies[id] = body
	if r.Header.Get(notify.HeaderReminder) == "true" {
		h.reminded[id]++
	}
	if h.down[id] > 0 {
		h.down[id]--
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (h *noticeHooks) got(id string) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.received[id])
}

// TestNoticePropagation runs the real serve code through one erasure told to
// 20 recipients: 8 over NATS, 8 by webhook (one of them down for a while,
// one that never answers and becomes overdue and is reminded) and 4 by hand
// (one exempted). Every recipient gets exactly one notice id carrying only
// what it received; acks come back over NATS and HTTP; the manual queue is
// exported and worked through with the CLI.
func TestNoticePropagation(t *testing.T) {
	dir := t.TempDir()
	hooks := &noticeHooks{t: t, secrets: map[string][]byte{}, down: map[string]int{"hook-0": 2},
		received: map[string][]string{}, bodies: map[string][]byte{}, reminded: map[string]int{}}
	hookSrv := httptest.NewServer(hooks)
	defer hookSrv.Close()

	var nats, webhooks, manual []string
	var events []map[string]any
	var secretsYAML strings.Builder
	secretsYAML.WriteString("recipients:\n")
	for i := range 8 {
		nats = append(nats, fmt.Sprintf("nats-%d", i))
		events = append(events, recipientEvent(nats[i], map[string]any{"type": "nats"}))
		webhooks = append(webhooks, fmt.Sprintf("hook-%d", i))
		events = append(events, recipientEvent(webhooks[i], map[string]any{"type": "webhook", "url": hookSrv.URL + "/hook/" + webhooks[i]}))
		hooks.secrets[webhooks[i]] = []byte(fmt.Sprintf("secret-of-hook-%d-0123456789", i))
		fmt.Fprintf(&secretsYAML, "  %s: {secret: %q}\n", webhooks[i], hooks.secrets[webhooks[i]])
	}
	for i := range 4 {
		manual = append(manual, fmt.Sprintf("manual-%d", i))
		events = append(events, recipientEvent(manual[i], map[string]any{"type": "manual"}))
	}
	all := slices.Concat(nats, webhooks, manual)
	subject := ledger.Subject{Scheme: "dbs-ref", ID: secretID}
	t0 := time.Now().UTC().Add(-90 * 24 * time.Hour).Truncate(time.Second)
	for i, r := range all {
		// Each recipient received a different category; one also got another person's data only.
		cat := []string{"user.contact.email", "user.criminal_history", "user.name"}[i%3]
		events = append(events, disclosure("casework", "d-"+r, []ledger.Subject{subject}, r, []string{cat}, t0))
	}
	events = append(events, disclosure("casework", "d-other", []ledger.Subject{{Scheme: "dbs-ref", ID: "B2-OTHER"}}, "nats-0", []string{"user.financial"}, t0))
	secretsFile := filepath.Join(dir, "webhook-secrets.yaml")
	if err := os.WriteFile(secretsFile, []byte(secretsYAML.String()), 0o600); err != nil {
		t.Fatal(err)
	}

	cfg := testConfig(filepath.Join(dir, "data"))
	cfg.WebhookSecrets = secretsFile
	cfg.RemindEvery = 300 * time.Millisecond
	m := startMain(t, cfg)
	_, js := m.connect(t)
	ctx := context.Background()
	if resp, body := postEvents(t, m.HTTP.URL(), "application/cloudevents-batch+json", nil, mustJSON(t, events)); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("events: %d %s", resp.StatusCode, body)
	}

	// The erasure, decided 60 days ago: every notice is overdue at once.
	erasure := map[string]any{
		"specversion": "1.0", "id": "erasure-1", "source": "dpo", "type": ledger.TypeErasure,
		"time": time.Now().UTC().Format(time.RFC3339), "datacontenttype": "application/json",
		"data": map[string]any{"request": "req-erase-1", "subject": subject, "ground": "art17-1-a",
			"decidedAt": time.Now().UTC().Add(-60 * 24 * time.Hour).Format(time.RFC3339), "decidedBy": "dpo", "regime": "dpa-part3"},
	}
	if resp, body := postEvents(t, m.HTTP.URL(), "application/cloudevents+json", nil, mustJSON(t, erasure)); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("erasure: %d %s", resp.StatusCode, body)
	}
	status := func() map[string]ledger.Obligation {
		st, err := m.Store.Status(ctx, "req-erase-1")
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]ledger.Obligation{}
		for _, o := range st.Obligations {
			out[o.Recipient] = o
		}
		return out
	}
	obs := status()
	if len(obs) != 20 {
		t.Fatalf("%d obligations, want 20", len(obs))
	}
	notices := map[string]string{}
	for r, o := range obs {
		notices[r] = o.Notice
	}

	// Every automatic notice is delivered, the webhook that was down included.
	checkFor(t, 30*time.Second, func() error {
		for _, r := range slices.Concat(nats, webhooks) {
			if o := status()[r]; o.State != ledger.StateDelivered {
				return fmt.Errorf("%s: %s (%d attempts, %s)", r, o.State, o.Attempts, o.LastError)
			}
		}
		return nil
	})
	if o := status()["hook-0"]; o.Attempts < 3 || o.DeliveredAt == nil {
		t.Errorf("hook-0: %d attempts, want 2 failed then delivered", o.Attempts)
	}
	for _, r := range manual {
		if o := status()[r]; o.State != ledger.StatePending || o.Attempts != 0 {
			t.Errorf("manual %s: %s with %d attempts, want pending and never attempted", r, o.State, o.Attempts)
		}
	}

	// NATS recipients read their subjects and ack over NATS, once per notice id.
	cons, err := js.OrderedConsumer(ctx, notify.StreamNotices, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.FetchNoWait(1000)
	if err != nil {
		t.Fatal(err)
	}
	natsGot := map[string][]string{}
	acked := map[string]bool{}
	for msg := range batch.Messages() {
		r := strings.TrimPrefix(msg.Subject(), notify.SubjectNoticePrefix)
		var ev struct {
			ID   string
			Data ledger.Notice
		}
		if err := json.Unmarshal(msg.Data(), &ev); err != nil {
			t.Fatal(err)
		}
		natsGot[r] = append(natsGot[r], ev.ID)
		checkNoticeContent(t, r, ev.Data)
		if acked[ev.ID] {
			continue // a reminder: the recipient dedupes on the notice id
		}
		acked[ev.ID] = true
		ack := mustJSON(t, map[string]any{"specversion": "1.0", "id": "ack-" + ev.ID, "source": r + "/notices",
			"type": ledger.TypeNoticeAck, "time": time.Now().UTC().Format(time.RFC3339), "datacontenttype": "application/json",
			"data": map[string]any{"notice": ev.ID, "outcome": "done"}})
		if _, err := js.Publish(ctx, notify.SubjectAckPrefix+r, ack); err != nil {
			t.Fatal(err)
		}
	}
	// Webhook recipients but the last ack over HTTP, signed.
	for _, r := range webhooks[:7] {
		ack := mustJSON(t, map[string]any{"specversion": "1.0", "id": "ack-" + notices[r], "source": r + "/notices",
			"type": ledger.TypeNoticeAck, "time": time.Now().UTC().Format(time.RFC3339), "datacontenttype": "application/json",
			"data": map[string]any{"notice": notices[r], "outcome": "not-held"}})
		req, _ := http.NewRequest(http.MethodPost, m.HTTP.URL()+"/v1/recipients/"+r+"/acks", bytes.NewReader(ack))
		req.Header.Set("Content-Type", "application/cloudevents+json")
		notify.Sign(req.Header, hooks.secrets[r], ack, time.Now())
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted || !strings.Contains(string(b), `"recorded"`) {
			t.Errorf("ack from %s: %d %s", r, resp.StatusCode, b)
		}
	}
	// An ack signed by another recipient is refused.
	forged := mustJSON(t, map[string]any{"specversion": "1.0", "id": "forged", "source": "x", "type": ledger.TypeNoticeAck,
		"time": time.Now().UTC().Format(time.RFC3339), "datacontenttype": "application/json",
		"data": map[string]any{"notice": notices["hook-7"], "outcome": "done"}})
	req, _ := http.NewRequest(http.MethodPost, m.HTTP.URL()+"/v1/recipients/hook-7/acks", bytes.NewReader(forged))
	req.Header.Set("Content-Type", "application/cloudevents+json")
	notify.Sign(req.Header, hooks.secrets["hook-6"], forged, time.Now())
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("forged ack: %v %v, want 401", resp.StatusCode, err)
	}

	// The manual queue: exported, one exempted, the rest sent by a person.
	rows, err := csv.NewReader(strings.NewReader(m.cli(t, "manual", "--format", "csv"))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 5 || rows[0][0] != "recipient" {
		t.Fatalf("manual CSV: %d rows, want a header and 4:\n%v", len(rows), rows)
	}
	for _, row := range rows[1:] {
		if row[7] != secretID || row[3] != notices[row[0]] {
			t.Errorf("manual CSV row %v: want the subject and the recipient's notice id", row)
		}
	}
	exemption := map[string]any{"specversion": "1.0", "id": "exempt-1", "source": "dpo", "type": ledger.TypeExemption,
		"time": time.Now().UTC().Format(time.RFC3339), "datacontenttype": "application/json",
		"data": map[string]any{"notice": notices["manual-3"], "reason": "impossible", "justification": "the recipient has dissolved", "decidedBy": "dpo"}}
	if resp, body := postEvents(t, m.HTTP.URL(), "application/cloudevents+json", nil, mustJSON(t, exemption)); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("exemption: %d %s", resp.StatusCode, body)
	}
	var q struct{ Notices []notify.ManualNotice }
	if err := json.Unmarshal([]byte(m.cli(t, "manual", "--format", "json")), &q); err != nil {
		t.Fatal(err)
	}
	if len(q.Notices) != 3 {
		t.Fatalf("manual queue after the exemption: %d notices, want 3", len(q.Notices))
	}
	for _, n := range q.Notices {
		checkNoticeContent(t, n.Recipient, ledger.Notice{Notice: n.Notice, Categories: n.Categories, Disclosures: n.Disclosures})
		if out := m.cli(t, "sent", n.Notice, "--by", "A. Clerk"); !strings.Contains(out, "marked sent by A. Clerk") {
			t.Errorf("sent: %s", out)
		}
	}
	if err, _ := m.cliErr(t, "sent", notices["manual-0"], "--by", "A. Clerk"); !strings.Contains(err.Error(), "already marked sent") {
		t.Errorf("sending twice: %v", err)
	}
	if err, _ := m.cliErr(t, "sent", notices["nats-0"], "--by", "A. Clerk"); !strings.Contains(err.Error(), "conflict") {
		t.Errorf("marking a nats notice sent: %v", err)
	}
	if out := m.cli(t, "manual"); !strings.Contains(out, "No manual notices") {
		t.Errorf("manual queue not empty:\n%s", out)
	}

	// hook-7 never answers: it stays delivered, overdue, and is reminded.
	checkFor(t, 30*time.Second, func() error {
		if o := status()["hook-7"]; o.Reminders < 1 {
			return fmt.Errorf("hook-7: %d reminders", o.Reminders)
		}
		return nil
	})
	final := status()
	for r, o := range final {
		want := ledger.StateAcknowledged
		switch {
		case r == "hook-7":
			want = ledger.StateDelivered
		case r == "manual-3":
			want = ledger.StateExempted
		case strings.HasPrefix(r, "manual-"):
			want = ledger.StateDelivered
		}
		if o.State != want {
			t.Errorf("%s: %s, want %s", r, o.State, want)
		}
	}
	if o := final["hook-7"]; !o.Overdue {
		t.Errorf("hook-7 is not overdue: due %v", o.Due)
	}

	// Exactly one notice id per recipient, its own, however often it came.
	ids := map[string]string{}
	for _, r := range slices.Concat(nats, webhooks) {
		got := hooks.got(r)
		if strings.HasPrefix(r, "nats-") {
			got = natsGot[r]
		}
		if len(got) == 0 {
			t.Errorf("%s received no notice", r)
		}
		for _, id := range got {
			if id != notices[r] {
				t.Errorf("%s received notice %s, want only %s", r, id, notices[r])
			}
		}
		if other, dup := ids[notices[r]]; dup {
			t.Errorf("%s and %s share a notice id", r, other)
		}
		ids[notices[r]] = r
	}
	for r, body := range hooks.bodies {
		var ev struct{ Data ledger.Notice }
		json.Unmarshal(body, &ev)
		checkNoticeContent(t, r, ev.Data)
	}
	if strings.Contains(m.logs.String(), secretID) {
		t.Errorf("logs contain the data subject's identifier")
	}
}

// checkNoticeContent checks that recipient r's notice names only what r
// received: its one disclosure and that disclosure's category.
func checkNoticeContent(t *testing.T, r string, n ledger.Notice) {
	t.Helper()
	if !slices.Equal(n.Disclosures, []string{"d-" + r}) {
		t.Errorf("%s: notice %s names disclosures %v, want only d-%s", r, n.Notice, n.Disclosures, r)
	}
	if len(n.Categories) != 1 || n.Categories[0] == "user.financial" {
		t.Errorf("%s: notice %s names categories %v, want only the one it received", r, n.Notice, n.Categories)
	}
}
