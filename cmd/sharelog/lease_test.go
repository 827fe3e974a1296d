package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/test"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sharelog/sharelog/internal/checkpoint"
	"github.com/sharelog/sharelog/internal/ledger"
	"github.com/sharelog/sharelog/internal/nats"
	"github.com/sharelog/sharelog/internal/notify"
	"github.com/sharelog/sharelog/internal/retention"
)

// replicaTTL is the lease TTL of the replica tests.
const replicaTTL = 2 * time.Second

// externalNATS starts a nats-server with JetStream for replicas to share.
func externalNATS(t *testing.T) string {
	t.Helper()
	opts := natsserver.DefaultTestOptions
	opts.Port = -1
	opts.JetStream = true
	opts.StoreDir = t.TempDir()
	ns := natsserver.RunServer(&opts)
	t.Cleanup(ns.Shutdown)
	return ns.ClientURL()
}

// replicaConfigs returns the configurations of n replicas r0, r1, ... on
// the NATS server url, each with its own data directory but the same site
// key (which keys subject hashes) and master key, as replicas must have.
func replicaConfigs(t *testing.T, url string, n int) []Config {
	t.Helper()
	root := t.TempDir()
	site := make([]byte, 32)
	rand.Read(site)
	var cfgs []Config
	for i := range n {
		cfg := testConfig(filepath.Join(root, fmt.Sprintf("r%d", i)))
		if err := os.MkdirAll(cfg.Data, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(cfg.Data, "site.key"), site, 0o600); err != nil {
			t.Fatal(err)
		}
		cfg.MasterKeyFile = filepath.Join(root, "master.key") // made by the first to start
		cfg.NATS = url
		cfg.Replica = fmt.Sprintf("r%d", i)
		cfg.LeaseTTL = replicaTTL
		cfgs = append(cfgs, cfg)
	}
	return cfgs
}

// leadersOf returns the replicas that are leader now.
func leadersOf(ms []*testMain) []*testMain {
	var out []*testMain
	for _, m := range ms {
		if m.Lease.IsLeader() {
			out = append(out, m)
		}
	}
	return out
}

// oneLeader waits until exactly one of ms leads, and returns it and when.
func oneLeader(t *testing.T, ms []*testMain, within time.Duration) (*testMain, time.Time) {
	t.Helper()
	for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
		if ls := leadersOf(ms); len(ls) == 1 {
			return ls[0], time.Now()
		}
	}
	t.Fatalf("no single leader among %d replicas within %s", len(ms), within)
	return nil, time.Time{}
}

func without(ms []*testMain, not *testMain) []*testMain {
	var out []*testMain
	for _, m := range ms {
		if m != not {
			out = append(out, m)
		}
	}
	return out
}

func TestReplicaFlag(t *testing.T) {
	url := externalNATS(t)
	for _, tc := range []struct {
		replica, nats, want string
	}{
		{"r0", "", "--replica needs --nats"},
		{"a.b", url, `--replica: replica name "a.b": use 1 to 64 letters, digits, '-' or '_'`},
		{"a b", url, `replica name "a b"`},
	} {
		cfg := testConfig(t.TempDir())
		cfg.Replica, cfg.NATS, cfg.LeaseTTL = tc.replica, tc.nats, replicaTTL
		m := NewMain(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
		err := m.Open(context.Background())
		m.Close()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("--replica %q --nats %q: %v, want %q", tc.replica, tc.nats, err, tc.want)
		}
	}
}

// slowHooks is the webhook endpoint of recipients (/hook/<id>) that takes a
// while to answer, and tells first when the first notice arrives.
type slowHooks struct {
	t       *testing.T
	secrets map[string][]byte
	delay   time.Duration
	first   chan struct{}
	once    sync.Once

	mu       sync.Mutex
	received map[string][]string // recipient -> notice ids, every request
}

func (h *slowHooks) ServeHTTP(w http.ResponseWriter, r *http.Request) {
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
	h.received[id] = append(h.received[id], ev.ID)
	h.mu.Unlock()
	h.once.Do(func() { close(h.first) })
	select {
	case <-time.After(h.delay):
	case <-r.Context().Done():
	}
	w.WriteHeader(http.StatusOK)
}

func (h *slowHooks) got(id string) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.received[id])
}

