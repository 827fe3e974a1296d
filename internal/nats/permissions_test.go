package nats_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	natsio "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sharelog/sharelog/internal/access"
	"github.com/sharelog/sharelog/internal/nats"
	"github.com/sharelog/sharelog/internal/notify"
)

// principals is an access file with one principal per role, and the tokens
// of each.
type principals struct {
	control *access.Control
	tokens  map[string]string // name -> bearer token
}

func testPrincipals(t *testing.T) principals {
	t.Helper()
	tokens := map[string]string{}
	hash := func(name string) string {
		tok, sha := access.NewToken()
		tokens[name] = tok
		return sha
	}
	file := fmt.Sprintf(`principals:
  - {name: casework, roles: [producer], sources: [casework], tokenSHA256: %s}
  - {name: other, roles: [producer], sources: [other], tokenSHA256: %s}
  - {name: jane.dpo, roles: [dpo], tokenSHA256: %s}
  - {name: registry, roles: [admin], tokenSHA256: %s}
  - {name: clerk, roles: [clerk], tokenSHA256: %s}
  - {name: auditor, roles: [auditor], tokenSHA256: %s}
  - {name: acro, roles: [recipient], recipient: acro, tokenSHA256: %s}
  - {name: cgi, roles: [recipient], recipient: cgi, tokenSHA256: %s}
`, hash("casework"), hash("other"), hash("jane.dpo"), hash("registry"), hash("clerk"), hash("auditor"), hash("acro"), hash("cgi"))
	c, err := access.Parse([]byte(file))
	if err != nil {
		t.Fatal(err)
	}
	return principals{control: c, tokens: tokens}
}

// authServer starts the embedded server with the principals' permissions
// and returns its URL and sharelog's own JetStream context, with the
// streams sharelog makes and a checkpoint bucket.
func authServer(t *testing.T, ps principals) (string, jetstream.JetStream) {
	t.Helper()
	auth, err := nats.NewAuth(ps.control)
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	ns, err := nats.StartServer(nats.ServerConfig{Listen: "127.0.0.1:0", StoreDir: filepath.Join(t.TempDir(), "js"), Auth: auth}, logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Shutdown)
	nc, err := natsio.Connect(ns.ClientURL(), auth.Internal())
	if err != nil {
		t.Fatalf("sharelog's own connection: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
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
	if err := nats.EnsureRecipientConsumers(ctx, js, ps.control); err != nil {
		t.Fatal(err)
	}
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: nats.BucketCheckpoints})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "latest", []byte("checkpoint 7")); err != nil {
		t.Fatal(err)
	}
	return ns.ClientURL(), js
}

// client is a principal's connection; errs receives the server's
// asynchronous errors (permission violations).
type client struct {
	nc   *natsio.Conn
	js   jetstream.JetStream
	errs chan error
}

// connectAs connects as the principal name with its token and its own
// inbox prefix.
func connectAs(t *testing.T, url string, ps principals, name string) *client {
	t.Helper()
	c, err := dial(url, name, ps.tokens[name], natsio.CustomInboxPrefix(nats.InboxPrefix(name)))
	if err != nil {
		t.Fatalf("connect as %s: %v", name, err)
	}
	t.Cleanup(c.nc.Close)
	return c
}

func dial(url, user, password string, opts ...natsio.Option) (*client, error) {
	errs := make(chan error, 64)
	opts = append(opts, natsio.ErrorHandler(func(_ *natsio.Conn, _ *natsio.Subscription, err error) {
		select {
		case errs <- err:
		default:
		}
	}), natsio.MaxReconnects(0))
	if user != "" {
		opts = append(opts, natsio.UserInfo(user, password))
	}
	nc, err := natsio.Connect(url, opts...)
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, err
	}
	return &client{nc: nc, js: js, errs: errs}, nil
}

// denied waits for the server's permissions violation naming subject.
func (c *client) denied(t *testing.T, what, subject string) {
	t.Helper()
	_ = c.nc.Flush()
	timeout := time.After(3 * time.Second)
	for {
		select {
		case err := <-c.errs:
			if errors.Is(err, natsio.ErrPermissionViolation) && strings.Contains(err.Error(), `"`+subject+`"`) {
				return
			}
		case <-timeout:
			t.Errorf("%s: no permissions violation for %s", what, subject)
			return
		}
	}
}

// noViolation fails if the server reported any error to c.
func (c *client) noViolation(t *testing.T, who string) {
	t.Helper()
	_ = c.nc.Flush()
	select {
	case err := <-c.errs:
		t.Errorf("%s: %v", who, err)
	case <-time.After(100 * time.Millisecond):
	}
}

func shortCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	t.Cleanup(cancel)
	return ctx
}

const event = `{"specversion":"1.0","id":"x","source":"casework","type":"org.sharelog.disclosure.v1"}`

