package main

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	natsio "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	slhttp "github.com/sharelog/sharelog/internal/http"
	"github.com/sharelog/sharelog/internal/ledger"
	"github.com/sharelog/sharelog/internal/nats"
	"github.com/sharelog/sharelog/internal/notify"
)

// scenarioRecipients is how many recipients the scenario's erasure is told to.
const scenarioRecipients = 200

// scenarioProducer publishes disclosures over NATS, as a producing system
// does, one every few milliseconds until stopped, and records the
// SHARELOG_IN sequence of every event JetStream acknowledged. An event not
// acknowledged is sent again, with the same Nats-Msg-Id and event id, until
// it is (or for a minute, after which the producer fails).
type scenarioProducer struct {
	js      jetstream.JetStream
	subject []ledger.Subject
	stop    chan struct{}
	done    chan error
	sent    atomic.Int64

	mu     sync.Mutex
	acked  map[string]uint64 // event id -> its SHARELOG_IN sequence
	maxGap time.Duration     // the longest time between two acknowledgements
}

func startProducer(js jetstream.JetStream, subject []ledger.Subject, recipient string) *scenarioProducer {
	p := &scenarioProducer{js: js, subject: subject, stop: make(chan struct{}), done: make(chan error, 1), acked: map[string]uint64{}}
	at := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	go func() {
		lastAck := time.Now()
		for n := 0; ; n++ {
			select {
			case <-p.stop:
				p.done <- nil
				return
			default:
			}
			id := fmt.Sprintf("load-%05d", n)
			raw, _ := json.Marshal(disclosure("casework", id, subject, recipient, []string{"user.criminal_history"}, at))
			deadline := time.Now().Add(60 * time.Second)
			for {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				ack, err := js.Publish(ctx, "sharelog.in.casework", raw, jetstream.WithMsgID(nats.MsgID("casework", id)))
				cancel()
				if err == nil {
					p.mu.Lock()
					p.acked[id] = ack.Sequence
					p.maxGap = max(p.maxGap, time.Since(lastAck))
					p.mu.Unlock()
					lastAck = time.Now()
					break
				}
				if time.Now().After(deadline) {
					p.done <- fmt.Errorf("event %s not acknowledged in 60 s: %w", id, err)
					return
				}
				time.Sleep(50 * time.Millisecond)
			}
			p.sent.Add(1)
			time.Sleep(5 * time.Millisecond)
		}
	}()
	return p
}

