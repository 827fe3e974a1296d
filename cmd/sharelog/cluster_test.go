package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sharelog/sharelog/internal/clustertest"
	slhttp "github.com/sharelog/sharelog/internal/http"
	"github.com/sharelog/sharelog/internal/ledger"
	"github.com/sharelog/sharelog/internal/nats"
	"github.com/sharelog/sharelog/internal/notify"
)

// The cluster harness: a three-node NATS cluster with JetStream in process
// (internal/clustertest) and sharelog replicas on it, each the real serve
// code (Main) with its own data directory and the same keys, as
// "Growing to replicas" in README.md deploys them. startCluster returns it;
// its methods kill and restart NATS nodes and stop and restart replicas.

// sharelogCluster is a NATS cluster and the sharelog replicas on it.
type sharelogCluster struct {
	t    *testing.T
	NATS *clustertest.Cluster
	// Replicas are the sharelog replicas in order; a stopped replica's
	// Main is nil until RestartReplica.
	Replicas []*replica
}

// replica is one sharelog replica: its configuration, and its running
// Main (nil while stopped).
type replica struct {
	*testMain
	Name   string
	Config Config
}

// clusterOptions shapes startCluster's deployment.
type clusterOptions struct {
	// Replicas is how many sharelog replicas run (default 2).
	Replicas int
	// StreamReplicas is --stream-replicas (default 3).
	StreamReplicas int
	// Configure, when set, adjusts replica i's configuration before it
	// first starts (the replica's name, data directory, keys and NATS URLs
	// are set already).
	Configure func(i int, cfg *Config)
}

// startCluster starts a three-node NATS cluster and the sharelog replicas
// of opts on it, one after the other, and stops them all at the end of the
// test. Every replica has its own data directory and checkpoint key, and
// the same master key and site secret: the keyed hashes of subjects, and
// what the master key wraps, must agree between replicas.
func startCluster(t *testing.T, opts clusterOptions) *sharelogCluster {
	t.Helper()
	if opts.Replicas == 0 {
		opts.Replicas = 2
	}
	if opts.StreamReplicas == 0 {
		opts.StreamReplicas = 3
	}
	c := &sharelogCluster{t: t, NATS: clustertest.Start(t, 3)}
	keys := t.TempDir() // the site's keys, kept apart from every data directory
	master := filepath.Join(keys, "master.key")
	site := make([]byte, 32)
	writeKey(t, master)
	rand.Read(site)
	for i := range opts.Replicas {
		name := "replica-" + strconv.Itoa(i+1)
		cfg := testConfig(filepath.Join(t.TempDir(), name))
		if err := os.MkdirAll(cfg.Data, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(cfg.Data, "site.key"), site, 0o600); err != nil {
			t.Fatal(err)
		}
		cfg.NATS = c.NATS.URLs()
		cfg.StreamReplicas = opts.StreamReplicas
		cfg.MasterKeyFile = master
		cfg.CheckpointKeyFile = filepath.Join(keys, name+"-checkpoint.key")
		if opts.Configure != nil {
			opts.Configure(i, &cfg)
		}
		c.Replicas = append(c.Replicas, &replica{Name: name, Config: cfg})
	}
	t.Cleanup(func() {
		for _, r := range c.Replicas {
			if r.testMain != nil {
				r.Close()
			}
		}
	})
	for i := range c.Replicas {
		c.startReplica(i)
	}
	return c
}

// writeKey writes 32 random bytes to path, mode 0600.
func writeKey(t *testing.T, path string) {
	t.Helper()
	key := make([]byte, 32)
	rand.Read(key)
	if err := os.WriteFile(path, key, 0o600); err != nil {
		t.Fatal(err)
	}
}

func (c *sharelogCluster) startReplica(i int) {
	c.t.Helper()
	r := c.Replicas[i]
	logs := &syncBuffer{}
	m := NewMain(r.Config, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})).With("replica", r.Name))
	if err := m.Open(context.Background()); err != nil {
		m.Close()
		c.t.Fatalf("%s: open: %v\n%s", r.Name, err, logs)
	}
	r.testMain = &testMain{Main: m, logs: logs}
}