// TestReplicasHandOver runs three replicas of the real serve code on one
// NATS server. Exactly one leads; /readyz and /metrics say which. An
// erasure is told to 40 recipients (30 by webhook, 10 over NATS); the
// leader crashes (its NATS connection closed, no resignation) while the
// webhooks are in flight, and another replica takes over within the TTL
// and a little, and delivers what was not recorded. Every recipient gets
// its notice, every request it gets carries the one notice id its
// obligation has on every replica, and no NATS recipient finds two. The
// official checkpoint in SHARELOG_CHECKPOINTS is signed by a leader's key
// only. Then the new leader shuts down cleanly and the third takes over at
// once.
func TestReplicasHandOver(t *testing.T) {
	url := externalNATS(t)
	cfgs := replicaConfigs(t, url, 3)
	hooks := &slowHooks{t: t, secrets: map[string][]byte{}, delay: 300 * time.Millisecond, first: make(chan struct{}), received: map[string][]string{}}
	hookSrv := httptest.NewServer(hooks)
	defer hookSrv.Close()

	var webhooks, natsRecipients []string
	var events []map[string]any
	var secretsYAML strings.Builder
	secretsYAML.WriteString("recipients:\n")
	for i := range 30 {
		r := fmt.Sprintf("hook-%d", i)
		webhooks = append(webhooks, r)
		events = append(events, recipientEvent(r, map[string]any{"type": "webhook", "url": hookSrv.URL + "/hook/" + r}))
		hooks.secrets[r] = []byte(fmt.Sprintf("secret-of-hook-%d-0123456789", i))
		fmt.Fprintf(&secretsYAML, "  %s: {secret: %q}\n", r, hooks.secrets[r])
	}
	for i := range 10 {
		r := fmt.Sprintf("nats-%d", i)
		natsRecipients = append(natsRecipients, r)
		events = append(events, recipientEvent(r, map[string]any{"type": "nats"}))
	}
	all := slices.Concat(webhooks, natsRecipients)
	subject := ledger.Subject{Scheme: "dbs-ref", ID: secretID}
	t0 := time.Now().UTC().Add(-90 * 24 * time.Hour).Truncate(time.Second)
	for _, r := range all {
		events = append(events, disclosure("casework", "d-"+r, []ledger.Subject{subject}, r, []string{"user.criminal_history"}, t0))
	}
	secretsFile := filepath.Join(t.TempDir(), "webhook-secrets.yaml")
	if err := os.WriteFile(secretsFile, []byte(secretsYAML.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	var ms []*testMain
	for _, cfg := range cfgs {
		cfg.WebhookSecrets = secretsFile
		ms = append(ms, startMain(t, cfg))
	}
	leader, _ := oneLeader(t, ms, 10*time.Second)
	for _, m := range ms {
		ready := get(t, m.HTTP.URL()+"/readyz")
		metrics := get(t, m.HTTP.URL()+"/metrics")
		want, gauge := "follower (replica "+m.Config.Replica+"; leader "+leader.Config.Replica+")", "sharelog_leader 0"
		if m == leader {
			want, gauge = "leader (replica "+m.Config.Replica+")", "sharelog_leader 1"
		}
		if ready != "ready\n"+want+"\n" {
			t.Errorf("%s /readyz: %q, want ready and %q", m.Config.Replica, ready, want)
		}
		if !containsLine(metrics, gauge) {
			t.Errorf("%s /metrics: no line %q", m.Config.Replica, gauge)
		}
	}

	// The events go in through a follower: every replica folds them.
	post := without(ms, leader)[0]
	if resp, body := postEvents(t, post.HTTP.URL(), "application/cloudevents-batch+json", nil, mustJSON(t, events)); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("events: %d %s", resp.StatusCode, body)
	}
	erasure := map[string]any{
		"specversion": "1.0", "id": "erasure-1", "source": "dpo", "type": ledger.TypeErasure,
		"time": time.Now().UTC().Format(time.RFC3339), "datacontenttype": "application/json",
		"data": map[string]any{"request": "req-erase-1", "subject": subject, "ground": "art17-1-a",
			"decidedAt": time.Now().UTC().Add(-time.Hour).Format(time.RFC3339), "decidedBy": "dpo", "regime": "dpa-part3"},
	}
	if resp, body := postEvents(t, post.HTTP.URL(), "application/cloudevents+json", nil, mustJSON(t, erasure)); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("erasure: %d %s", resp.StatusCode, body)
	}
	ctx := context.Background()
	nc, js := post.connect(t)
	defer nc.Close()
	// The official checkpoint, in SHARELOG_CHECKPOINTS, is the leader's.
	checkFor(t, 10*time.Second, func() error { return keptBy(t, ctx, js, leader, without(ms, leader)...) })
	obligations := func(m *testMain) map[string]ledger.Obligation {
		st, err := m.Store.Status(ctx, "req-erase-1")
		if err != nil {
			return nil
		}
		out := map[string]ledger.Obligation{}
		for _, o := range st.Obligations {
			out[o.Recipient] = o
		}
		return out
	}

	// The leader crashes while its webhooks are in flight.
	select {
	case <-hooks.first:
	case <-time.After(30 * time.Second):
		t.Fatal("no notice reached a webhook")
	}
	crash := time.Now()
	leader.Conn.Close()
	rest := without(ms, leader)
	next, at := oneLeader(t, rest, 3*replicaTTL)
	t.Logf("crash: %s led %s after %s's NATS connection closed (TTL %s)", next.Config.Replica, at.Sub(crash), leader.Config.Replica, replicaTTL)
	if took := at.Sub(crash); took > replicaTTL+time.Second {
		t.Errorf("crash hand-over took %s, want at most the TTL %s and a second", took, replicaTTL)
	}

	// Every notice is delivered, by one leader or the other.
	checkFor(t, 60*time.Second, func() error {
		for _, m := range rest {
			obs := obligations(m)
			if len(obs) != len(all) {
				return fmt.Errorf("%s: %d obligations, want %d", m.Config.Replica, len(obs), len(all))
			}
			for _, r := range all {
				if o := obs[r]; o.State != ledger.StateDelivered {
					return fmt.Errorf("%s: %s: %s (%d attempts, %s)", m.Config.Replica, r, o.State, o.Attempts, o.LastError)
				}
			}
		}
		return nil
	})
	notices := obligations(rest[0])
	for r, o := range obligations(rest[1]) {
		if notices[r].Notice != o.Notice {
			t.Errorf("%s: notice %s on %s, %s on %s", r, notices[r].Notice, rest[0].Config.Replica, o.Notice, rest[1].Config.Replica)
		}
	}
	repeated := 0
	for _, r := range webhooks {
		all := hooks.got(r)
		if ids := slices.Compact(slices.Clone(all)); len(ids) != 1 || ids[0] != notices[r].Notice {
			t.Errorf("%s received notice ids %v, want only %s", r, all, notices[r].Notice)
		}
		if len(all) > 1 {
			repeated++
		}
	}
	t.Logf("%d of %d webhook recipients received their notice again after the hand-over (same id)", repeated, len(webhooks))
	cons, err := js.OrderedConsumer(ctx, notify.StreamNotices, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.FetchNoWait(1000)
	if err != nil {
		t.Fatal(err)
	}
	natsGot := map[string][]string{}
	for msg := range batch.Messages() {
		var ev struct{ ID string }
		json.Unmarshal(msg.Data(), &ev)
		r := strings.TrimPrefix(msg.Subject(), notify.SubjectNoticePrefix)
		natsGot[r] = append(natsGot[r], ev.ID)
	}
	for _, r := range natsRecipients {
		if got := natsGot[r]; len(got) != 1 || got[0] != notices[r].Notice {
			t.Errorf("%s: notices %v in %s, want one, %s", r, got, notify.StreamNotices, notices[r].Notice)
		}
	}

	// The official checkpoints are the leaders' only, the new one's too now.
	follower := without(rest, next)[0]
	checkFor(t, 10*time.Second, func() error { return keptBy(t, ctx, js, next, follower) })

	// A clean shutdown hands over at once.
	start := time.Now()
	if err := next.Close(); err != nil {
		t.Fatal(err)
	}
	third, at := oneLeader(t, []*testMain{follower}, replicaTTL)
	t.Logf("clean shutdown: %s led %s after %s began closing (TTL %s)", third.Config.Replica, at.Sub(start), next.Config.Replica, replicaTTL)
	if took := at.Sub(start); took > replicaTTL/2 {
		t.Errorf("clean hand-over took %s, want well under the TTL %s", took, replicaTTL)
	}
	if !strings.Contains(get(t, third.HTTP.URL()+"/metrics"), "sharelog_leader_changes_total 1") {
		t.Errorf("the third replica's metrics do not count one change of role")
	}
}

// keptBy returns an error unless SHARELOG_CHECKPOINTS keeps a checkpoint
// signed by leader and none signed by any of followers.
func keptBy(t *testing.T, ctx context.Context, js jetstream.JetStream, leader *testMain, followers ...*testMain) error {
	t.Helper()
	kept, err := nats.KeptCheckpoints(ctx, js)
	if err != nil {
		return err
	}
	signedBy := func(m *testMain, signed []byte) bool {
		vkey, err := checkpoint.PublicKey(checkpointKeyFile(m.Config))
		if err != nil {
			t.Fatal(err)
		}
		v, err := checkpoint.LoadVerifier(vkey)
		if err != nil {
			t.Fatal(err)
		}
		_, err = checkpoint.Open(signed, v)
		return err == nil
	}
	byLeader := 0
	for _, k := range kept {
		if signedBy(leader, k.Signed) {
			byLeader++
		}
		for _, f := range followers {
			if signedBy(f, k.Signed) {
				t.Fatalf("checkpoint at revision %d published by the follower %s", k.Revision, f.Config.Replica)
			}
		}
	}
	if byLeader == 0 {
		return fmt.Errorf("no checkpoint of the leader %s among %d kept", leader.Config.Replica, len(kept))
	}
	return nil
}

// TestReplicasForget: of two replicas, only the leader's forgetting job
// forgets a person and scrubs the streams; the follower applies the
// forgetting from the stream and compacts its own ledger once.
func TestReplicasForget(t *testing.T) {
	url := externalNATS(t)
	var ms []*testMain
	for _, cfg := range replicaConfigs(t, url, 2) {
		ms = append(ms, startMain(t, cfg))
	}
	leader, _ := oneLeader(t, ms, 10*time.Second)
	follower := without(ms, leader)[0]
	ctx := context.Background()
	p := ledger.Subject{Scheme: "dbs-ref", ID: "ZQ-REPLICA-4411"}
	outcomes := publishAll(t, follower,
		recipientEvent("police", map[string]any{"type": "nats"}),
		ukDisclosure("f-1", p, "police", []string{"user.contact.email"}, time.Date(2025, 1, 2, 9, 0, 0, 0, time.UTC)),
		ce("dpo", "erase-1", ledger.TypeErasure, map[string]any{"request": "E-1", "subject": p, "ground": "art17-1-a", "decidedAt": "2025-02-02T10:00:00Z"}),
	)
	if strings.Join(outcomes, " ") != "recorded recorded recorded" {
		t.Fatalf("outcomes = %v", outcomes)
	}
	var notice string
	checkFor(t, 10*time.Second, func() error {
		st, err := follower.Store.Status(ctx, "E-1")
		if err != nil {
			return err
		}
		if len(st.Obligations) != 1 || st.Obligations[0].State != ledger.StateDelivered {
			return fmt.Errorf("E-1: %+v", st.Obligations)
		}
		notice = st.Obligations[0].Notice
		return nil
	})
	_, js := follower.connect(t)
	ack := mustJSON(t, ce("police/notices", "ack-1", ledger.TypeNoticeAck, map[string]any{"notice": notice, "outcome": "done"}))
	if _, err := js.Publish(ctx, notify.SubjectAckPrefix+"police", ack); err != nil {
		t.Fatal(err)
	}
	disclosures := func(m *testMain) int {
		if err := m.Ingester.CatchUp(ctx); err != nil {
			t.Fatal(err)
		}
		w, err := m.Store.Who(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		return w.Disclosures
	}
	if n := disclosures(leader) + disclosures(follower); n != 2 {
		t.Fatalf("%d disclosures on the two replicas before forgetting, want 1 each", n)
	}

	// The follower's round forgets nothing and publishes nothing.
	rep, err := follower.Retention.Round(ctx)
	if err != nil || len(rep.Forgotten) != 0 || rep.ScrubbedMessages != 0 || rep.Compacted {
		t.Fatalf("follower's round = %+v, %v; want nothing done", rep, err)
	}
	if n := disclosures(leader); n != 1 {
		t.Fatalf("after the follower's round the leader has %d disclosures, want 1: the follower forgot", n)
	}
	// The leader's forgets and scrubs.
	rep, err = leader.Retention.Round(ctx)
	if err != nil || len(rep.Forgotten) != 1 || rep.ScrubbedMessages == 0 || !rep.Compacted {
		t.Fatalf("leader's round = %+v, %v", rep, err)
	}
	// That the follower then forgets the person too needs the replicas'
	// subject hashes to agree (issue 15 item 2: per-person salts from the
	// stream); TestForgetNotLeader shows the follower's part on one ledger.
}

// TestForgetNotLeader: a forgetting job that is not the leader's publishes
// no forgetting and scrubs nothing, but once the ledger has applied a
// forgetting (the leader's, here published as the leader's job would) it
// compacts the ledger, once, and keeps the scrub for a leader; as leader
// it then scrubs the streams.
func TestForgetNotLeader(t *testing.T) {
	m := startMain(t, testConfig(t.TempDir()))
	ctx := context.Background()
	p := ledger.Subject{Scheme: "dbs-ref", ID: "ZQ-NOTLEADER-207"}
	outcomes := publishAll(t, m,
		manualRecipient("web", "", 0),
		ukDisclosure("f-1", p, "web", []string{"user.contact.email"}, time.Date(2025, 1, 2, 9, 0, 0, 0, time.UTC)),
		ce("dpo", "erase-1", ledger.TypeErasure, map[string]any{"request": "E-1", "subject": p, "ground": "art17-1-a", "decidedAt": "2025-02-02T10:00:00Z"}),
	)
	if strings.Join(outcomes, " ") != "recorded recorded recorded" {
		t.Fatalf("outcomes = %v", outcomes)
	}
	st, err := m.Store.Status(ctx, "E-1")
	if err != nil || len(st.Obligations) != 1 {
		t.Fatalf("E-1: %+v, %v", st, err)
	}
	publishAll(t, m, ce("dpo", "exempt-1", ledger.TypeExemption, map[string]any{"notice": st.Obligations[0].Notice, "reason": "disproportionate-effort",
		"justification": "archived offline", "decidedBy": "dpo"}))
	var leading atomic.Bool
	job := retention.New(m.Store, m.Publisher, m.JetStream, retention.Config{Leader: leading.Load}, m.Logger)
	cands, err := m.Store.ForgetCandidates(ctx, time.Now(), ledger.ForgetPolicy{})
	if err != nil || len(cands) != 1 {
		t.Fatalf("forget candidates = %+v, %v; want the erased person", cands, err)
	}

	rep, err := job.Round(ctx)
	if err != nil || len(rep.Forgotten) != 0 || rep.Compacted {
		t.Fatalf("round not leader = %+v, %v; want nothing done", rep, err)
	}
	if w, _ := m.Store.Who(ctx, p); w == nil || w.Disclosures != 1 {
		t.Fatalf("who after a round not leader = %+v; want the disclosure kept", w)
	}
	// The leader's forgetting arrives through the stream.
	ev, err := retention.Event(cands[0], time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Publisher.Publish(ctx, nats.SubjectInNotify, []*ledger.Event{ev}); err != nil {
		t.Fatal(err)
	}
	if err := m.Ingester.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	if w, _ := m.Store.Who(ctx, p); w == nil || w.Disclosures != 0 {
		t.Fatalf("who after the forgetting = %+v", w)
	}
	rep, err = job.Round(ctx)
	if err != nil || len(rep.Forgotten) != 0 || rep.ScrubbedMessages != 0 || !rep.Compacted {
		t.Fatalf("round not leader after the forgetting = %+v, %v; want the ledger compacted only", rep, err)
	}
	if rep, err = job.Round(ctx); err != nil || rep.Compacted {
		t.Errorf("next round not leader = %+v, %v; want nothing more", rep, err)
	}
	if scrubs, err := m.Store.PendingScrubs(ctx); err != nil || len(scrubs) != 1 {
		t.Fatalf("pending scrubs = %+v, %v; want the forgetting's, kept for a leader", scrubs, err)
	}
	leading.Store(true)
	if rep, err = job.Round(ctx); err != nil || rep.ScrubbedMessages == 0 || !rep.Compacted {
		t.Errorf("round as leader = %+v, %v; want the streams scrubbed", rep, err)
	}
	if scrubs, err := m.Store.PendingScrubs(ctx); err != nil || len(scrubs) != 0 {
		t.Errorf("pending scrubs after the leader's round = %+v, %v", scrubs, err)
	}
}
