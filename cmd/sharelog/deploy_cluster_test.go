package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/alecthomas/kong"
	"github.com/nats-io/nats-server/v2/server"
	natsio "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.yaml.in/yaml/v3"

	"github.com/sharelog/sharelog/internal/access"
	"github.com/sharelog/sharelog/internal/clustertest"
)

// The cluster deployment's files (README.md, "Growing to replicas").
var (
	clusterNATSConf = filepath.Join("..", "..", "deploy", "nats-cluster", "nats.conf")
	clusterAuthConf = filepath.Join("..", "..", "deploy", "nats-cluster", "authorization.conf")
	clusterCompose  = filepath.Join("..", "..", "docker-compose.cluster.yml")
	k8sNATS         = filepath.Join("..", "..", "deploy", "kubernetes", "nats.yaml")
	k8sSharelog     = filepath.Join("..", "..", "deploy", "kubernetes", "sharelog.yaml")
)

// TestDeployNATSCluster reads deploy/nats-cluster/nats.conf as each of three
// nodes would, with its environment: it includes the authorization
// `sharelog nats-config --access deploy/access.example.yaml` prints, names
// the node, routes to all three with the route credentials and syncs every
// write. Then it runs the three nodes from it (on loopback ports) and
// sharelog on them as its own NATS user, with the example access file and
// --stream-replicas 3: sharelog's streams are at three replicas, sharelog
// is ready, and a producer publishes with its token.
func TestDeployNATSCluster(t *testing.T) {
	ctl, err := access.Load(filepath.Join("..", "..", "deploy", "access.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	if err := writeNATSConfig(&want, ctl, envPassword); err != nil {
		t.Fatal(err)
	}
	auth, err := os.ReadFile(clusterAuthConf)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(auth), want.String()) {
		t.Errorf("%s does not hold the output of `sharelog nats-config --access deploy/access.example.yaml`; paste it in:\n%s", clusterAuthConf, want.String())
	}

	const ownPassword, routePassword = "own-secret", "route-secret"
	t.Setenv(NATSPasswordVar, ownPassword)
	t.Setenv("SHARELOG_NATS_ROUTE_PASSWORD", routePassword)
	for _, e := range ctl.Entries() {
		t.Setenv(TokenVar(e.Name), "example-"+e.Name)
	}
	t.Setenv(TokenVar("casework"), "example-casework-token") // the token the example's comment gives
	for i := 1; i <= 3; i++ {
		t.Setenv("NATS_ROUTE_"+strconv.Itoa(i), "nats://route:"+routePassword+"@nats-"+strconv.Itoa(i)+":6222")
	}
	opts := make([]*server.Options, 3)
	for i := range opts {
		name := "nats-" + strconv.Itoa(i+1)
		t.Setenv("NATS_SERVER_NAME", name)
		if opts[i], err = server.ProcessConfigFile(clusterNATSConf); err != nil {
			t.Fatalf("%s as %s: %v", clusterNATSConf, name, err)
		}
		o := opts[i]
		switch {
		case o.ServerName != name:
			t.Errorf("%s: server_name %q, want %q from NATS_SERVER_NAME", name, o.ServerName, name)
		case !o.JetStream || !o.SyncAlways:
			t.Errorf("%s: jetstream %v, sync always %v; want both", name, o.JetStream, o.SyncAlways)
		case o.Cluster.Name == "" || o.Cluster.Username != "route" || o.Cluster.Password != routePassword:
			t.Errorf("%s: cluster %q with route user %q: want a name and the route credentials", name, o.Cluster.Name, o.Cluster.Username)
		case len(o.Routes) != 3 || o.Routes[i].Host != name+":6222" || o.Routes[i].User.Username() != "route":
			t.Errorf("%s: routes %v, want the three nodes with the route user", name, o.Routes)
		case len(o.Users) != len(ctl.Entries())+1:
			t.Errorf("%s: %d users, want sharelog's and one per principal", name, len(o.Users))
		}
	}
	c := clustertest.StartFrom(t, 3, func(i int) *server.Options { return opts[i] })
	urls := make([]string, 3)
	for i := range urls {
		urls[i] = strings.Replace(c.ClientURL(i), "nats://", "nats://"+"sharelog:"+ownPassword+"@", 1)
	}
	cfg := testConfig(t.TempDir())
	cfg.NATS = strings.Join(urls, ",")
	cfg.StreamReplicas = 3
	cfg.Access = filepath.Join("..", "..", "deploy", "access.example.yaml")
	m := startMain(t, cfg)
	for _, name := range sharelogStreams {
		if info := c.WaitStream(m.JetStream, name, 3); info.Config.Replicas != 3 {
			t.Errorf("%s: %d replicas, want 3", name, info.Config.Replicas)
		}
	}
	if err := m.ready(); err != nil {
		t.Errorf("sharelog on the cluster: not ready: %v", err)
	}
	nc, err := natsio.Connect(c.URLs(), natsio.UserInfo("casework", "example-casework-token"), natsio.CustomInboxPrefix("_INBOX.casework"))
	if err != nil {
		t.Fatalf("the casework producer: %v", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := js.Publish(ctx, "sharelog.in.casework", []byte(`{}`)); err != nil {
		t.Errorf("the casework producer publishes to sharelog.in.casework: %v", err)
	}
}

// serveArgs parses args as `sharelog serve` does, flags and environment,
// without running it, and returns the configuration.
func serveArgs(t *testing.T, where string, args []string, env map[string]string) Config {
	t.Helper()
	for k, v := range env {
		t.Setenv(k, v)
	}
	var cli CLI
	parser, err := kong.New(&cli, kong.Name("sharelog"), kong.Exit(func(int) { t.Fatalf("%s: sharelog exited", where) }), kong.Writers(io.Discard, io.Discard))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := parser.Parse(append([]string{"serve"}, args...)); err != nil {
		t.Fatalf("%s: sharelog serve %s: %v", where, strings.Join(args, " "), err)
	}
	return cli.Serve.Config
}

// checkReplicaConfig checks a sharelog replica's configuration in a
// deployment file: every NATS node in --nats, three stream replicas, the
// shared master key outside the data directory, an access file.
func checkReplicaConfig(t *testing.T, where string, cfg Config, nodes []string) {
	t.Helper()
	var hosts []string
	for _, u := range strings.Split(cfg.NATS, ",") {
		_, host, _ := strings.Cut(u, "@")
		hosts = append(hosts, strings.TrimSuffix(host, ":4222"))
	}
	switch {
	case !slices.Equal(hosts, nodes):
		t.Errorf("%s: --nats reaches %v, want %v", where, hosts, nodes)
	case cfg.StreamReplicas != 3:
		t.Errorf("%s: --stream-replicas %d, want 3", where, cfg.StreamReplicas)
	case cfg.MasterKeyFile == "" || within(cfg.MasterKeyFile, cfg.Data):
		t.Errorf("%s: --master-key-file %q: want the shared key, outside --data %s", where, cfg.MasterKeyFile, cfg.Data)
	case cfg.Access == "":
		t.Errorf("%s: no --access: a replica listening beyond loopback needs one", where)
	}
	if err := cfg.checkStreamReplicas(); err != nil {
		t.Errorf("%s: %v", where, err)
	}
}

// TestDeployClusterCompose reads docker-compose.cluster.yml: three NATS
// nodes run deploy/nats-cluster with their own names and volumes; two
// sharelog replicas run `sharelog serve` with flags it accepts, against all
// three nodes at three replicas, each with its own data volume, behind a
// proxy that checks /readyz.
func TestDeployClusterCompose(t *testing.T) {
	raw, err := os.ReadFile(clusterCompose)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Services map[string]struct {
			Command     []string          `yaml:"command"`
			Environment map[string]string `yaml:"environment"`
			Volumes     []string          `yaml:"volumes"`
			DependsOn   any               `yaml:"depends_on"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("%s: %v", clusterCompose, err)
	}
	nodes := []string{"nats-1", "nats-2", "nats-3"}
	for _, n := range nodes {
		s, ok := doc.Services[n]
		switch {
		case !ok:
			t.Errorf("no service %s", n)
		case s.Environment["NATS_SERVER_NAME"] != n:
			t.Errorf("%s: NATS_SERVER_NAME %q", n, s.Environment["NATS_SERVER_NAME"])
		case !slices.Contains(s.Volumes, "./deploy/nats-cluster:/etc/nats:ro") || !slices.Contains(s.Volumes, n+"-data:/data"):
			t.Errorf("%s: volumes %v, want deploy/nats-cluster and its own data", n, s.Volumes)
		}
		for i, m := range nodes {
			if r := s.Environment["NATS_ROUTE_"+strconv.Itoa(i+1)]; !strings.HasSuffix(r, "@"+m+":6222") {
				t.Errorf("%s: NATS_ROUTE_%d %q, want %s's cluster port", n, i+1, r, m)
			}
		}
	}
	for _, r := range []string{"sharelog-1", "sharelog-2"} {
		s, ok := doc.Services[r]
		if !ok {
			t.Errorf("no service %s", r)
			continue
		}
		args := make([]string, len(s.Command))
		for i, a := range s.Command {
			args[i] = strings.ReplaceAll(a, "${SHARELOG_NATS_PASSWORD}", "secret")
		}
		cfg := serveArgs(t, r, args, s.Environment)
		checkReplicaConfig(t, r, cfg, nodes)
		if !slices.Contains(s.Volumes, r+"-data:"+cfg.Data) {
			t.Errorf("%s: volumes %v, want its own volume at --data %s", r, s.Volumes, cfg.Data)
		}
	}
	caddy, err := os.ReadFile(filepath.Join("..", "..", "deploy", "Caddyfile"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"reverse_proxy sharelog-1:8080 sharelog-2:8080", "health_uri /readyz"} {
		if !strings.Contains(string(caddy), want) {
			t.Errorf("deploy/Caddyfile does not say %q", want)
		}
	}
}

// TestDeployKubernetes reads deploy/kubernetes: the NATS ConfigMap holds
// deploy/nats-cluster's files as they are; three NATS pods route to each
// other; the sharelog StatefulSet runs replicas with flags serve accepts,
// against all three pods at three replicas, with a volume each and
// readiness from /readyz.
func TestDeployKubernetes(t *testing.T) {
	type container struct {
		Name string   `yaml:"name"`
		Args []string `yaml:"args"`
		Env  []struct {
			Name  string `yaml:"name"`
			Value string `yaml:"value"`
		} `yaml:"env"`
		ReadinessProbe struct {
			HTTPGet struct {
				Path string `yaml:"path"`
			} `yaml:"httpGet"`
		} `yaml:"readinessProbe"`
	}
	type object struct {
		Kind     string `yaml:"kind"`
		Metadata struct {
			Name string `yaml:"name"`
		} `yaml:"metadata"`
		Data map[string]string `yaml:"data"`
		Spec struct {
			Replicas    int    `yaml:"replicas"`
			ServiceName string `yaml:"serviceName"`
			Template    struct {
				Spec struct {
					Containers []container `yaml:"containers"`
				} `yaml:"spec"`
			} `yaml:"template"`
			VolumeClaimTemplates []any `yaml:"volumeClaimTemplates"`
		} `yaml:"spec"`
	}
	read := func(path string) map[string]object {
		t.Helper()
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		objs := map[string]object{}
		dec := yaml.NewDecoder(bytes.NewReader(raw))
		for {
			var o object
			if err := dec.Decode(&o); err == io.EOF {
				break
			} else if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			objs[o.Kind+"/"+o.Metadata.Name] = o
		}
		return objs
	}
	natsObjs := read(k8sNATS)
	for key, path := range map[string]string{"nats.conf": clusterNATSConf, "authorization.conf": clusterAuthConf} {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := natsObjs["ConfigMap/nats-config"].Data[key]; got != string(b) {
			t.Errorf("%s: ConfigMap nats-config's %s is not %s as it is", k8sNATS, key, path)
		}
	}
	ns := natsObjs["StatefulSet/nats"]
	if ns.Spec.Replicas != 3 || ns.Spec.ServiceName != "nats" || len(ns.Spec.VolumeClaimTemplates) != 1 || len(ns.Spec.Template.Spec.Containers) != 1 {
		t.Fatalf("%s: StatefulSet nats: %d replicas, service %q; want 3 pods with a volume each", k8sNATS, ns.Spec.Replicas, ns.Spec.ServiceName)
	}
	routes := map[string]string{}
	for _, e := range ns.Spec.Template.Spec.Containers[0].Env {
		routes[e.Name] = e.Value
	}
	pods := []string{"nats-0.nats", "nats-1.nats", "nats-2.nats"}
	for i, p := range pods {
		if r := routes["NATS_ROUTE_"+strconv.Itoa(i+1)]; !strings.HasSuffix(r, "@"+p+":6222") {
			t.Errorf("%s: NATS_ROUTE_%d %q, want %s:6222", k8sNATS, i+1, r, p)
		}
	}

	ss := read(k8sSharelog)["StatefulSet/sharelog"]
	if ss.Spec.Replicas < 2 || len(ss.Spec.VolumeClaimTemplates) != 1 || len(ss.Spec.Template.Spec.Containers) != 1 {
		t.Fatalf("%s: StatefulSet sharelog: %d replicas; want at least 2 with a volume each", k8sSharelog, ss.Spec.Replicas)
	}
	sc := ss.Spec.Template.Spec.Containers[0]
	if sc.ReadinessProbe.HTTPGet.Path != "/readyz" {
		t.Errorf("%s: readiness from %q, want /readyz", k8sSharelog, sc.ReadinessProbe.HTTPGet.Path)
	}
	args := make([]string, len(sc.Args))
	for i, a := range sc.Args {
		args[i] = strings.ReplaceAll(a, "$(SHARELOG_NATS_PASSWORD)", "secret")
	}
	checkReplicaConfig(t, k8sSharelog, serveArgs(t, k8sSharelog, args, nil), pods)
}