// waitMore waits until n more events than now are acknowledged.
func (p *scenarioProducer) waitMore(t *testing.T, n int64) {
	t.Helper()
	want := p.sent.Load() + n
	deadline := time.Now().Add(60 * time.Second)
	for p.sent.Load() < want {
		select {
		case err := <-p.done:
			t.Fatalf("producer stopped: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("producer at %d acknowledged events, waited 60 s for %d", p.sent.Load(), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Stop stops the producer and returns what was acknowledged, and the
// longest wait between two acknowledgements.
func (p *scenarioProducer) Stop(t *testing.T) (map[string]uint64, time.Duration) {
	t.Helper()
	close(p.stop)
	if err := <-p.done; err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return maps.Clone(p.acked), p.maxGap
}

// running returns the running replicas' Mains.
func (c *sharelogCluster) running() []*testMain {
	var out []*testMain
	for _, r := range c.Replicas {
		if r.testMain != nil {
			out = append(out, r.testMain)
		}
	}
	return out
}

// index returns the index of m among the replicas.
func (c *sharelogCluster) index(m *testMain) int {
	for i, r := range c.Replicas {
		if r.testMain == m {
			return i
		}
	}
	c.t.Fatalf("%s is no running replica", m.Config.Replica)
	return -1
}

// TestClusterScenario is issue 15's whole-cluster test: three NATS nodes
// (streams at R3) and three sharelog replicas (the real serve code, lease
// TTL 2 s), under a steady load of disclosures published over NATS
// throughout. 200 recipients on the nats channel each received one
// person's data; that person's erasure is fanned out to all of them, and
// the leader crashes while the notices go out. The NATS node leading
// SHARELOG_IN is killed during the load and restarted; then every replica
// is stopped and started again, the crashed one included. Afterwards every
// acknowledged event is in every ledger once, at the same ledger and stream
// sequence; every recipient has one notice id in SHARELOG_NOTICES, the one
// its obligation has on every replica, delivered; the ledgers have the same
// size and roots; no replica's witness sees a difference. Last, one replica
// loses its ledger and rebuilds itself from a snapshot the leader takes,
// and equals the others.
func TestClusterScenario(t *testing.T) {
	start := time.Now()
	c := startCluster(t, clusterOptions{Replicas: 3, Configure: func(i int, cfg *Config) {
		cfg.Replica = "replica-" + strconv.Itoa(i+1)
		cfg.LeaseTTL = replicaTTL
		cfg.SnapshotEvery = 0 // the snapshot is taken explicitly, at the end
	}})
	ctx := context.Background()
	leader, _ := oneLeader(t, c.running(), 10*time.Second)
	t.Logf("cluster of 3 NATS nodes and 3 replicas ready in %s; %s leads", time.Since(start).Round(time.Millisecond), leader.Config.Replica)

	// 1. 200 recipients on the nats channel, each sent a disclosure of one
	// person; the load's disclosures (another person, to acro) go on
	// throughout.
	person := ledger.Subject{Scheme: "dbs-ref", ID: secretID}
	loadPerson := []ledger.Subject{{Scheme: "dbs-ref", ID: "LOAD-PERSON-3318"}}
	var recipients []string
	events := []map[string]any{recipientEvent("acro", map[string]any{"type": "nats"})}
	for i := range scenarioRecipients {
		r := fmt.Sprintf("nats-%03d", i)
		recipients = append(recipients, r)
		events = append(events, recipientEvent(r, map[string]any{"type": "nats"}))
	}
	t0 := time.Now().UTC().Add(-90 * 24 * time.Hour).Truncate(time.Second)
	for _, r := range recipients {
		events = append(events, disclosure("casework", "d-"+r, []ledger.Subject{person}, r, []string{"user.criminal_history"}, t0))
	}
	follower := without(c.running(), leader)[0]
	resp, body := postEvents(t, follower.HTTP.URL(), "application/cloudevents-batch+json", nil, mustJSON(t, events))
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("recipients and disclosures: %d %s", resp.StatusCode, body)
	}
	var acc slhttp.Accepted
	if err := json.Unmarshal(body, &acc); err != nil || len(acc.Accepted) != len(events) {
		t.Fatalf("answer %s: %d accepted, want %d (%v)", body, len(acc.Accepted), len(events), err)
	}
	c.WaitApplied(acc.Accepted[len(acc.Accepted)-1].StreamSeq)

	nc, js := c.NATS.Connect() // the producer's and the test's connection, to every node
	producer := startProducer(js, loadPerson, "acro")
	producer.waitMore(t, 100)

	// 2. The erasure, through a follower; the leader crashes as soon as the
	// first notice is in SHARELOG_NOTICES.
	seen := make(chan *natsio.Msg, 4*scenarioRecipients)
	sub, err := nc.ChanSubscribe(notify.SubjectNoticePrefix+">", seen)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	erasure := map[string]any{
		"specversion": "1.0", "id": "erasure-1", "source": "dpo", "type": ledger.TypeErasure,
		"time": time.Now().UTC().Format(time.RFC3339), "datacontenttype": "application/json",
		"data": map[string]any{"request": "req-erase-1", "subject": person, "ground": "art17-1-a",
			"decidedAt": time.Now().UTC().Add(-time.Hour).Format(time.RFC3339), "decidedBy": "dpo", "regime": "dpa-part3"},
	}
	if resp, body := postEvents(t, follower.HTTP.URL(), "application/cloudevents+json", nil, mustJSON(t, erasure)); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("erasure: %d %s", resp.StatusCode, body)
	}
	select {
	case <-seen:
	case <-time.After(30 * time.Second):
		t.Fatal("no notice published within 30 s of the erasure")
	}
	// The crash: the leader's NATS connection closes without resigning the
	// lease, and only then is the process closed. This is the in-process
	// stand-in for kill -9: the lease stays held until its TTL runs out, and
	// whatever the leader had not recorded of its deliveries is lost with it.
	crashed := c.index(leader)
	crash := time.Now()
	leader.Conn.Close()
	seenAtCrash, recordedAtCrash := len(seen)+1, 0
	if st, err := follower.Store.Status(ctx, "req-erase-1"); err == nil {
		for _, o := range st.Obligations {
			if o.State == ledger.StateDelivered {
				recordedAtCrash++
			}
		}
	}
	rest := without(c.running(), leader)
	next, at := oneLeader(t, rest, 3*replicaTTL)
	failover := at.Sub(crash)
	t.Logf("failover: %s crashed with %d of %d notices seen published and %d recorded delivered; %s led %s later (lease TTL %s)",
		leader.Config.Replica, seenAtCrash, scenarioRecipients, recordedAtCrash, next.Config.Replica, failover.Round(time.Millisecond), replicaTTL)
	if recordedAtCrash == scenarioRecipients {
		t.Errorf("every notice was recorded delivered before the crash: the leader did not crash during the fan-out")
	}
	if failover > replicaTTL+time.Second {
		t.Errorf("failover took %s, want at most the TTL %s and a second", failover, replicaTTL)
	}
	leader.Close() // its errors are those of a crashed process
	c.Replicas[crashed].testMain = nil

	// 3. The NATS node leading SHARELOG_IN is lost during the load, and
	// comes back later.
	nodeLeader := c.streamLeader(js, nats.StreamIn)
	killed := time.Now()
	c.NATS.Kill(nodeLeader)
	producer.waitMore(t, 100)
	t.Logf("killed NATS node %s (leader of %s); 100 events acknowledged %s later", c.NATS.Nodes()[nodeLeader].Name, nats.StreamIn, time.Since(killed).Round(time.Millisecond))

	// Every notice is delivered and recorded, by one leader or the other.
	obligations := func(m *testMain) (map[string]ledger.Obligation, error) {
		st, err := m.Store.Status(ctx, "req-erase-1")
		if err != nil {
			return nil, err
		}
		out := map[string]ledger.Obligation{}
		for _, o := range st.Obligations {
			out[o.Recipient] = o
		}
		return out, nil
	}
	allDelivered := func() error {
		for _, m := range c.running() {
			obs, err := obligations(m)
			if err != nil {
				return fmt.Errorf("%s: %w", m.Config.Replica, err)
			}
			if len(obs) != scenarioRecipients {
				return fmt.Errorf("%s: %d obligations, want %d", m.Config.Replica, len(obs), scenarioRecipients)
			}
			for _, r := range recipients {
				if o := obs[r]; o.State != ledger.StateDelivered {
					return fmt.Errorf("%s: %s: %s (%d attempts, %s)", m.Config.Replica, r, o.State, o.Attempts, o.LastError)
				}
			}
		}
		return nil
	}
	checkFor(t, 60*time.Second, allDelivered)
	t.Logf("all %d notices recorded delivered %s after the crash (the NATS node loss included)", scenarioRecipients, time.Since(crash).Round(time.Millisecond))
	c.NATS.Restart(nodeLeader)
	producer.waitMore(t, 100)
	t.Logf("NATS node %s back after %s", c.NATS.Nodes()[nodeLeader].Name, time.Since(killed).Round(time.Millisecond))

	// 4. Everything restarts, the crashed replica included, while the
	// producer goes on publishing.
	for i, r := range c.Replicas {
		if r.testMain != nil {
			c.StopReplica(i)
		}
	}
	for i := range c.Replicas {
		c.RestartReplica(i)
	}
	producer.waitMore(t, 100)
	acked, maxGap := producer.Stop(t)
	c.NATS.WaitStream(js, nats.StreamIn, 3)
	ms := c.running()
	oneLeader(t, ms, 3*replicaTTL)
	checkFor(t, 60*time.Second, allDelivered)
	caughtUp(t, ms...)

	// Every acknowledged event is in every ledger once, at the same ledger
	// and stream sequence.
	var last uint64
	for id, seq := range acked {
		last = max(last, seq)
		first, err := ms[0].Store.Lookup(ctx, "casework", id)
		if err != nil {
			t.Errorf("%s: acknowledged event %s: %v", ms[0].Config.Replica, id, err)
			continue
		}
		if first.StreamSeq != seq {
			t.Errorf("%s: event %s at stream sequence %d, acknowledged at %d", ms[0].Config.Replica, id, first.StreamSeq, seq)
		}
		for _, m := range ms[1:] {
			e, err := m.Store.Lookup(ctx, "casework", id)
			switch {
			case err != nil:
				t.Errorf("%s: acknowledged event %s: %v", m.Config.Replica, id, err)
			case e.Seq != first.Seq || e.StreamSeq != first.StreamSeq:
				t.Errorf("event %s: ledger/stream sequence %d/%d on %s, %d/%d on %s", id, first.Seq, first.StreamSeq, ms[0].Config.Replica, e.Seq, e.StreamSeq, m.Config.Replica)
			}
		}
	}
	// Once: each ledger counts as many disclosures of the load's person as
	// were acknowledged.
	for _, m := range ms {
		if w := who(t, m, "dbs-ref:"+loadPerson[0].ID); w.Disclosures != len(acked) {
			t.Errorf("%s: %d disclosures of the load's person, %d acknowledged", m.Config.Replica, w.Disclosures, len(acked))
		}
	}
	t.Logf("%d events acknowledged (last at stream sequence %d), each found once in all 3 ledgers; the producer waited at most %s for an acknowledgement", len(acked), last, maxGap.Round(time.Millisecond))

	// Every recipient has one notice id in SHARELOG_NOTICES, the one its
	// obligation has on every replica.
	notices, err := obligations(ms[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms[1:] {
		obs, err := obligations(m)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recipients {
			if obs[r].Notice != notices[r].Notice {
				t.Errorf("%s: notice %s on %s, %s on %s", r, notices[r].Notice, ms[0].Config.Replica, obs[r].Notice, m.Config.Replica)
			}
		}
	}
	// The read is retried: the cluster has just been through a node's loss
	// and every replica's restart, and a request can find no responder
	// while the stream's leader is elected again.
	var inStream map[string][]string
	checkFor(t, 30*time.Second, func() (err error) {
		inStream, err = noticesInStream(ctx, js)
		return err
	})
	repeated := 0
	for _, r := range recipients {
		got := inStream[r]
		if ids := slices.Compact(slices.Clone(got)); len(ids) != 1 || ids[0] != notices[r].Notice {
			t.Errorf("%s: notices %v in %s, want one id, %s", r, got, notify.StreamNotices, notices[r].Notice)
		}
		if len(got) > 1 {
			repeated++
		}
	}
	if len(inStream) != scenarioRecipients {
		t.Errorf("%s holds notices to %d recipients, want %d", notify.StreamNotices, len(inStream), scenarioRecipients)
	}
	t.Logf("%d recipients, one notice id each in %s; %d of them with the notice stored more than once", scenarioRecipients, notify.StreamNotices, repeated)

	// The same ledger everywhere: size and root, and roots at earlier sizes.
	size := sameTree(t, ms)
	for _, at := range []int64{1, int64(scenarioRecipients) + 1, size / 3, size / 2, size - 1} {
		want, err := ms[0].Store.RootAt(ctx, at)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ms[1:] {
			if got, err := m.Store.RootAt(ctx, at); err != nil || got != want {
				t.Errorf("root at size %d: %s has %x (%v), %s has %x", at, m.Config.Replica, got, err, ms[0].Config.Replica, want)
			}
		}
	}

	// No witness difference: each replica has checked both others and
	// found them equal, and is ready with no witness line.
	for _, m := range ms {
		witnessAgrees(t, c, m)
	}

	// Rebuild: one replica loses its ledger (its site key stays); the
	// leader takes a snapshot; the replica restores it and catches up.
	lead, _ := oneLeader(t, ms, 3*replicaTTL)
	lost := (c.index(lead) + 1) % len(c.Replicas)
	c.StopReplica(lost)
	if err := os.RemoveAll(filepath.Join(c.Replicas[lost].Config.Data, "ledger")); err != nil {
		t.Fatal(err)
	}
	info, err := lead.Snapshots.Take(ctx, lead.Store)
	if err != nil {
		t.Fatal(err)
	}
	rebuilt := time.Now()
	c.RestartReplica(lost)
	r := c.Replicas[lost]
	logs := r.logs.String()
	if !strings.Contains(logs, "rebuilding the ledger from a snapshot") {
		t.Fatalf("%s did not rebuild from the snapshot:\n%s", r.Name, logs)
	}
	if !strings.Contains(logs, "the ledger rebuilt from a snapshot agrees with the other replicas' checkpoints") {
		t.Errorf("%s served without checking its rebuilt ledger against the others:\n%s", r.Name, logs)
	}
	ms = c.running()
	caughtUp(t, ms...)
	for id, seq := range acked {
		if e, err := r.Store.Lookup(ctx, "casework", id); err != nil || e.StreamSeq != seq {
			t.Errorf("%s rebuilt: acknowledged event %s (stream sequence %d): %+v, %v", r.Name, id, seq, e, err)
		}
	}
	t.Logf("%s rebuilt from snapshot %s (%d entries) and caught up in %s", r.Name, info.Name, info.Position.Count, time.Since(rebuilt).Round(time.Millisecond))
	if got := sameTree(t, ms); got != size {
		t.Errorf("after the rebuild the ledgers hold %d entries, before %d", got, size)
	}
	witnessAgrees(t, c, r.testMain)
	t.Logf("scenario done in %s", time.Since(start).Round(time.Millisecond))
}

// sameTree fails t unless every replica of ms has the same ledger size,
// tree size and root, and returns the size.
func sameTree(t *testing.T, ms []*testMain) int64 {
	t.Helper()
	ctx := context.Background()
	size, root, err := ms[0].Store.TreeHead(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		n, h, err := m.Store.TreeHead(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if m.Store.Count() != uint64(size) || n != size || h != root {
			t.Errorf("%s: %d entries, tree size %d root %x; %s: size %d root %x", m.Config.Replica, m.Store.Count(), n, h, ms[0].Config.Replica, size, root)
		}
	}
	return size
}

// witnessAgrees waits until m's witness has found each other replica's
// checkpoint equal to its own tree, then checks that it counts no
// difference and that /readyz is 200 with no witness line.
func witnessAgrees(t *testing.T, c *sharelogCluster, m *testMain) {
	t.Helper()
	waitFor(t, m.Config.Replica+" checks the others", func() error {
		metrics := get(t, m.HTTP.URL()+"/metrics")
		for _, o := range c.Replicas {
			if o.Name != m.Config.Replica && !strings.Contains(metrics, `sharelog_witness_checks_total{replica="`+o.Name+`",result="match"}`) {
				return fmt.Errorf("no match with %s", o.Name)
			}
		}
		return nil
	})
	if metrics := get(t, m.HTTP.URL()+"/metrics"); strings.Contains(metrics, "result=\"mismatch\"") || containsMismatch(metrics) {
		t.Errorf("%s: the witness counts a difference:\n%s", m.Config.Replica, grepLines(metrics, "sharelog_witness"))
	}
	if status, body := getReady(t, m.HTTP.URL()); status != http.StatusOK || !strings.HasPrefix(body, "ready\n") || strings.Contains(body, "witness:") {
		t.Errorf("%s: /readyz %d %q, want 200, ready, no witness line", m.Config.Replica, status, body)
	}
}

// containsMismatch says whether metrics has a sharelog_witness_mismatch
// gauge at 1.
func containsMismatch(metrics string) bool {
	for _, line := range strings.Split(metrics, "\n") {
		if strings.HasPrefix(line, "sharelog_witness_mismatch{") && strings.HasSuffix(line, " 1") {
			return true
		}
	}
	return false
}

// noticesInStream reads SHARELOG_NOTICES whole and returns the notice ids
// stored for each recipient, in stream order.
func noticesInStream(ctx context.Context, js jetstream.JetStream) (map[string][]string, error) {
	cons, err := js.OrderedConsumer(ctx, notify.StreamNotices, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return nil, err
	}
	batch, err := cons.FetchNoWait(10 * scenarioRecipients)
	if err != nil {
		return nil, err
	}
	inStream := map[string][]string{}
	for msg := range batch.Messages() {
		var ev struct{ ID string }
		if err := json.Unmarshal(msg.Data(), &ev); err != nil {
			return nil, fmt.Errorf("notice on %s: %w", msg.Subject(), err)
		}
		r := strings.TrimPrefix(msg.Subject(), notify.SubjectNoticePrefix)
		inStream[r] = append(inStream[r], ev.ID)
	}
	return inStream, batch.Error()
}