// TestEmbeddedServerAuthenticates: only a principal's name with its token,
// or sharelog's own secret, gets in.
func TestEmbeddedServerAuthenticates(t *testing.T) {
	ps := testPrincipals(t)
	url, _ := authServer(t, ps)
	for _, tt := range []struct{ what, user, password string }{
		{"anonymous", "", ""},
		{"wrong token", "casework", "slt_0000"},
		{"another principal's token", "casework", ps.tokens["acro"]},
		{"a token under no name", "", ps.tokens["casework"]},
		{"sharelog's user without its secret", nats.InternalUser, ps.tokens["casework"]},
	} {
		c, err := dial(url, tt.user, tt.password)
		if err == nil {
			c.nc.Close()
			t.Errorf("%s: connected", tt.what)
		} else if !errors.Is(err, natsio.ErrAuthorization) {
			t.Errorf("%s: %v, want an authorization violation", tt.what, err)
		}
	}
	if c, err := dial(url, "casework", ps.tokens["casework"]); err != nil {
		t.Errorf("casework with its token: %v", err)
	} else {
		c.nc.Close()
	}
}

// TestProducerPermissions: a producer publishes on its own source's subject,
// gets its JetStream ack on its own inbox, and can do nothing else.
func TestProducerPermissions(t *testing.T) {
	ps := testPrincipals(t)
	url, sharelog := authServer(t, ps)
	p := connectAs(t, url, ps, "casework")

	ack, err := p.js.Publish(shortCtx(t), "sharelog.in.casework", []byte(event))
	if err != nil || ack.Stream != nats.StreamIn || ack.Sequence != 1 {
		t.Fatalf("publish on its own subject: %+v %v, want the ack of SHARELOG_IN sequence 1", ack, err)
	}
	if _, err := p.nc.SubscribeSync("sharelog.rejected.*.casework"); err != nil {
		t.Fatal(err)
	}
	p.noViolation(t, "its own subject and rejections")

	for _, subject := range []string{nats.SubjectInNotify, "sharelog.in.other", "sharelog.in.ack.acro", nats.SubjectInHTTP, nats.SubjectService, nats.SubjectService + ".other"} {
		if err := p.nc.Publish(subject, []byte(event)); err != nil {
			t.Fatal(err)
		}
		p.denied(t, "publish", subject)
	}
	for _, subject := range []string{"sharelog.notice.acro", "sharelog.in.>", "sharelog.rejected.>", "_INBOX.>", nats.InboxPrefix("other") + ".>"} {
		if _, err := p.nc.SubscribeSync(subject); err != nil {
			t.Fatal(err)
		}
		p.denied(t, "subscribe", subject)
	}
	// The JetStream API on sharelog's streams: no reading, no deleting.
	if _, err := p.js.Stream(shortCtx(t), nats.StreamIn); err == nil {
		t.Error("stream info of SHARELOG_IN: allowed")
	}
	p.denied(t, "stream info", "$JS.API.STREAM.INFO."+nats.StreamIn)
	for _, stream := range []string{nats.StreamIn, notify.StreamNotices, nats.StreamRejected} {
		if err := p.js.DeleteStream(shortCtx(t), stream); err == nil {
			t.Errorf("delete %s: allowed", stream)
		}
		p.denied(t, "delete", "$JS.API.STREAM.DELETE."+stream)
	}
	for _, stream := range []string{nats.StreamIn, notify.StreamNotices, nats.StreamRejected} {
		if _, err := sharelog.Stream(context.Background(), stream); err != nil {
			t.Errorf("%s after the attempts: %v", stream, err)
		}
	}

	// With the shared default inbox, the ack cannot come back: private
	// inboxes are what keeps one principal from reading another's replies.
	q, err := dial(url, "casework", ps.tokens["casework"])
	if err != nil {
		t.Fatal(err)
	}
	defer q.nc.Close()
	if _, err := q.js.Publish(shortCtx(t), "sharelog.in.casework", []byte(event)); err == nil {
		t.Error("publish with the default _INBOX prefix got an ack")
	}
}