// StopReplica closes replica i, as a clean shutdown does.
func (c *sharelogCluster) StopReplica(i int) {
	c.t.Helper()
	r := c.Replicas[i]
	if r.testMain == nil {
		c.t.Fatalf("%s is not running", r.Name)
	}
	if err := r.Close(); err != nil {
		c.t.Errorf("%s: close: %v", r.Name, err)
	}
	r.testMain = nil
}

// RestartReplica starts replica i again on its data directory.
func (c *sharelogCluster) RestartReplica(i int) {
	c.t.Helper()
	if c.Replicas[i].testMain != nil {
		c.t.Fatalf("%s is running", c.Replicas[i].Name)
	}
	c.startReplica(i)
}

// WaitApplied waits until every running replica's ledger has applied
// SHARELOG_IN up to seq.
func (c *sharelogCluster) WaitApplied(seq uint64) {
	c.t.Helper()
	for _, r := range c.Replicas {
		if r.testMain == nil {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		err := r.Store.WaitApplied(ctx, seq)
		cancel()
		if err != nil {
			c.t.Fatalf("%s: applied %d, waiting for %d: %v", r.Name, r.Store.Applied(), seq, err)
		}
	}
}

// streamLeader returns the index of the NATS node leading stream.
func (c *sharelogCluster) streamLeader(js jetstream.JetStream, stream string) int {
	c.t.Helper()
	info := c.NATS.WaitStream(js, stream, c.Replicas[0].Config.streamReplicas())
	for i, nd := range c.NATS.Nodes() {
		if nd.Name == info.Cluster.Leader {
			return i
		}
	}
	c.t.Fatalf("stream %s: leader %q is no node of the cluster", stream, info.Cluster.Leader)
	return -1
}

// sharelogStreams are the streams (and the checkpoint bucket's stream) that
// --stream-replicas replicates.
var sharelogStreams = []string{nats.StreamIn, nats.StreamRejected, notify.StreamNotices, nats.StreamCheckpoints}

// TestClusterStreamReplicas starts two replicas with --stream-replicas 3 on
// a three-node cluster: each of sharelog's streams and its checkpoint
// bucket has a leader and two current peers, and both replicas are ready.
func TestClusterStreamReplicas(t *testing.T) {
	c := startCluster(t, clusterOptions{})
	_, js := c.NATS.Connect()
	for _, name := range sharelogStreams {
		info := c.NATS.WaitStream(js, name, 3)
		if info.Config.Replicas != 3 {
			t.Errorf("%s: %d replicas, want 3", name, info.Config.Replicas)
		}
	}
	for _, r := range c.Replicas {
		if body := get(t, r.HTTP.URL()+"/readyz"); !strings.Contains(body, "ready") {
			t.Errorf("%s: /readyz %q", r.Name, body)
		}
	}
}

// TestStreamReplicasFlag refuses --stream-replicas values sharelog cannot
// honour, before anything starts.
func TestStreamReplicasFlag(t *testing.T) {
	for _, tt := range []struct {
		replicas int
		nats     string
		want     string
	}{
		{3, "", "--stream-replicas 3 needs --nats"},
		{6, "nats://127.0.0.1:1", "JetStream keeps 1 to 5 copies"},
		{-1, "", "JetStream keeps 1 to 5 copies"},
	} {
		cfg := testConfig(t.TempDir())
		cfg.StreamReplicas, cfg.NATS = tt.replicas, tt.nats
		m := NewMain(cfg, slog.New(slog.DiscardHandler))
		err := m.Open(context.Background())
		m.Close()
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("--stream-replicas %d --nats %q: %v, want %q", tt.replicas, tt.nats, err, tt.want)
		}
	}
}

