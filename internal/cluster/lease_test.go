package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/test"
	natsio "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sharelog/sharelog/internal/cluster"
)

// testTTL is the lease TTL of these tests: short, but long enough for a
// loaded machine to renew it in time. SHARELOG_TEST_LEASE_TTL sets another,
// to measure hand-overs at the default (10s).
var testTTL = func() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("SHARELOG_TEST_LEASE_TTL")); err == nil && d >= cluster.MinTTL {
		return d
	}
	return 2 * time.Second
}()

func TestValidName(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"a", true},
		{"replica-1", true},
		{"eu_west_2", true},
		{strings.Repeat("x", 64), true},
		{"", false},
		{strings.Repeat("x", 65), false},
		{"a.b", false}, // two subject tokens
		{"a*", false},
		{"a>", false},
		{"a b", false},
		{"été", false},
	} {
		if err := cluster.ValidName(tc.name); (err == nil) != tc.ok {
			t.Errorf("ValidName(%q) = %v, want ok %v", tc.name, err, tc.ok)
		}
	}
}

func TestNilLeaseIsLeader(t *testing.T) {
	var l *cluster.Lease
	if !l.IsLeader() || l.Changed() != nil || l.Changes() != 0 || l.Leader() != "" {
		t.Errorf("nil lease: leader %v, changed %v, changes %d, leader %q", l.IsLeader(), l.Changed(), l.Changes(), l.Leader())
	}
	ran := false
	run := l.WhileLeader(func(context.Context) error { ran = true; return nil })
	if err := run(context.Background()); err != nil || !ran {
		t.Errorf("nil lease WhileLeader: ran %v, err %v", ran, err)
	}
}

func TestOpenRefusesBadConfig(t *testing.T) {
	ns := runServer(t)
	nc, js := connect(t, ns.ClientURL())
	defer nc.Close()
	for _, cfg := range []cluster.Config{
		{Name: "a.b"},
		{Name: "a", TTL: 500 * time.Millisecond},
		{Name: "a", TTL: 2 * time.Second, Margin: time.Second},
	} {
		if _, err := cluster.Open(context.Background(), js, cfg, nil); err == nil {
			t.Errorf("Open(%+v): no error", cfg)
		}
	}
}

// proxy forwards TCP connections to a NATS server until Cut, which closes
// them all and refuses new ones: a replica cut off from NATS.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []net.Conn
	cut    bool
}

func newProxy(t *testing.T, target string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, s)
			p.mu.Unlock()
			go func() { io.Copy(s, c); s.Close() }()
			go func() { io.Copy(c, s); c.Close() }()
		}
	}()
	t.Cleanup(p.Cut)
	return p
}

func (p *proxy) URL() string { return "nats://" + p.ln.Addr().String() }

