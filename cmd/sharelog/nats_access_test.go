package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	natsio "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sharelog/sharelog/internal/access"
	"github.com/sharelog/sharelog/internal/ledger"
	"github.com/sharelog/sharelog/internal/nats"
	"github.com/sharelog/sharelog/internal/notify"
)

// writeNATSAccessFile writes an access file with one principal per role and
// returns its path and each principal's token.
func writeNATSAccessFile(t *testing.T, dir string) (string, map[string]string) {
	t.Helper()
	tokens := map[string]string{}
	hash := func(name string) string {
		tok, sha := access.NewToken()
		tokens[name] = tok
		return sha
	}
	file := fmt.Sprintf(`principals:
  - {name: casework, roles: [producer], sources: [casework], tokenSHA256: %s}
  - {name: jane.dpo, roles: [dpo], sources: [dpo], tokenSHA256: %s}
  - {name: registry, roles: [admin], tokenSHA256: %s}
  - {name: clerk, roles: [clerk], tokenSHA256: %s}
  - {name: auditor, roles: [auditor], tokenSHA256: %s}
  - {name: acro, roles: [recipient], recipient: acro, tokenSHA256: %s}
  - {name: avon, roles: [recipient], recipient: avon-and-somerset, tokenSHA256: %s}
`, hash("casework"), hash("jane.dpo"), hash("registry"), hash("clerk"), hash("auditor"), hash("acro"), hash("avon"))
	path := filepath.Join(dir, "access.yaml")
	if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, tokens
}

// natsClient is a principal's NATS connection; errs receives the server's
// asynchronous errors.
type natsClient struct {
	nc   *natsio.Conn
	js   jetstream.JetStream
	errs chan error
}

