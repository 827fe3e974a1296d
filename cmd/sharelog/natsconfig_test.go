package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	natsio "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/crypto/bcrypt"

	"github.com/sharelog/sharelog/internal/access"
	"github.com/sharelog/sharelog/internal/nats"
	"github.com/sharelog/sharelog/internal/notify"
)

// TestNATSConfigEnforced prints the authorization block of an access file,
// starts a nats-server from it (the principals' tokens in its environment),
// and checks that the server enforces what the embedded one does: no
// anonymous client, a producer publishes only as its source and gets its
// ack, a recipient reads only its own notices, nobody else touches the
// streams.
func TestNATSConfigEnforced(t *testing.T) {
	dir := t.TempDir()
	path, tokens := writeNATSAccessFile(t, dir)
	var out bytes.Buffer
	if err := run(context.Background(), []string{"nats-config", "--access", path}, &out, &out); err != nil {
		t.Fatalf("nats-config: %v\n%s", err, out.String())
	}
	conf := filepath.Join(dir, "nats.conf")
	full := "listen: 127.0.0.1:-1\njetstream {store_dir: " + filepath.Join(dir, "js") + "}\n" + out.String()
	if err := os.WriteFile(conf, []byte(full), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := server.ProcessConfigFile(conf); err == nil || !strings.Contains(err.Error(), NATSPasswordVar) {
		t.Errorf("config without the passwords in the environment: %v, want an error naming %s", err, NATSPasswordVar)
	}
	secret := "sharelog-" + tokens["clerk"] // any secret of sharelog's own
	t.Setenv(NATSPasswordVar, secret)
	for name, tok := range tokens {
		t.Setenv(TokenVar(name), tok)
	}
	opts, err := server.ProcessConfigFile(conf)
	if err != nil {
		t.Fatalf("the printed config does not parse: %v\n%s", err, full)
	}
	opts.NoLog, opts.NoSigs = true, true
	ns, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	t.Cleanup(ns.Shutdown)
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	url := ns.ClientURL()

	// sharelog itself, as serve --nats connects.
	own, err := natsio.Connect(strings.Replace(url, "nats://", "nats://"+nats.InternalUser+":"+secret+"@", 1))
	if err != nil {
		t.Fatalf("sharelog's own user: %v", err)
	}
	defer own.Close()
	js, err := jetstream.New(own)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := nats.EnsureStreams(ctx, js, nats.StreamConfig{}); err != nil {
		t.Fatal(err)
	}
	if err := notify.EnsureStream(ctx, js, notify.StreamConfig{}); err != nil {
		t.Fatal(err)
	}

	if nc, err := natsio.Connect(url, natsio.MaxReconnects(0)); err == nil {
		nc.Close()
		t.Error("an anonymous client connected")
	}
	p := connectNATSAs(t, url, "casework", tokens["casework"])
	if _, err := p.js.Publish(ctx, "sharelog.in.casework", []byte(`{}`)); err != nil {
		t.Errorf("producer on its own subject: %v", err)
	}
	for _, subject := range []string{nats.SubjectInNotify, "sharelog.in.dpo", "$JS.API.STREAM.DELETE." + nats.StreamIn} {
		if err := p.nc.Publish(subject, nil); err != nil {
			t.Fatal(err)
		}
		p.denied(t, "producer", subject)
	}
	r := connectNATSAs(t, url, "acro", tokens["acro"])
	if _, err := r.nc.SubscribeSync(notify.SubjectNoticePrefix + "avon-and-somerset"); err != nil {
		t.Fatal(err)
	}
	r.denied(t, "recipient", notify.SubjectNoticePrefix+"avon-and-somerset")
	if err := r.nc.Publish(nats.SubjectAckPrefix+"avon-and-somerset", nil); err != nil {
		t.Fatal(err)
	}
	r.denied(t, "recipient", nats.SubjectAckPrefix+"avon-and-somerset")
	if _, err := r.js.Publish(ctx, nats.SubjectAckPrefix+"acro", []byte(`{}`)); err != nil {
		t.Errorf("recipient on its own ack subject: %v", err)
	}
	if _, err := js.Stream(ctx, nats.StreamIn); err != nil {
		t.Errorf("SHARELOG_IN after the attempts: %v", err)
	}
}

// TestDeployNATSConf: deploy/nats.conf holds what nats-config prints for
// deploy/access.example.yaml, and parses.
func TestDeployNATSConf(t *testing.T) {
	ctl, err := access.Load(filepath.Join("..", "..", "deploy", "access.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	if err := writeNATSConfig(&want, ctl, envPassword); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join("..", "..", "deploy", "nats.conf")
	b, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), want.String()) {
		t.Errorf("deploy/nats.conf does not hold the output of `sharelog nats-config --access deploy/access.example.yaml`; paste it in:\n%s", want.String())
	}
	t.Setenv(NATSPasswordVar, "x")
	for _, e := range ctl.Entries() {
		t.Setenv(TokenVar(e.Name), "x")
	}
	if _, err := server.ProcessConfigFile(conf); err != nil {
		t.Errorf("deploy/nats.conf: %v", err)
	}
}

// TestNATSConfigBcrypt: with --bcrypt the tokens are read once, checked
// against the access file's hashes, and only their bcrypt hashes are
// printed; a nats-server started from that needs no environment and admits
// a principal with its token only.
func TestNATSConfigBcrypt(t *testing.T) {
	cost := bcryptCost
	bcryptCost = bcrypt.MinCost // the same checks, fast enough under the race detector
	t.Cleanup(func() { bcryptCost = cost })
	dir := t.TempDir()
	path, tokens := writeNATSAccessFile(t, dir)
	t.Setenv(NATSPasswordVar, "own-secret")
	for name, tok := range tokens {
		t.Setenv(TokenVar(name), tok)
	}
	t.Setenv(TokenVar("acro"), tokens["casework"])
	var out bytes.Buffer
	err := run(context.Background(), []string{"nats-config", "--access", path, "--bcrypt"}, &out, &out)
	if err == nil || !strings.Contains(out.String()+err.Error(), TokenVar("acro")) {
		t.Errorf("a token that is not the file's: %v %s, want an error naming %s", err, out.String(), TokenVar("acro"))
	}
	t.Setenv(TokenVar("acro"), tokens["acro"])
	out.Reset()
	if err := run(context.Background(), []string{"nats-config", "--access", path, "--bcrypt"}, &out, &out); err != nil {
		t.Fatalf("nats-config --bcrypt: %v\n%s", err, out.String())
	}
	for name, tok := range tokens {
		if strings.Contains(out.String(), tok) || strings.Contains(out.String(), "$"+TokenVar(name)) {
			t.Fatalf("the printed block holds %s's token or its variable:\n%s", name, out.String())
		}
		os.Unsetenv(TokenVar(name))
	}
	conf := filepath.Join(dir, "nats.conf")
	if err := os.WriteFile(conf, []byte("listen: 127.0.0.1:-1\n"+out.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	opts, err := server.ProcessConfigFile(conf)
	if err != nil {
		t.Fatalf("the printed config does not parse: %v\n%s", err, out.String())
	}
	// bcrypt is slow by design, the more so under the race detector.
	opts.NoLog, opts.NoSigs, opts.AuthTimeout = true, true, 60
	ns, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	t.Cleanup(ns.Shutdown)
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	if nc, err := natsio.Connect(ns.ClientURL(), natsio.UserInfo("casework", tokens["casework"]), natsio.Timeout(time.Minute)); err != nil {
		t.Errorf("casework with its token: %v", err)
	} else {
		nc.Close()
	}
	if nc, err := natsio.Connect(ns.ClientURL(), natsio.UserInfo("casework", tokens["acro"]), natsio.MaxReconnects(0), natsio.Timeout(time.Minute)); err == nil {
		nc.Close()
		t.Error("casework connected with acro's token")
	}
	if nc, err := natsio.Connect(ns.ClientURL(), natsio.UserInfo(nats.InternalUser, "own-secret"), natsio.Timeout(time.Minute)); err != nil {
		t.Errorf("sharelog's own user: %v", err)
	} else {
		nc.Close()
	}
}
