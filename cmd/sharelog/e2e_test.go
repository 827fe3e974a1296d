package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	natsio "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	slhttp "github.com/sharelog/sharelog/internal/http"
	"github.com/sharelog/sharelog/internal/ledger"
	"github.com/sharelog/sharelog/internal/nats"
)

// secretID is a data-subject identifier distinctive enough to search for in
// logs, metrics and headers.
const secretID = "QX7-SECRET-9041"

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// testMain is a running sharelog serve with its logs captured.
type testMain struct {
	*Main
	logs *syncBuffer
}

func testConfig(dir string) Config {
	return Config{
		Data:       dir,
		HTTP:       "127.0.0.1:0",
		NATSListen: "127.0.0.1:0",
		Duplicates: 2 * time.Minute,
		LogLevel:   slog.LevelDebug,
		LookupRate: -1, // tests poll lookups; limits_test.go sets a rate
	}
}

// startMain runs the real serve code on cfg and closes it at the end of the test.
func startMain(t *testing.T, cfg Config) *testMain {
	t.Helper()
	logs := &syncBuffer{}
	m := NewMain(cfg, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err := m.Open(context.Background()); err != nil {
		m.Close()
		t.Fatalf("open: %v\n%s", err, logs)
	}
	t.Cleanup(func() { m.Close() })
	t.Cleanup(func() { // before Close: a failed test shows what serve logged
		if t.Failed() {
			t.Logf("serve's log, warnings and errors and the last 40 lines:\n%s", logExcerpt(logs.String(), 40))
		}
	})
	return &testMain{Main: m, logs: logs}
}

// logExcerpt returns the lines of log at WARN or ERROR, and its last n
// lines.
func logExcerpt(log string, n int) string {
	lines := strings.Split(strings.TrimRight(log, "\n"), "\n")
	var out []string
	for _, l := range lines[:max(len(lines)-n, 0)] {
		if strings.Contains(l, "level=WARN") || strings.Contains(l, "level=ERROR") {
			out = append(out, l)
		}
	}
	return strings.Join(append(out, lines[max(len(lines)-n, 0):]...), "\n")
}

// cli runs a sharelog client command against m and returns its stdout.
func (m *testMain) cli(t *testing.T, args ...string) string {
	t.Helper()
	var out, errb bytes.Buffer
	args = append(args, "--server", m.HTTP.URL())
	if err := run(context.Background(), args, &out, &errb); err != nil {
		t.Fatalf("sharelog %s: %v\nstderr: %s", strings.Join(args, " "), err, errb.String())
	}
	return out.String()
}

// cliErr runs a client command that must fail and returns its error and stderr.
func (m *testMain) cliErr(t *testing.T, args ...string) (error, string) {
	t.Helper()
	var out, errb bytes.Buffer
	args = append(args, "--server", m.HTTP.URL())
	err := run(context.Background(), args, &out, &errb)
	if err == nil {
		t.Fatalf("sharelog %s: succeeded, want an error\nstdout: %s", strings.Join(args, " "), out.String())
	}
	return err, errb.String()
}

// connect returns a NATS connection and JetStream context to m's NATS server.
func (m *testMain) connect(t *testing.T) (*natsio.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := natsio.Connect(m.NATSURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

// checkFor polls f until it returns nil or the timeout passes.
func checkFor(t *testing.T, timeout time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %v", timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// disclosure returns a structured disclosure event as a map.
func disclosure(source, id string, subjects []ledger.Subject, recipient string, categories []string, at time.Time) map[string]any {
	return map[string]any{
		"specversion":     "1.0",
		"id":              id,
		"source":          source,
		"type":            ledger.TypeDisclosure,
		"time":            at.Format(time.RFC3339),
		"datacontenttype": "application/json",
		"data": map[string]any{
			"subjects":      subjects,
			"recipient":     recipient,
			"categories":    categories,
			"purpose":       "safeguarding.disclosure_check",
			"lawfulBasis":   "dpa-s35-2-b",
			"regime":        "dpa-part3",
			"disclosedAt":   at.Format(time.RFC3339),
			"disclosedBy":   "disclosure-service",
			"justification": "enhanced check requested by a registered body",
		},
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// binaryMsg turns a structured event into a NATS binary-mode message.
func binaryMsg(t *testing.T, subject string, ev map[string]any) *natsio.Msg {
	t.Helper()
	msg := natsio.NewMsg(subject)
	for k, v := range ev {
		switch k {
		case "data":
			msg.Data = mustJSON(t, v)
		case "datacontenttype":
			msg.Header.Set("Content-Type", v.(string))
		default:
			msg.Header.Set("ce-"+k, fmt.Sprint(v))
		}
	}
	return msg
}

func postEvents(t *testing.T, url, contentType string, header http.Header, body []byte) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url+"/v1/events", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", contentType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func who(t *testing.T, m *testMain, subject string) ledger.Who {
	t.Helper()
	var w ledger.Who
	if err := json.Unmarshal([]byte(m.cli(t, "who", subject, "--json")), &w); err != nil {
		t.Fatal(err)
	}
	return w
}

// TestEndToEnd runs the real serve code and uses it as producers and a DPO
// would: recipients from the example file, disclosures over NATS (binary and
// structured) and HTTP (binary, structured, batch), answers through the CLI.
func TestEndToEnd(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.Recipients = filepath.Join("..", "..", "deploy", "recipients.example.yaml")
	m := startMain(t, cfg)
	nc, js := m.connect(t)
	ctx := context.Background()

	var recips struct{ Recipients []ledger.Recipient }
	if err := json.Unmarshal([]byte(m.cli(t, "recipients", "--json")), &recips); err != nil {
		t.Fatal(err)
	}
	ids := make([]string, len(recips.Recipients))
	for i, r := range recips.Recipients {
		ids[i] = r.ID
	}
	for _, want := range []string{"acro", "avon-and-somerset", "northern-ireland", "btp"} {
		if !slices.Contains(ids, want) {
			t.Errorf("recipients: %q missing from %v", want, ids)
		}
	}

	a1 := ledger.Subject{Scheme: "dbs-ref", ID: secretID}
	b2 := ledger.Subject{Scheme: "dbs-ref", ID: "B2-OTHER"}
	t0 := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	crim := []string{"user.criminal_history"}
	name := []string{"user.name", "user.contact.address"}

	// NATS, binary content mode.
	if _, err := js.PublishMsg(ctx, binaryMsg(t, "sharelog.in.casework", disclosure("casework", "d-1", []ledger.Subject{a1}, "acro", crim, t0))); err != nil {
		t.Fatal(err)
	}
	// NATS, structured content mode with a content type.
	msg := natsio.NewMsg("sharelog.in.casework")
	msg.Header.Set("Content-Type", "application/cloudevents+json")
	msg.Data = mustJSON(t, disclosure("casework", "d-2", []ledger.Subject{a1, b2}, "acro", name, t0.Add(24*time.Hour)))
	if _, err := js.PublishMsg(ctx, msg); err != nil {
		t.Fatal(err)
	}
	// NATS, structured, no headers at all.
	if _, err := js.Publish(ctx, "sharelog.in.casework", mustJSON(t, disclosure("casework", "d-3", []ledger.Subject{a1}, "avon-and-somerset", crim, t0.Add(48*time.Hour)))); err != nil {
		t.Fatal(err)
	}
	// HTTP, binary content mode.
	bin := disclosure("web", "d-4", []ledger.Subject{a1}, "cgi", []string{"user.contact.email"}, t0.Add(72*time.Hour))
	h := http.Header{}
	for k, v := range bin {
		if k != "data" && k != "datacontenttype" {
			h.Set("ce-"+k, fmt.Sprint(v))
		}
	}
	resp, body := postEvents(t, m.HTTP.URL(), "application/json", h, mustJSON(t, bin["data"]))
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("HTTP binary: %d %s", resp.StatusCode, body)
	}
	// HTTP, structured content mode.
	resp, body = postEvents(t, m.HTTP.URL(), "application/cloudevents+json", nil, mustJSON(t, disclosure("web", "d-5", []ledger.Subject{a1}, "acro", crim, t0.Add(96*time.Hour))))
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("HTTP structured: %d %s", resp.StatusCode, body)
	}
	// HTTP, batch: one new, one a resend of d-5 (a duplicate).
	batch := []any{
		disclosure("web", "d-6", []ledger.Subject{b2}, "btp", crim, t0.Add(120*time.Hour)),
		disclosure("web", "d-5", []ledger.Subject{a1}, "acro", crim, t0.Add(96*time.Hour)),
	}
	resp, body = postEvents(t, m.HTTP.URL(), "application/cloudevents-batch+json", nil, mustJSON(t, batch))
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("HTTP batch: %d %s", resp.StatusCode, body)
	}
	var acc slhttp.Accepted
	if err := json.Unmarshal(body, &acc); err != nil {
		t.Fatal(err)
	}
	if got := []string{acc.Accepted[0].Outcome, acc.Accepted[1].Outcome}; !slices.Equal(got, []string{"recorded", "duplicate"}) {
		t.Errorf("batch outcomes = %v, want [recorded duplicate]", got)
	}

	// The NATS events are applied asynchronously: wait for them.
	checkFor(t, 10*time.Second, func() error {
		if w := who(t, m, "dbs-ref:"+secretID); w.Disclosures != 5 {
			return fmt.Errorf("who: %d disclosures, want 5", w.Disclosures)
		}
		return nil
	})

	got := who(t, m, "dbs-ref:"+secretID)
	want := []ledger.WhoRecipient{
		{Recipient: "acro", Categories: []string{"user.contact.address", "user.criminal_history", "user.name"}, Count: 3,
			FirstDisclosedAt: t0, LastDisclosedAt: t0.Add(96 * time.Hour)},
		{Recipient: "avon-and-somerset", Categories: crim, Count: 1, FirstDisclosedAt: t0.Add(48 * time.Hour), LastDisclosedAt: t0.Add(48 * time.Hour)},
		{Recipient: "cgi", Categories: []string{"user.contact.email"}, Count: 1, FirstDisclosedAt: t0.Add(72 * time.Hour), LastDisclosedAt: t0.Add(72 * time.Hour)},
	}
	if len(got.Recipients) != len(want) {
		t.Fatalf("who: %d recipients, want %d: %+v", len(got.Recipients), len(want), got.Recipients)
	}
	for i, w := range want {
		g := got.Recipients[i]
		if g.Recipient != w.Recipient || !slices.Equal(g.Categories, w.Categories) || g.Count != w.Count ||
			!g.FirstDisclosedAt.Equal(w.FirstDisclosedAt) || !g.LastDisclosedAt.Equal(w.LastDisclosedAt) {
			t.Errorf("who[%d] = %+v\nwant %+v", i, g, w)
		}
		if !slices.Equal(g.Purposes, []string{"safeguarding.disclosure_check"}) || !slices.Equal(g.LawfulBases, []string{"dpa-s35-2-b"}) {
			t.Errorf("who[%d] purposes %v lawful bases %v", i, g.Purposes, g.LawfulBases)
		}
		if g.Name == "" || g.Role == "" {
			t.Errorf("who[%d]: name %q role %q, want the registry's", i, g.Name, g.Role)
		}
	}

	// The table names ACRO.
	table := m.cli(t, "who", "dbs-ref:"+secretID)
	if !strings.Contains(table, "ACRO") || !strings.Contains(table, "5 disclosures to 3 recipients.") {
		t.Errorf("who table:\n%s", table)
	}
	if w := who(t, m, "dbs-ref:nobody-here"); len(w.Recipients) != 0 {
		t.Errorf("who for an unknown subject: %+v", w)
	}

	// Disclosures by recipient and window, and by subject.
	var page ledger.DisclosurePage
	out := m.cli(t, "disclosures", "--recipient", "acro", "--since", "2026-03-01T12:00:00Z", "--until", "2026-03-06", "--json")
	if err := json.Unmarshal([]byte(out), &page); err != nil {
		t.Fatal(err)
	}
	if got := discIDs(page); !slices.Equal(got, []string{"d-2", "d-5"}) {
		t.Errorf("disclosures --recipient acro window = %v, want [d-2 d-5]", got)
	}
	out = m.cli(t, "disclosures", "--subject", "dbs-ref:B2-OTHER", "--json")
	page = ledger.DisclosurePage{}
	if err := json.Unmarshal([]byte(out), &page); err != nil {
		t.Fatal(err)
	}
	if got := discIDs(page); !slices.Equal(got, []string{"d-2", "d-6"}) {
		t.Errorf("disclosures --subject B2 = %v, want [d-2 d-6]", got)
	}
	var rec ledger.DisclosureRecord
	if err := json.Unmarshal([]byte(m.cli(t, "disclosure", "d-3", "--json")), &rec); err != nil {
		t.Fatal(err)
	}
	if rec.Source != "casework" || rec.Disclosure.Recipient != "avon-and-somerset" {
		t.Errorf("disclosure d-3 = %+v", rec)
	}
	if err, _ := m.cliErr(t, "disclosure", "no-such"); !strings.Contains(err.Error(), "not_found") {
		t.Errorf("missing disclosure: %v", err)
	}

	// Replays: the same (source, id) over NATS again, and over HTTP, change nothing.
	if _, err := js.PublishMsg(ctx, binaryMsg(t, "sharelog.in.casework", disclosure("casework", "d-1", []ledger.Subject{a1}, "acro", crim, t0))); err != nil {
		t.Fatal(err)
	}
	resp, body = postEvents(t, m.HTTP.URL(), "application/cloudevents+json", nil, mustJSON(t, disclosure("casework", "d-3", []ledger.Subject{a1}, "avon-and-somerset", crim, t0.Add(48*time.Hour))))
	if resp.StatusCode != http.StatusAccepted || !strings.Contains(string(body), `"duplicate"`) {
		t.Errorf("HTTP resend of a NATS event: %d %s", resp.StatusCode, body)
	}
	if err := m.Ingester.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	if w := who(t, m, "dbs-ref:"+secretID); w.Disclosures != 5 {
		t.Errorf("after replays: %d disclosures, want 5", w.Disclosures)
	}

	// Publish from a file with the CLI.
	file := filepath.Join(t.TempDir(), "events.json")
	os.WriteFile(file, mustJSON(t, []any{disclosure("cli", "d-7", []ledger.Subject{a1}, "police-scotland", crim, t0.Add(144*time.Hour))}), 0o600)
	if out := m.cli(t, "publish", file); !strings.Contains(out, "1 recorded") {
		t.Errorf("publish: %s", out)
	}
	if w := who(t, m, "dbs-ref:"+secretID); w.Disclosures != 6 {
		t.Errorf("after publish: %d disclosures, want 6", w.Disclosures)
	}

	// Nothing identifies the person in logs or metrics.
	metricsBody := get(t, m.HTTP.URL()+"/metrics")
	if !strings.Contains(metricsBody, `sharelog_events_total{outcome="recorded"}`) {
		t.Errorf("metrics lack sharelog_events_total")
	}
	for what, text := range map[string]string{"logs": m.logs.String(), "metrics": metricsBody} {
		if strings.Contains(text, secretID) {
			t.Errorf("%s contain a data-subject identifier", what)
		}
	}
	_ = nc
}

func discIDs(p ledger.DisclosurePage) []string {
	var ids []string
	for _, d := range p.Disclosures {
		ids = append(ids, d.ID)
	}
	return ids
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	return string(b)
}

var _ = nats.SubjectInHTTP