// TestRecipientPermissions: a recipient reads only its own notices (live, or
// through its own durable consumer) and acks only as itself.
func TestRecipientPermissions(t *testing.T) {
	ps := testPrincipals(t)
	url, sharelog := authServer(t, ps)
	r := connectAs(t, url, ps, "acro")
	live, err := r.nc.SubscribeSync("sharelog.notice.acro")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.nc.SubscribeSync("sharelog.notice.cgi"); err != nil {
		t.Fatal(err)
	}
	r.denied(t, "subscribe", "sharelog.notice.cgi")
	_ = r.nc.Flush()
	ctx := context.Background()
	for _, id := range []string{"acro", "cgi"} {
		if _, err := sharelog.Publish(ctx, "sharelog.notice."+id, []byte("notice for "+id)); err != nil {
			t.Fatal(err)
		}
	}
	if m, err := live.NextMsg(3 * time.Second); err != nil || string(m.Data) != "notice for acro" {
		t.Fatalf("live notice: %v %v", m, err)
	}

	cons, err := r.js.Consumer(shortCtx(t), notify.StreamNotices, "acro")
	if err != nil {
		t.Fatalf("its own durable consumer: %v", err)
	}
	batch, err := cons.Fetch(5, jetstream.FetchMaxWait(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for m := range batch.Messages() {
		got = append(got, string(m.Data()))
		if err := m.Ack(); err != nil {
			t.Errorf("ack: %v", err)
		}
	}
	if strings.Join(got, ",") != "notice for acro" {
		t.Errorf("its consumer fetched %q, want its own notice only", got)
	}
	r.noViolation(t, "its own consumer")
	// No consumer of its own making, not even on its own subject: a push
	// consumer could deliver anywhere (to sharelog.in.notify, say).
	for _, cfg := range []jetstream.ConsumerConfig{
		{Durable: "acro", FilterSubject: "sharelog.notice.acro", DeliverSubject: nats.SubjectInNotify},
		{Durable: "acro", FilterSubject: "sharelog.notice.cgi"},
		{Durable: "mine", FilterSubject: "sharelog.notice.acro"},
	} {
		if _, err := r.js.CreateOrUpdateConsumer(shortCtx(t), notify.StreamNotices, cfg); err == nil {
			t.Errorf("consumer %s on %s: allowed", cfg.Durable, cfg.FilterSubject)
		}
	}
	if _, err := r.js.Consumer(shortCtx(t), notify.StreamNotices, "cgi"); err == nil {
		t.Error("acro read cgi's consumer")
	}
	r.denied(t, "another recipient's consumer", "$JS.API.CONSUMER.INFO."+notify.StreamNotices+".cgi")

	if _, err := r.js.Publish(shortCtx(t), "sharelog.in.ack.acro", []byte(event)); err != nil {
		t.Errorf("ack on its own subject: %v", err)
	}
	for _, subject := range []string{"sharelog.in.ack.cgi", "sharelog.in.acro", nats.SubjectInNotify} {
		if err := r.nc.Publish(subject, []byte(event)); err != nil {
			t.Fatal(err)
		}
		r.denied(t, "publish", subject)
	}
}

// TestAuditorAndOthersPermissions: the auditor follows and reads the
// checkpoints, and nothing else; a clerk or a dpo without sources publishes
// nothing over NATS.
func TestAuditorAndOthersPermissions(t *testing.T) {
	ps := testPrincipals(t)
	url, _ := authServer(t, ps)
	a := connectAs(t, url, ps, "auditor")
	if _, err := a.nc.SubscribeSync(nats.SubjectCheckpoint); err != nil {
		t.Fatal(err)
	}
	kv, err := a.js.KeyValue(shortCtx(t), nats.BucketCheckpoints)
	if err != nil {
		t.Fatalf("bind the checkpoints bucket: %v", err)
	}
	e, err := kv.Get(shortCtx(t), "latest")
	if err != nil || string(e.Value()) != "checkpoint 7" {
		t.Fatalf("get the latest checkpoint: %v %v", e, err)
	}
	a.noViolation(t, "auditor")
	// A watch needs a consumer, and a consumer could deliver anywhere.
	if _, err := a.js.CreateOrUpdateConsumer(shortCtx(t), "KV_"+nats.BucketCheckpoints, jetstream.ConsumerConfig{DeliverSubject: nats.SubjectInNotify}); err == nil {
		t.Error("auditor created a consumer on the checkpoints")
	}
	if err := kv.Delete(shortCtx(t), "latest"); err == nil {
		t.Error("auditor deleted a checkpoint")
	}
	if _, err := a.js.Stream(shortCtx(t), nats.StreamIn); err == nil {
		t.Error("auditor read SHARELOG_IN's info")
	}
	for _, name := range []string{"clerk", "jane.dpo", "registry"} {
		c := connectAs(t, url, ps, name)
		for _, subject := range []string{"sharelog.in.casework", nats.SubjectInNotify, "$JS.API.STREAM.DELETE." + nats.StreamIn} {
			if err := c.nc.Publish(subject, nil); err != nil {
				t.Fatal(err)
			}
			c.denied(t, name+" publish", subject)
		}
		if _, err := c.nc.SubscribeSync(nats.SubjectCheckpoint); err != nil {
			t.Fatal(err)
		}
		c.denied(t, name+" subscribe", nats.SubjectCheckpoint)
	}
}

// TestNoticeNamesMatchNotify: the permissions name the notices' stream and
// subjects as internal/notify does.
func TestNoticeNamesMatchNotify(t *testing.T) {
	perms := nats.Permissions(testPrincipals(t).control.Named("acro"))
	if !containsPrefix(perms.Subscribe.Allow, notify.SubjectNoticePrefix+"acro") ||
		!containsPrefix(perms.Publish.Allow, "$JS.API.CONSUMER.INFO."+notify.StreamNotices+".acro") ||
		!containsPrefix(perms.Publish.Allow, notify.SubjectAckPrefix+"acro") {
		t.Errorf("recipient permissions %+v %+v do not use internal/notify's names", perms.Publish, perms.Subscribe)
	}
}

func containsPrefix(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}