func (p *proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ln.Close()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func runServer(t *testing.T) interface{ ClientURL() string } {
	opts := natsserver.DefaultTestOptions
	opts.Port = -1
	opts.JetStream = true
	opts.StoreDir = t.TempDir()
	ns := natsserver.RunServer(&opts)
	t.Cleanup(ns.Shutdown)
	return ns
}

func connect(t *testing.T, url string) (*natsio.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := natsio.Connect(url, natsio.MaxReconnects(-1), natsio.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

// span is a time a gated loop ran on a replica.
type span struct {
	replica     string
	start, stop time.Time
}

// replica is one lease and its gated loop, recording when it ran.
type replica struct {
	name   string
	lease  *cluster.Lease
	nc     *natsio.Conn
	cancel context.CancelFunc
	done   chan error
}

// book records the spans of every replica's gated loop.
type book struct {
	mu    sync.Mutex
	spans []span
}

func (b *book) run(name string) func(context.Context) error {
	return func(ctx context.Context) error {
		start := time.Now()
		<-ctx.Done()
		b.mu.Lock()
		b.spans = append(b.spans, span{name, start, time.Now()})
		b.mu.Unlock()
		return nil
	}
}

// overlaps returns an error if two replicas' loops ran at once.
func (b *book) overlaps() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, x := range b.spans {
		for _, y := range b.spans[i+1:] {
			if x.replica != y.replica && x.start.Before(y.stop) && y.start.Before(x.stop) {
				return fmt.Errorf("%s ran %s..%s and %s ran %s..%s at once", x.replica, x.start.Format("15:04:05.000"), x.stop.Format("15:04:05.000"),
					y.replica, y.start.Format("15:04:05.000"), y.stop.Format("15:04:05.000"))
			}
		}
	}
	return nil
}

func startReplica(t *testing.T, url, name string, b *book) *replica {
	t.Helper()
	nc, js := connect(t, url)
	t.Cleanup(nc.Close)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	l, err := cluster.Open(context.Background(), js, cluster.Config{Name: name, TTL: testTTL}, logger)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &replica{name: name, lease: l, nc: nc, cancel: cancel, done: make(chan error, 2)}
	go func() { r.done <- l.Run(ctx) }()
	go func() { r.done <- l.WhileLeader(b.run(name))(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop ends the replica cleanly (Run resigns), once.
func (r *replica) stop(t *testing.T) {
	if r.cancel == nil {
		return
	}
	r.cancel()
	r.cancel = nil
	for range 2 {
		select {
		case err := <-r.done:
			if err != nil {
				t.Errorf("%s: %v", r.name, err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("%s: did not stop", r.name)
		}
	}
}

// leaders returns the replicas that are leader now.
func leaders(rs []*replica) []*replica {
	var out []*replica
	for _, r := range rs {
		if r.lease.IsLeader() {
			out = append(out, r)
		}
	}
	return out
}

// waitLeader waits for exactly one leader among rs and returns it and when
// it was seen.
func waitLeader(t *testing.T, rs []*replica, within time.Duration) (*replica, time.Time) {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if ls := leaders(rs); len(ls) == 1 {
			return ls[0], time.Now()
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatalf("no single leader within %s", within)
	return nil, time.Time{}
}

func others(rs []*replica, not *replica) []*replica {
	var out []*replica
	for _, r := range rs {
		if r != not {
			out = append(out, r)
		}
	}
	return out
}

// TestOneLeader: of three replicas exactly one leads, the others name it,
// and it keeps the lease across many renewals.
func TestOneLeader(t *testing.T) {
	ns := runServer(t)
	b := &book{}
	rs := []*replica{startReplica(t, ns.ClientURL(), "a", b), startReplica(t, ns.ClientURL(), "b", b), startReplica(t, ns.ClientURL(), "c", b)}
	leader, _ := waitLeader(t, rs, 5*time.Second)
	changes := leader.lease.Changes()
	// Three TTLs: renewed about nine times.
	for end := time.Now().Add(3 * testTTL); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if ls := leaders(rs); len(ls) != 1 || ls[0] != leader {
			t.Fatalf("leaders %v, want only %s", names(ls), leader.name)
		}
	}
	if got := leader.lease.Changes(); got != changes {
		t.Errorf("leader changed role %d times while renewing", got-changes)
	}
	for _, r := range others(rs, leader) {
		if got := r.lease.Leader(); got != leader.name {
			t.Errorf("%s sees leader %q, want %q", r.name, got, leader.name)
		}
		if got, want := r.lease.Status(), "follower (replica "+r.name+"; leader "+leader.name+")"; got != want {
			t.Errorf("status %q, want %q", got, want)
		}
	}
	if got, want := leader.lease.Status(), "leader (replica "+leader.name+")"; got != want {
		t.Errorf("status %q, want %q", got, want)
	}
	if err := b.overlaps(); err != nil {
		t.Error(err)
	}
}

func names(rs []*replica) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.name)
	}
	return out
}

// TestCleanHandover: a leader that shuts down hands the lease over at once,
// not after the TTL.
func TestCleanHandover(t *testing.T) {
	ns := runServer(t)
	b := &book{}
	rs := []*replica{startReplica(t, ns.ClientURL(), "a", b), startReplica(t, ns.ClientURL(), "b", b)}
	old, _ := waitLeader(t, rs, 5*time.Second)
	start := time.Now()
	old.stop(t)
	next, at := waitLeader(t, others(rs, old), testTTL)
	took := at.Sub(start)
	t.Logf("clean hand-over from %s to %s: %s (TTL %s)", old.name, next.name, took, testTTL)
	if took > testTTL/2 {
		t.Errorf("clean hand-over took %s, want well under the TTL %s", took, testTTL)
	}
	if err := b.overlaps(); err != nil {
		t.Error(err)
	}
}

// TestCrashHandover: a leader whose connection is gone (a crash: no
// resignation) is replaced within the TTL and a little.
func TestCrashHandover(t *testing.T) {
	ns := runServer(t)
	b := &book{}
	rs := []*replica{startReplica(t, ns.ClientURL(), "a", b), startReplica(t, ns.ClientURL(), "b", b), startReplica(t, ns.ClientURL(), "c", b)}
	old, _ := waitLeader(t, rs, 5*time.Second)
	start := time.Now()
	old.nc.Close()
	next, at := waitLeader(t, others(rs, old), 3*testTTL)
	took := at.Sub(start)
	t.Logf("crash hand-over from %s to %s: %s (TTL %s)", old.name, next.name, took, testTTL)
	if took > testTTL+time.Second {
		t.Errorf("crash hand-over took %s, want at most the TTL %s and a second", took, testTTL)
	}
	if old.lease.IsLeader() {
		t.Errorf("the crashed replica still acts as leader")
	}
	if err := b.overlaps(); err != nil {
		t.Error(err)
	}
}

// TestCutOffStopsFirst: a leader cut off from NATS (its connection
// reconnecting in vain, its writes waiting) stops its side effects before
// another replica starts them.
func TestCutOffStopsFirst(t *testing.T) {
	ns := runServer(t)
	b := &book{}
	p := newProxy(t, strings.TrimPrefix(ns.ClientURL(), "nats://"))
	a := startReplica(t, p.URL(), "a", b)
	if _, err := waitLeaderOf(a, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	bb := startReplica(t, ns.ClientURL(), "b", b)
	changed := a.lease.Changed()
	cut := time.Now()
	p.Cut()
	select {
	case <-changed:
	case <-time.After(2 * testTTL):
		t.Fatal("the cut-off leader did not step down")
	}
	stopped := time.Now()
	if _, err := waitLeaderOf(bb, 3*testTTL); err != nil {
		t.Fatal(err)
	}
	took := time.Since(cut)
	t.Logf("cut off: %s stopped after %s, %s led after %s (TTL %s)", a.name, stopped.Sub(cut), bb.name, took, testTTL)
	if a.lease.IsLeader() {
		t.Error("the cut-off replica acts as leader")
	}
	// Both loops have stopped or started by now: the spans say whether
	// they ever ran at once.
	time.Sleep(50 * time.Millisecond)
	bb.stop(t)
	a.stop(t)
	if err := b.overlaps(); err != nil {
		t.Error(err)
	}
	b.mu.Lock()
	n := len(b.spans)
	b.mu.Unlock()
	if n != 2 {
		t.Errorf("%d spans of the gated loops, want 2 (a, then b)", n)
	}
}

func waitLeaderOf(r *replica, within time.Duration) (time.Time, error) {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if r.lease.IsLeader() {
			return time.Now(), nil
		}
		time.Sleep(2 * time.Millisecond)
	}
	return time.Time{}, errors.New(r.name + " did not become leader")
}

// TestWhileLeaderFails: a gated loop that fails ends WhileLeader with its
// error; one that returns while leader is an error too.
func TestWhileLeaderFails(t *testing.T) {
	ns := runServer(t)
	nc, js := connect(t, ns.ClientURL())
	defer nc.Close()
	l, err := cluster.Open(context.Background(), js, cluster.Config{Name: "a", TTL: testTTL}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go l.Run(ctx)
	boom := errors.New("boom")
	if err := l.WhileLeader(func(context.Context) error { return boom })(ctx); !errors.Is(err, boom) {
		t.Errorf("failing loop: %v, want boom", err)
	}
	if err := l.WhileLeader(func(context.Context) error { return nil })(ctx); err == nil || !strings.Contains(err.Error(), "stopped while leader") {
		t.Errorf("loop returning early: %v", err)
	}
}
