// Package clustertest runs a NATS cluster with JetStream inside a test
// process: real nats-server nodes joined by routes on loopback, each with
// its own store directory under t.TempDir(), that a test can kill and
// restart one at a time. sharelog's cluster tests run their replicas against
// it (cmd/sharelog/cluster_test.go); a package test can use it alone.
package clustertest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	natsio "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// namePrefix starts each NATS cluster's name (unless StartFrom's options
// give one). The rest is random: test processes run side by side, and a
// node of one may take a port another's cluster has just let go and routes
// to; nodes of clusters with different names refuse each other's routes
// instead of merging into one cluster of strangers.
const namePrefix = "sharelog-test-"

// Cluster is a NATS cluster of JetStream servers running in process.
type Cluster struct {
	t     testing.TB
	nodes []*Node
}

// Node is one server of a Cluster. Its ports and store directory stay the
// same across Kill and Restart, as a real server's would.
type Node struct {
	Name string
	opts *server.Options
	srv  *server.Server // nil while killed
}

// Start starts a cluster of n JetStream servers (n1, n2, ...) on loopback
// ports, waits until their JetStream meta group has a leader and every
// server is current, and shuts it down at the end of the test.
func Start(t testing.TB, n int) *Cluster {
	t.Helper()
	return StartFrom(t, n, nil)
}

// StartFrom starts a cluster as Start does, each node i from the options
// base(i) returns (say, a configuration file that server.ProcessConfigFile
// read), with its addresses, routes and store directory replaced by the
// cluster's own: loopback ports, routes to the other nodes (with the
// options' route credentials), a directory under t.TempDir(). A nil base
// starts from empty options; a node without a server name is named n<i+1>.
func StartFrom(t testing.TB, n int, base func(i int) *server.Options) *Cluster {
	t.Helper()
	c := &Cluster{t: t}
	clusterPorts := make([]int, n)
	for i := range n {
		clusterPorts[i] = FreePort(t)
	}
	dir := t.TempDir()
	name := namePrefix + strconv.FormatUint(rand.Uint64(), 36)
	for i := range n {
		o := &server.Options{}
		if base != nil {
			o = base(i)
		}
		var routes []*url.URL
		for j, p := range clusterPorts {
			if j != i {
				u := &url.URL{Scheme: "nats", Host: "127.0.0.1:" + strconv.Itoa(p)}
				if o.Cluster.Username != "" {
					u.User = url.UserPassword(o.Cluster.Username, o.Cluster.Password)
				}
				routes = append(routes, u)
			}
		}
		if o.ServerName == "" {
			o.ServerName = "n" + strconv.Itoa(i+1)
		}
		if o.Cluster.Name == "" {
			o.Cluster.Name = name
		}
		o.Host, o.Port = "127.0.0.1", FreePort(t)
		o.HTTPHost, o.HTTPPort = "", 0 // no monitoring port
		o.Cluster.Host, o.Cluster.Port = "127.0.0.1", clusterPorts[i]
		o.Routes, o.RoutesStr = routes, ""
		o.JetStream = true
		o.StoreDir = filepath.Join(dir, o.ServerName)
		o.NoLog, o.NoSigs = true, true
		c.nodes = append(c.nodes, &Node{Name: o.ServerName, opts: o})
	}
	t.Cleanup(c.Shutdown)
	for i := range c.nodes {
		c.startNode(i)
	}
	c.WaitReady()
	return c
}

// FreePort returns a loopback TCP port that was free a moment ago, outside
// the kernel's range of ephemeral ports where it can tell: a node's port
// there may be taken, before the node listens or while it restarts, as the
// local port of any connection this test process makes (other nodes'
// routes, a sharelog's own connection to its embedded server), and stay
// taken for as long as that connection lives.
func FreePort(t testing.TB) int {
	t.Helper()
	if low := ephemeralLow(); low > 2048 {
		for range 100 {
			port := 1024 + rand.IntN(low-1024)
			if l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port))); err == nil {
				l.Close()
				return port
			}
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// ephemeralLow returns the lowest port the kernel gives an outgoing
// connection (Linux), or 0 when it cannot be read.
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0
	}
	low, err := strconv.Atoi(f[0])
	if err != nil {
		return 0
	}
	return low
}