// connectNATSAs connects to url as principal name with its token and its
// own reply inbox.
func connectNATSAs(t *testing.T, url, name, token string) *natsClient {
	t.Helper()
	errs := make(chan error, 64)
	nc, err := natsio.Connect(url, natsio.UserInfo(name, token), natsio.CustomInboxPrefix(nats.InboxPrefix(name)),
		natsio.ErrorHandler(func(_ *natsio.Conn, _ *natsio.Subscription, err error) {
			select {
			case errs <- err:
			default:
			}
		}))
	if err != nil {
		t.Fatalf("connect as %s: %v", name, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return &natsClient{nc: nc, js: js, errs: errs}
}

// denied waits for the server's permissions violation on subject.
func (c *natsClient) denied(t *testing.T, what, subject string) {
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

// publish publishes ev on subject and returns its SHARELOG_IN sequence.
func (c *natsClient) publish(t *testing.T, subject string, ev map[string]any) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ack, err := c.js.Publish(ctx, subject, mustJSON(t, ev))
	if err != nil {
		t.Fatalf("publish on %s: %v", subject, err)
	}
	return ack.Sequence
}

// TestNATSAccess runs the real serve code with --access and tries each
// forgery of issue 10 over NATS: each is refused, by the server's
// permissions or, on a principal's own subject, by the ledger's rules.
func TestNATSAccess(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	path, tokens := writeNATSAccessFile(t, dir)
	cfg.Access = path
	cfg.Recipients = filepath.Join("..", "..", "deploy", "recipients.example.yaml")
	m := startMain(t, cfg)
	url := m.NATSURL()
	ctx := context.Background()

	t.Run("anonymous", func(t *testing.T) {
		if nc, err := natsio.Connect(url, natsio.MaxReconnects(0)); err == nil {
			nc.Close()
			t.Error("an anonymous client connected")
		}
		if nc, err := natsio.Connect(url, natsio.UserInfo("acro", tokens["casework"]), natsio.MaxReconnects(0)); err == nil {
			nc.Close()
			t.Error("a client connected under another principal's name")
		}
	})

	producer := connectNATSAs(t, url, "casework", tokens["casework"])
	acro := connectNATSAs(t, url, "acro", tokens["acro"])
	avon := connectNATSAs(t, url, "avon", tokens["avon"])
	live, err := acro.nc.SubscribeSync(notify.SubjectNoticePrefix + "acro")
	if err != nil {
		t.Fatal(err)
	}
	_ = acro.nc.Flush()
	avonLive, err := avon.nc.SubscribeSync(notify.SubjectNoticePrefix + "avon-and-somerset")
	if err != nil {
		t.Fatal(err)
	}
	_ = avon.nc.Flush()

	a1 := ledger.Subject{Scheme: "dbs-ref", ID: secretID}
	t0 := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	producer.publish(t, "sharelog.in.casework", disclosure("casework", "d-1", []ledger.Subject{a1}, "acro", []string{"user.criminal_history"}, t0))
	producer.publish(t, "sharelog.in.casework", disclosure("casework", "d-2", []ledger.Subject{a1}, "avon-and-somerset", []string{"user.criminal_history"}, t0))
	producer.publish(t, "sharelog.in.casework", ce("casework", "erasure-1", ledger.TypeErasure, map[string]any{
		"request": "E-1", "subject": a1, "categories": []string{"user.criminal_history"},
		"ground": "art17-1-a", "decidedAt": "2026-03-02T10:00:00Z", "decidedBy": "dpo@example.org",
	}))
	acroNotice, avonNotice := ledger.NoticeID("E-1", "acro"), ledger.NoticeID("E-1", "avon-and-somerset")
	msg, err := live.NextMsg(30 * time.Second)
	if err != nil {
		t.Fatalf("acro's notice: %v\n%s", err, m.logs)
	}
	if !strings.Contains(string(msg.Data), acroNotice) {
		t.Fatalf("acro received %s, want its notice %s", msg.Data, acroNotice)
	}
	if msg, err := avonLive.NextMsg(30 * time.Second); err != nil || !strings.Contains(string(msg.Data), avonNotice) {
		t.Fatalf("avon's notice: %v %v", msg, err)
	}
	// The same notice through the durable consumer sharelog made for acro,
	// as a recipient that was away would read it.
	cons, err := acro.js.Consumer(ctx, notify.StreamNotices, "acro")
	if err != nil {
		t.Fatalf("acro's consumer: %v", err)
	}
	if n, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second)); err != nil || !strings.Contains(string(n.Data()), acroNotice) {
		t.Errorf("acro's consumer: %v %v, want its notice", n, err)
	} else if err := n.DoubleAck(ctx); err != nil {
		t.Errorf("ack on acro's consumer: %v", err)
	}

	ack := func(id, notice string) map[string]any {
		return ce("acro", id, ledger.TypeNoticeAck, map[string]any{"notice": notice, "outcome": "done"})
	}
	// Each refused event on a principal's own subject is filed in
	// SHARELOG_REJECTED with its reason.
	refused := map[uint64]ledger.Reason{}
	t.Run("recipient acks only its own notices", func(t *testing.T) {
		if _, err := acro.nc.SubscribeSync(notify.SubjectNoticePrefix + "avon-and-somerset"); err != nil {
			t.Fatal(err)
		}
		acro.denied(t, "subscribe to another recipient's notices", notify.SubjectNoticePrefix+"avon-and-somerset")
		if err := acro.nc.Publish(nats.SubjectAckPrefix+"avon-and-somerset", mustJSON(t, ack("ack-forged", avonNotice))); err != nil {
			t.Fatal(err)
		}
		acro.denied(t, "publish on another recipient's ack subject", nats.SubjectAckPrefix+"avon-and-somerset")
		refused[acro.publish(t, nats.SubjectAckPrefix+"acro", ack("ack-other", avonNotice))] = ledger.ReasonWrongRecipient
		acro.publish(t, nats.SubjectAckPrefix+"acro", ack("ack-own", acroNotice))
	})

	t.Run("producer cannot forge sharelog's own records", func(t *testing.T) {
		delivery := ce("sharelog/notify", "forged-delivery", ledger.TypeNoticeDelivery, map[string]any{
			"notice": avonNotice, "attempt": 1, "channel": "nats", "outcome": "sent", "at": "2026-03-02T12:00:00Z",
		})
		hash, err := m.Store.SubjectHashOf(ctx, a1)
		if err != nil {
			t.Fatal(err)
		}
		forgotten := ce("sharelog/notify", "forged-forgotten", ledger.TypeSubjectForgotten, map[string]any{
			"subjectHash": hash, "reason": "erasure-closed", "request": "E-1", "at": "2026-03-02T12:00:00Z",
		})
		for _, ev := range []map[string]any{delivery, forgotten} {
			if err := producer.nc.Publish(nats.SubjectInNotify, mustJSON(t, ev)); err != nil {
				t.Fatal(err)
			}
			producer.denied(t, "publish on sharelog.in.notify", nats.SubjectInNotify)
			ev["source"] = "casework"
			refused[producer.publish(t, "sharelog.in.casework", ev)] = ledger.ReasonForbidden
		}
	})

	t.Run("a reply redirected to sharelog.in.notify", func(t *testing.T) {
		// A client names any reply subject, and the server publishes the
		// reply there: JetStream's publish ack lands on sharelog.in.notify.
		// Its content is the server's, never an event, and is refused.
		if err := producer.nc.PublishRequest("sharelog.in.casework", nats.SubjectInNotify,
			mustJSON(t, disclosure("casework", "d-redirect", []ledger.Subject{a1}, "acro", []string{"user.criminal_history"}, t0))); err != nil {
			t.Fatal(err)
		}
		_ = producer.nc.Flush()
		s, err := m.JetStream.Stream(ctx, nats.StreamIn)
		if err != nil {
			t.Fatal(err)
		}
		checkFor(t, 10*time.Second, func() error {
			info, err := s.Info(ctx)
			if err != nil {
				return err
			}
			for seq := info.State.LastSeq; seq > 0 && seq+20 > info.State.LastSeq; seq-- {
				msg, err := s.GetMsg(ctx, seq)
				if err == nil && msg.Subject == nats.SubjectInNotify && strings.HasPrefix(string(msg.Data), `{"stream":"SHARELOG_IN"`) {
					refused[seq] = ledger.ReasonNotCloudEvent
					return nil
				}
			}
			return errors.New("the redirected ack is not in SHARELOG_IN")
		})
	})

	t.Run("producer cannot publish as another source", func(t *testing.T) {
		ev := disclosure("dpo", "d-as-dpo", []ledger.Subject{a1}, "acro", []string{"user.criminal_history"}, t0)
		if err := producer.nc.Publish("sharelog.in.dpo", mustJSON(t, ev)); err != nil {
			t.Fatal(err)
		}
		producer.denied(t, "publish on another source's subject", "sharelog.in.dpo")
		refused[producer.publish(t, "sharelog.in.casework", ev)] = ledger.ReasonForbidden
	})

	t.Run("service per source", func(t *testing.T) {
		ev := disclosure("casework", "d-svc", []ledger.Subject{a1}, "acro", []string{"user.criminal_history"}, t0)
		reply, err := producer.nc.Request(nats.SubjectService+".casework", mustJSON(t, ev), 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		var body struct{ Accepted []struct{ Outcome string } }
		if err := json.Unmarshal(reply.Data, &body); err != nil || len(body.Accepted) != 1 || body.Accepted[0].Outcome != "recorded" {
			t.Errorf("service reply %s (%v), want one recorded", reply.Data, err)
		}
		forged := disclosure("dpo", "d-svc-dpo", []ledger.Subject{a1}, "acro", []string{"user.criminal_history"}, t0)
		reply, err = producer.nc.Request(nats.SubjectService+".casework", mustJSON(t, forged), 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if code := reply.Header.Get("Nats-Service-Error-Code"); code != "403" {
			t.Errorf("another source through the service: code %q %s, want 403", code, reply.Data)
		}
		if err := producer.nc.PublishRequest(nats.SubjectService, nats.InboxPrefix("casework")+".x", mustJSON(t, ev)); err != nil {
			t.Fatal(err)
		}
		producer.denied(t, "the service without a source", nats.SubjectService)
	})

	t.Run("nobody but sharelog reads or deletes the streams", func(t *testing.T) {
		for _, name := range []string{"casework", "jane.dpo", "registry", "clerk", "auditor", "acro"} {
			c := connectNATSAs(t, url, name, tokens[name])
			for _, stream := range []string{nats.StreamIn, notify.StreamNotices, nats.StreamRejected} {
				// A denied request is not answered: it times out.
				sctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
				if _, err := c.js.Stream(sctx, stream); err == nil {
					t.Errorf("%s read %s's info", name, stream)
				}
				cancel()
				c.denied(t, name+" stream info", "$JS.API.STREAM.INFO."+stream)
				sctx, cancel = context.WithTimeout(ctx, 300*time.Millisecond)
				if err := c.js.DeleteStream(sctx, stream); err == nil {
					t.Errorf("%s deleted %s", name, stream)
				}
				cancel()
				c.denied(t, name+" delete", "$JS.API.STREAM.DELETE."+stream)
			}
			if _, err := c.nc.SubscribeSync(nats.SubjectIn); err != nil {
				t.Fatal(err)
			}
			c.denied(t, name+" subscribe to the input", nats.SubjectIn)
		}
		for _, stream := range []string{nats.StreamIn, notify.StreamNotices, nats.StreamRejected} {
			if _, err := m.JetStream.Stream(ctx, stream); err != nil {
				t.Errorf("%s after the attempts: %v", stream, err)
			}
		}
		if code, body := getReady(t, m.HTTP.URL()); code != http.StatusOK {
			t.Errorf("readyz = %d %s", code, body)
		}
	})

	// The refusals, by the ledger's rules, each with its reason; acro's own
	// ack was taken, and the forged records changed nothing.
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	seqs := map[uint64]int{}
	for seq := range refused {
		seqs[seq] = int(seq)
	}
	for i, msg := range rejectedOf(t, rctx, m.JetStream, seqs) {
		if got, want := ledger.Reason(msg.Headers().Get(nats.HeaderReason)), refused[uint64(i)]; got != want {
			t.Errorf("SHARELOG_IN seq %d refused as %q, want %q (%s)", i, got, want, msg.Headers().Get(nats.HeaderDetail))
		}
	}
	if err := m.Ingester.CatchUp(rctx); err != nil {
		t.Fatal(err)
	}
	for notice, want := range map[string]string{acroNotice: ledger.StateAcknowledged, avonNotice: ledger.StateDelivered} {
		o, err := m.Store.Obligation(rctx, notice)
		if err != nil {
			t.Fatal(err)
		}
		if o.State != want {
			t.Errorf("notice %s: %s, want %s", notice, o.State, want)
		}
	}
	if strings.Contains(m.logs.String(), secretID) {
		t.Error("the logs hold the person's identifier")
	}
}

// TestServeRefusesASourceOnItsOwnSubject: an access file whose source would
// publish on one of sharelog's own subjects keeps serve from starting, with
// the embedded server and with --nats alike.
func TestServeRefusesASourceOnItsOwnSubject(t *testing.T) {
	dir := t.TempDir()
	_, sha := access.NewToken()
	path := filepath.Join(dir, "access.yaml")
	file := "principals:\n  - {name: p, roles: [producer], sources: [notify], tokenSHA256: " + sha + "}\n"
	if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, external := range []string{"", "nats://127.0.0.1:1"} {
		cfg := testConfig(t.TempDir())
		cfg.Access, cfg.NATS = path, external
		m := NewMain(cfg, nil)
		err := m.Open(context.Background())
		m.Close()
		if err == nil || !strings.Contains(err.Error(), nats.SubjectInNotify) {
			t.Errorf("--nats %q: Open = %v, want a refusal naming %s", external, err, nats.SubjectInNotify)
		}
	}
}