// TestClusterNodeLoss publishes a steady load of disclosures over NATS, as
// producers do, to two replicas on a three-node cluster at R3. Meanwhile it
// kills the NATS node that leads SHARELOG_IN and restarts it, then stops
// one replica and restarts it. Every event JetStream acknowledged is in
// both ledgers exactly once, at the same ledger sequence in each.
func TestClusterNodeLoss(t *testing.T) {
	c := startCluster(t, clusterOptions{})
	r1, r2 := c.Replicas[0], c.Replicas[1]
	registerRecipient(t, r1.testMain, "acro")
	_, js := c.NATS.Connect() // the producer's connection, to every node
	subj := []ledger.Subject{{Scheme: "dbs-ref", ID: secretID}}
	at := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

	const total = 600
	var mu sync.Mutex
	acked := map[string]uint64{} // event id -> its SHARELOG_IN sequence
	progress := make(chan int, total)
	done := make(chan error, 1)
	go func() {
		// One producer, one event every 5 ms; an event JetStream did not
		// acknowledge is sent again, with the same Nats-Msg-Id and event
		// id, until it is.
		for n := range total {
			id := fmt.Sprintf("load-%04d", n)
			raw, _ := json.Marshal(disclosure("casework", id, subj, "acro", []string{"user.criminal_history"}, at))
			deadline := time.Now().Add(60 * time.Second)
			for {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				ack, err := js.Publish(ctx, "sharelog.in.casework", raw, jetstream.WithMsgID(nats.MsgID("casework", id)))
				cancel()
				if err == nil {
					mu.Lock()
					acked[id] = ack.Sequence
					mu.Unlock()
					break
				}
				if time.Now().After(deadline) {
					done <- fmt.Errorf("event %s not acknowledged in 60 s: %w", id, err)
					return
				}
				time.Sleep(50 * time.Millisecond)
			}
			progress <- n + 1
			time.Sleep(5 * time.Millisecond)
		}
		done <- nil
	}()
	waitProgress := func(n int) {
		t.Helper()
		for {
			select {
			case got := <-progress:
				if got >= n {
					return
				}
			case err := <-done:
				if err == nil {
					// Every event was acknowledged, n among them (select
					// picks at random when progress has some left too).
					done <- nil
					return
				}
				t.Fatalf("producer stopped before %d events: %v", n, err)
			}
		}
	}

	waitProgress(total / 4)
	leader := c.streamLeader(js, nats.StreamIn)
	start := time.Now()
	c.NATS.Kill(leader)
	t.Logf("killed NATS node %s, the leader of %s, after %d events", c.NATS.Nodes()[leader].Name, nats.StreamIn, total/4)
	waitProgress(total / 2) // the load goes on with two nodes
	t.Logf("%d events acknowledged with the node down, %s after the kill", total/2-total/4, time.Since(start).Round(time.Millisecond))
	c.NATS.Restart(leader)
	waitProgress(3 * total / 4)
	c.StopReplica(1)
	time.Sleep(300 * time.Millisecond) // events arrive while replica 2 is down
	c.RestartReplica(1)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	c.NATS.WaitStream(js, nats.StreamIn, 3)

	var last uint64
	for _, seq := range acked {
		last = max(last, seq)
	}
	c.WaitApplied(last)
	ctx := context.Background()
	if len(acked) != total {
		t.Fatalf("%d events acknowledged, want %d", len(acked), total)
	}
	for id := range acked {
		e1, err1 := r1.Store.Lookup(ctx, "casework", id)
		e2, err2 := r2.Store.Lookup(ctx, "casework", id)
		switch {
		case err1 != nil || err2 != nil:
			t.Errorf("acknowledged event %s: replica 1: %v, replica 2: %v", id, err1, err2)
		case e1.Seq != e2.Seq || e1.StreamSeq != e2.StreamSeq:
			t.Errorf("event %s: ledger/stream sequence %d/%d on replica 1, %d/%d on replica 2", id, e1.Seq, e1.StreamSeq, e2.Seq, e2.StreamSeq)
		}
	}
	for _, r := range c.Replicas {
		if w := who(t, r.testMain, "dbs-ref:"+secretID); w.Disclosures != total || len(w.Recipients) != 1 || w.Recipients[0].Count != total {
			t.Errorf("%s: who answers %d disclosures (%d recipients), want %d to acro", r.Name, w.Disclosures, len(w.Recipients), total)
		}
	}
}