func (c *Cluster) startNode(i int) {
	c.t.Helper()
	nd := c.nodes[i]
	// The node's ports were free when the cluster was made, but where
	// FreePort could not keep them out of the ephemeral range, another
	// connection may hold one for a moment: a node that is not ready is
	// started again (it failed to listen, under a loaded test run).
	for attempt := 1; ; attempt++ {
		opts := *nd.opts // nats-server fills in the options it is given
		srv, err := server.NewServer(&opts)
		if err != nil {
			c.t.Fatalf("nats node %s: %v", nd.Name, err)
		}
		srv.Start()
		if srv.ReadyForConnections(20 * time.Second) {
			nd.srv = srv
			return
		}
		srv.Shutdown()
		if attempt == 3 {
			c.t.Fatalf("nats node %s: not ready for connections after %d starts", nd.Name, attempt)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// Nodes returns the cluster's servers, in order (n1 first).
func (c *Cluster) Nodes() []*Node { return c.nodes }

// Server returns node i's running server, or nil while it is killed.
func (c *Cluster) Server(i int) *server.Server { return c.nodes[i].srv }

// ClientURL returns node i's client URL (the same across restarts).
func (c *Cluster) ClientURL(i int) string {
	return "nats://127.0.0.1:" + strconv.Itoa(c.nodes[i].opts.Port)
}

// URLs returns every node's client URL, comma-separated, as sharelog's
// --nats and nats.Connect take them.
func (c *Cluster) URLs() string {
	urls := make([]string, len(c.nodes))
	for i := range c.nodes {
		urls[i] = c.ClientURL(i)
	}
	return strings.Join(urls, ",")
}

// Kill shuts node i down at once, as a lost machine would go: its clients
// are cut off and reconnect to the others; its store stays for Restart.
func (c *Cluster) Kill(i int) {
	c.t.Helper()
	nd := c.nodes[i]
	if nd.srv == nil {
		c.t.Fatalf("nats node %s is not running", nd.Name)
	}
	nd.srv.Shutdown()
	nd.srv.WaitForShutdown()
	nd.srv = nil
}

// Restart starts node i again on its ports and store, after Kill, and waits
// until the cluster is ready again (WaitReady).
func (c *Cluster) Restart(i int) {
	c.t.Helper()
	if c.nodes[i].srv != nil {
		c.t.Fatalf("nats node %s is running", c.nodes[i].Name)
	}
	c.startNode(i)
	c.WaitReady()
}

// Shutdown stops every running node. Start registers it with t.Cleanup.
func (c *Cluster) Shutdown() {
	for _, nd := range c.nodes {
		if nd.srv != nil {
			nd.srv.Shutdown()
		}
	}
	for _, nd := range c.nodes {
		if nd.srv != nil {
			nd.srv.WaitForShutdown()
			nd.srv = nil
		}
	}
}

// WaitReady waits (up to 30 s) until the JetStream meta group has a leader,
// every running node reports itself healthy (current with the meta group and
// with every stream and consumer it holds), and the leader counts every
// running node as a peer it can place a stream on. Healthy nodes are not
// enough: until the leader has a node's JetStream statistics it takes the
// node for offline, and a stream of as many replicas as nodes is refused
// with "no suitable peers for placement".
func (c *Cluster) WaitReady() {
	c.t.Helper()
	c.waitFor(30*time.Second, func() error {
		var leader *server.Server
		for _, nd := range c.nodes {
			if nd.srv == nil {
				continue
			}
			if st := nd.srv.Healthz(nil); st.Status != "ok" || st.Error != "" {
				return fmt.Errorf("nats node %s: %s %s", nd.Name, st.Status, st.Error)
			}
			if nd.srv.JetStreamIsLeader() {
				leader = nd.srv
			}
		}
		if leader == nil {
			return fmt.Errorf("no JetStream meta leader")
		}
		placeable := leader.JetStreamClusterPeers()
		for _, nd := range c.nodes {
			if nd.srv != nil && !slices.Contains(placeable, nd.Name) {
				return fmt.Errorf("the JetStream meta leader %s does not count node %s among its peers yet (%v)", leader.Name(), nd.Name, placeable)
			}
		}
		return nil
	})
}

// WaitStream waits (up to 30 s) until stream, as js sees it, has a leader
// and replicas-1 peers, every one current: after a stream is created or
// moved to more replicas, or a node restarted, it takes a moment.
func (c *Cluster) WaitStream(js jetstream.JetStream, stream string, replicas int) *jetstream.StreamInfo {
	c.t.Helper()
	var info *jetstream.StreamInfo
	c.waitFor(30*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s, err := js.Stream(ctx, stream)
		if err != nil {
			return fmt.Errorf("stream %s: %w", stream, err)
		}
		info = s.CachedInfo()
		switch cl := info.Cluster; {
		case cl == nil || cl.Leader == "":
			return fmt.Errorf("stream %s has no leader", stream)
		case len(cl.Replicas) != replicas-1:
			return fmt.Errorf("stream %s has %d peers, want %d", stream, len(cl.Replicas), replicas-1)
		default:
			for _, p := range cl.Replicas {
				if !p.Current || p.Offline {
					return fmt.Errorf("stream %s: peer %s not current", stream, p.Name)
				}
			}
		}
		return nil
	})
	return info
}

// Connect returns a client connection to every node (it reconnects to
// another while one is down) and its JetStream context; both are closed at
// the end of the test.
func (c *Cluster) Connect() (*natsio.Conn, jetstream.JetStream) {
	c.t.Helper()
	nc, err := natsio.Connect(c.URLs(), natsio.MaxReconnects(-1), natsio.ReconnectWait(100*time.Millisecond))
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		c.t.Fatal(err)
	}
	return nc, js
}

// waitFor retries f every 100 ms until it returns nil, failing the test
// with f's last error after timeout.
func (c *Cluster) waitFor(timeout time.Duration, f func() error) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("after %s: %v", timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