// TestClusterReadYourWrites writes through replica 1 and reads through
// replica 2, as two requests behind one load balancer may land: a read with
// the write's stream sequence in Sharelog-Applied sees the write, even from
// a replica that was stopped when it was made; a sequence the stream has
// not reached is answered 503 with Retry-After after the bound; a bad value
// or a write with the header is refused with 400.
func TestClusterReadYourWrites(t *testing.T) {
	c := startCluster(t, clusterOptions{})
	r1, r2 := c.Replicas[0], c.Replicas[1]
	registerRecipient(t, r1.testMain, "acro")
	subj := []ledger.Subject{{Scheme: "dbs-ref", ID: secretID}}
	at := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	c.StopReplica(1) // replica 2 is behind: it misses the write
	resp, body := postEvents(t, r1.HTTP.URL(), "application/cloudevents+json", nil,
		mustJSON(t, disclosure("casework", "ryw-1", subj, "acro", []string{"user.criminal_history"}, at)))
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("write: %d %s", resp.StatusCode, body)
	}
	var acc slhttp.Accepted
	if err := json.Unmarshal(body, &acc); err != nil || len(acc.Accepted) != 1 || acc.Accepted[0].StreamSeq == 0 {
		t.Fatalf("write answer %s: no stream sequence (%v)", body, err)
	}
	seq := acc.Accepted[0].StreamSeq
	c.RestartReplica(1)

	read := func(r *replica, method, path, applied, body string) (*http.Response, string) {
		t.Helper()
		req, err := http.NewRequest(method, r.HTTP.URL()+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(slhttp.HeaderApplied, applied)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	whoBody := `{"subject":{"scheme":"dbs-ref","id":"` + secretID + `"}}`
	resp2, got := read(r2, http.MethodPost, "/v1/who", strconv.FormatUint(seq, 10), whoBody)
	var w ledger.Who
	if resp2.StatusCode != http.StatusOK || json.Unmarshal([]byte(got), &w) != nil || w.Disclosures != 1 {
		t.Fatalf("who on replica 2 with %s: %d: %s, want the disclosure written through replica 1", slhttp.HeaderApplied, resp2.StatusCode, got)
	}
	// The CLI sends it with --after-seq.
	if out := r2.cli(t, "disclosure", "ryw-1", "--after-seq", strconv.FormatUint(seq, 10), "--json"); !strings.Contains(out, `"ryw-1"`) {
		t.Errorf("sharelog disclosure --after-seq on replica 2: %s", out)
	}

	start := time.Now()
	resp3, got := read(r2, http.MethodGet, "/v1/recipients", strconv.FormatUint(seq+1_000_000, 10), "")
	waited := time.Since(start)
	if resp3.StatusCode != http.StatusServiceUnavailable || resp3.Header.Get("Retry-After") == "" || !strings.Contains(got, "has not applied SHARELOG_IN up to sequence") {
		t.Errorf("a sequence not yet in the stream: %d (Retry-After %q) %s, want 503 with Retry-After", resp3.StatusCode, resp3.Header.Get("Retry-After"), got)
	}
	if waited < slhttp.DefaultAppliedWait || waited > slhttp.DefaultAppliedWait+5*time.Second {
		t.Errorf("answered after %s, want the bound, %s", waited, slhttp.DefaultAppliedWait)
	}
	for _, tt := range []struct{ method, path, applied, want string }{
		{http.MethodGet, "/v1/recipients", "x", "positive integer"},
		{http.MethodGet, "/v1/recipients", "0", "positive integer"},
		{http.MethodGet, "/v1/recipients", "-3", "positive integer"},
		{http.MethodPost, "/v1/events", "1", "postEvents does not take the Sharelog-Applied header"},
	} {
		resp, got := read(r2, tt.method, tt.path, tt.applied, "[]")
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(got, tt.want) {
			t.Errorf("%s %s with %s %q: %d %s, want 400 saying %q", tt.method, tt.path, slhttp.HeaderApplied, tt.applied, resp.StatusCode, got, tt.want)
		}
	}
	var p slhttp.Problem
	if _, got := read(r2, http.MethodGet, "/v1/recipients", "y", ""); json.Unmarshal([]byte(got), &p) != nil || p.Code != ledger.EINVALID {
		t.Errorf("bad %s: problem %s", slhttp.HeaderApplied, got)
	}
}
